package score

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/structured"
)

// Device is one device of a node, in the allocator's order.
type Device struct {
	ID     structured.DeviceID
	Shape  int
	Driver string
	Spec   *resourceapi.Device
	// Part is what the device draws from the node's counter sets (nil
	// when it consumes no counters).
	Part *Part
	pool string
	// memo remembers selector results until the slice changes.
	memo *memo
}

// SetDef is one counter set a node's devices draw on: its counters in name
// order with their values (milli-units), and which are memory slices.
type SetDef struct {
	Pool, Name   string
	Counters     []string
	Capacity     []int64
	Slices       int
	SliceCounter []int
}

// NodeDevices is one node's devices in the allocator's order and the
// counter sets they draw on. It is shared between scheduling cycles and
// must not be changed.
type NodeDevices struct {
	Devices []Device
	Sets    []SetDef
}

// Inventory turns one driver's ResourceSlices into each node's devices,
// parsing a slice again only when its resourceVersion changes and
// returning the previous nodes while no slice changed. It is safe for
// concurrent use.
type Inventory struct {
	driver string
	table  *Table
	mu     sync.Mutex
	parsed map[types.UID]*parsedSlice
	nodes  map[string]*NodeDevices
	seen   int
	// last is the list nodes was built from: the lister hands out the
	// informer's objects, which are replaced, never changed, on update.
	last []*resourceapi.ResourceSlice
}

type parsedSlice struct {
	version  string
	name     string
	node     string
	pool     string
	devices  []Device
	counters []resourceapi.CounterSet
}

// NewInventory reads the slices of driver into the table's shapes.
func NewInventory(driver string, table *Table) *Inventory {
	return &Inventory{driver: driver, table: table, parsed: map[types.UID]*parsedSlice{}}
}

// Nodes returns each node's devices from the driver's node-local slices.
// Devices tainted NoSchedule or NoExecute are left out: no new claim gets
// them. Within a node, slices go in name order, devices in slice order.
func (inv *Inventory) Nodes(rs []*resourceapi.ResourceSlice) map[string]*NodeDevices {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.nodes != nil && slices.Equal(rs, inv.last) {
		return inv.nodes
	}
	inv.last = slices.Clone(rs)
	changed, seen := inv.nodes == nil, 0
	for _, s := range rs {
		if !inv.ours(s) {
			continue
		}
		if p := inv.parsed[s.UID]; p == nil || p.version != s.ResourceVersion || s.ResourceVersion == "" {
			inv.parsed[s.UID] = inv.parse(s)
			changed = true
		}
		seen++
	}
	if !changed && seen == inv.seen {
		return inv.nodes
	}
	byNode := map[string][]*parsedSlice{}
	for _, s := range rs {
		if inv.ours(s) {
			p := inv.parsed[s.UID]
			byNode[p.node] = append(byNode[p.node], p)
		}
	}
	if len(inv.parsed) > 2*seen+64 {
		inv.sweep(rs)
	}
	inv.nodes = make(map[string]*NodeDevices, len(byNode))
	for node, ps := range byNode {
		slices.SortFunc(ps, func(a, b *parsedSlice) int { return cmp.Compare(a.name, b.name) })
		inv.nodes[node] = assemble(ps)
	}
	inv.seen = seen
	return inv.nodes
}

func (inv *Inventory) ours(s *resourceapi.ResourceSlice) bool {
	return s.Spec.Driver == inv.driver && s.Spec.NodeName != nil && *s.Spec.NodeName != ""
}

func (inv *Inventory) parse(s *resourceapi.ResourceSlice) *parsedSlice {
	p := &parsedSlice{version: s.ResourceVersion, name: s.Name, node: *s.Spec.NodeName, pool: s.Spec.Pool.Name, counters: s.Spec.SharedCounters}
	for i := range s.Spec.Devices {
		d := &s.Spec.Devices[i]
		if blocked(d) {
			continue
		}
		p.devices = append(p.devices, Device{
			ID:     structured.MakeDeviceID(s.Spec.Driver, s.Spec.Pool.Name, d.Name),
			Shape:  inv.table.Add(ShapeOf(*d)),
			Driver: s.Spec.Driver,
			Spec:   d,
			pool:   s.Spec.Pool.Name,
			memo:   &memo{},
		})
	}
	return p
}

