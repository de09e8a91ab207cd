package score

import (
	"cmp"
	"slices"
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
	// memo remembers selector results until the slice changes.
	memo *memo
}

// memo maps a request's selectors (joined) to whether the device passes.
type memo struct {
	mu sync.Mutex
	ok map[string]bool
}

func (m *memo) get(key string) (ok, found bool) {
	if m == nil {
		return false, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, found = m.ok[key]
	return ok, found
}

func (m *memo) put(key string, ok bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ok == nil {
		m.ok = map[string]bool{}
	}
	m.ok[key] = ok
}

// Inventory turns one driver's ResourceSlices into each node's devices,
// parsing a slice again only when its resourceVersion changes. It is safe
// for concurrent use.
type Inventory struct {
	driver string
	table  *Table
	mu     sync.Mutex
	parsed map[types.UID]*parsedSlice
}

type parsedSlice struct {
	version string
	name    string
	node    string
	devices []Device
}

// NewInventory reads the slices of driver into the table's shapes.
func NewInventory(driver string, table *Table) *Inventory {
	return &Inventory{driver: driver, table: table, parsed: map[types.UID]*parsedSlice{}}
}

// Nodes returns each node's devices from the driver's node-local slices.
// Devices tainted NoSchedule or NoExecute are left out: no new claim gets
// them. Within a node, slices go in name order, devices in slice order.
func (inv *Inventory) Nodes(rs []*resourceapi.ResourceSlice) map[string][]Device {
	byNode := map[string][]*parsedSlice{}
	inv.mu.Lock()
	seen := 0
	for _, s := range rs {
		if s.Spec.Driver != inv.driver || s.Spec.NodeName == nil || *s.Spec.NodeName == "" {
			continue
		}
		p := inv.parsed[s.UID]
		if p == nil || p.version != s.ResourceVersion || s.ResourceVersion == "" {
			p = inv.parse(s)
			inv.parsed[s.UID] = p
		}
		seen++
		byNode[p.node] = append(byNode[p.node], p)
	}
	if len(inv.parsed) > 2*seen+64 {
		inv.sweep(rs)
	}
	inv.mu.Unlock()
	out := make(map[string][]Device, len(byNode))
	for node, ps := range byNode {
		if len(ps) == 1 {
			out[node] = ps[0].devices
			continue
		}
		slices.SortFunc(ps, func(a, b *parsedSlice) int { return cmp.Compare(a.name, b.name) })
		var devs []Device
		for _, p := range ps {
			devs = append(devs, p.devices...)
		}
		out[node] = devs
	}
	return out
}

func (inv *Inventory) parse(s *resourceapi.ResourceSlice) *parsedSlice {
	p := &parsedSlice{version: s.ResourceVersion, name: s.Name, node: *s.Spec.NodeName}
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
			memo:   &memo{},
		})
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
// claims (exclusive devices, consumed capacity) left of them.
func NodeOf(h Host, devs []Device, shapes []Shape, alloc *structured.AllocatedState) *Node {
	n := &Node{MilliCPU: h.MilliCPU, Memory: h.Memory, UsedMilliCPU: h.UsedMilliCPU, UsedMemory: h.UsedMemory}
	if len(devs) == 0 {
		return n
	}
	n.GPUs = make([]GPU, len(devs))
	dims := 0
	for _, d := range devs {
		dims += len(shapes[d.Shape].Dims)
	}
	// One backing array for every device's free capacity.
	backing := make([]int64, dims)
	for j, d := range devs {
		sh := &shapes[d.Shape]
		free := backing[:len(sh.Dims):len(sh.Dims)]
		backing = backing[len(sh.Dims):]
		for k := range sh.Dims {
			free[k] = sh.Dims[k].Capacity
		}
		n.GPUs[j] = GPU{Shape: d.Shape, Free: free}
		if alloc == nil {
			continue
		}
		if alloc.AllocatedDevices.Has(d.ID) {
			clear(free)
			continue
		}
		used, shared := alloc.AggregatedCapacity[d.ID]
		if !shared {
			continue
		}
		if sh.Exclusive {
			clear(free)
			continue
		}
		for k := range sh.Dims {
			if q := used[sh.Dims[k].Name]; q != nil {
				free[k] = max(0, free[k]-q.MilliValue())
			}
		}
	}
	return n
}