// assemble joins a node's slices (in order): their counter sets, then the
// devices with what each draws from them.
func assemble(ps []*parsedSlice) *NodeDevices {
	nd := &NodeDevices{}
	index := map[[2]string]int{}
	n := 0
	for _, p := range ps {
		n += len(p.devices)
		for _, cs := range p.counters {
			index[[2]string{p.pool, cs.Name}] = len(nd.Sets)
			nd.Sets = append(nd.Sets, setDef(p.pool, cs))
		}
	}
	nd.Devices = make([]Device, 0, n)
	for _, p := range ps {
		for _, d := range p.devices {
			if cc := d.Spec.ConsumesCounters; len(cc) > 0 {
				if s, ok := index[[2]string{d.pool, cc[0].CounterSet}]; ok {
					d.Part = part(s, &nd.Sets[s], cc[0].Counters)
				}
			}
			nd.Devices = append(nd.Devices, d)
		}
	}
	return nd
}

// memorySlicePrefix names a MIG GPU's memory-slice counters
// (slices.MemorySliceCounter).
const memorySlicePrefix = "memory-slice-"

func setDef(pool string, cs resourceapi.CounterSet) SetDef {
	def := SetDef{Pool: pool, Name: cs.Name}
	for name := range cs.Counters {
		def.Counters = append(def.Counters, name)
	}
	slices.Sort(def.Counters)
	bySlice := map[int]int{}
	for k, name := range def.Counters {
		c := cs.Counters[name]
		def.Capacity = append(def.Capacity, c.Value.MilliValue())
		if i, err := strconv.Atoi(strings.TrimPrefix(name, memorySlicePrefix)); err == nil && strings.HasPrefix(name, memorySlicePrefix) && i >= 0 {
			bySlice[i] = k
		}
	}
	// Memory slices must be numbered 0..n-1 (at most 64) to count as a MIG GPU.
	if len(bySlice) == 0 || len(bySlice) > 64 {
		return def
	}
	for i := range len(bySlice) {
		k, ok := bySlice[i]
		if !ok {
			def.SliceCounter = nil
			return def
		}
		def.SliceCounter = append(def.SliceCounter, k)
	}
	def.Slices = len(def.SliceCounter)
	return def
}

func part(set int, def *SetDef, uses map[string]resourceapi.Counter) *Part {
	p := &Part{Set: set, Uses: make([]int64, len(def.Counters))}
	for k, name := range def.Counters {
		if c, ok := uses[name]; ok {
			p.Uses[k] = c.Value.MilliValue()
		}
	}
	for i, k := range def.SliceCounter {
		if p.Uses[k] > 0 {
			p.Slices |= 1 << i
		}
	}
	if def.Slices > 0 {
		p.Share = (&CounterSet{Slices: def.Slices}).share(p.Slices)
	}
	return p
}

// sweep forgets slices no longer listed.
func (inv *Inventory) sweep(rs []*resourceapi.ResourceSlice) {
	live := make(map[types.UID]bool, len(rs))
	for _, s := range rs {
		live[s.UID] = true
	}
	for uid := range inv.parsed {
		if !live[uid] {
			delete(inv.parsed, uid)
		}
	}
}

func blocked(d *resourceapi.Device) bool {
	for _, t := range d.Taints {
		if t.Effect == resourceapi.DeviceTaintEffectNoSchedule || t.Effect == resourceapi.DeviceTaintEffectNoExecute {
			return true
		}
	}
	return false
}

// Host is a node's cpu (milli) and memory (bytes): allocatable and
// requested by the pods on it.
type Host struct {
	MilliCPU, Memory         int64
	UsedMilliCPU, UsedMemory int64
}

// NodeOf is the scorer's view of a node: its devices with what allocated
// claims (exclusive devices, consumed capacity, counters) left of them.
func NodeOf(h Host, nd *NodeDevices, shapes []Shape, alloc *structured.AllocatedState) *Node {
	return NodeInto(&Node{}, h, nd, shapes, alloc)
}

// NodeInto is NodeOf into n, reusing its memory.
func NodeInto(n *Node, h Host, nd *NodeDevices, shapes []Shape, alloc *structured.AllocatedState) *Node {
	*n = Node{MilliCPU: h.MilliCPU, Memory: h.Memory, UsedMilliCPU: h.UsedMilliCPU, UsedMemory: h.UsedMemory,
		GPUs: n.GPUs[:0], Sets: n.Sets[:0], backing: n.backing[:0]}
	if nd == nil || len(nd.Devices) == 0 {
		return n
	}
	dims := 0
	for i := range nd.Sets {
		dims += len(nd.Sets[i].Capacity)
	}
	for i := range nd.Devices {
		dims += len(shapes[nd.Devices[i].Shape].Dims)
	}
	if cap(n.backing) < dims {
		n.backing = make([]int64, 0, dims)
	}
	for i := range nd.Sets {
		def := &nd.Sets[i]
		n.Sets = append(n.Sets, CounterSet{Free: n.carve(def.Capacity), Slices: def.Slices, SliceCounter: def.SliceCounter})
	}
	for i := range nd.Devices {
		d := &nd.Devices[i]
		n.GPUs = append(n.GPUs, GPU{Shape: d.Shape, Free: n.full(&shapes[d.Shape]), Part: d.Part})
		n.allocated(len(n.GPUs)-1, d.ID, &shapes[d.Shape], alloc)
	}
	return n
}

// carve copies values into the node's backing array.
func (n *Node) carve(values []int64) []int64 {
	start := len(n.backing)
	n.backing = append(n.backing, values...)
	return n.backing[start:len(n.backing):len(n.backing)]
}

func (n *Node) full(sh *Shape) []int64 {
	start := len(n.backing)
	for k := range sh.Dims {
		n.backing = append(n.backing, sh.Dims[k].Capacity)
	}
	return n.backing[start:len(n.backing):len(n.backing)]
}

// allocated takes what allocated claims hold of device j.
func (n *Node) allocated(j int, id structured.DeviceID, sh *Shape, alloc *structured.AllocatedState) {
	if alloc == nil {
		return
	}
	g := &n.GPUs[j]
	if alloc.AllocatedDevices.Has(id) {
		clear(g.Free)
		n.drawCounters(g.Part)
		return
	}
	used, shared := alloc.AggregatedCapacity[id]
	if !shared {
		return
	}
	n.drawCounters(g.Part)
	if sh.Exclusive {
		clear(g.Free)
		return
	}
	for k := range sh.Dims {
		if q := used[sh.Dims[k].Name]; q != nil {
			g.Free[k] = max(0, g.Free[k]-q.MilliValue())
		}
	}
}

func (n *Node) drawCounters(p *Part) {
	if p == nil {
		return
	}
	free := n.Sets[p.Set].Free
	for k, u := range p.Uses {
		free[k] = max(0, free[k]-u)
	}
}

// AddAllocation adds what an allocation takes of the driver's devices to
// the state, as the scheduler's claim tracker counts it: a result with a
// share ID consumes capacity of a shared device, any other takes the device
// (admin access takes nothing).
func AddAllocation(a *structured.AllocatedState, driver string, alloc *resourceapi.AllocationResult) {
	if alloc == nil {
		return
	}
	for _, r := range alloc.Devices.Results {
		if r.Driver != driver || (r.AdminAccess != nil && *r.AdminAccess) {
			continue
		}
		id := structured.MakeDeviceID(r.Driver, r.Pool, r.Device)
		if r.ShareID != nil {
			if r.ConsumedCapacity != nil {
				a.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, r.ConsumedCapacity))
			}
			continue
		}
		a.AllocatedDevices.Insert(id)
	}
}
