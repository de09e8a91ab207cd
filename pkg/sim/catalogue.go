package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// catalogueMachines maps the node list's catalogue model names to the fake
// machines of pkg/nvgpu, the ones the kubelet plugin runs on with
// --machine fake:<name>. Their GPUs are read through the plugin's own NVML
// discovery (go-nvml's mock servers), so a simulated H200 is exactly the
// GPU the plugin would publish, MIG geometry included.
var catalogueMachines = map[string]string{
	"A100": "dgxa100",
	"H100": "dgxh100",
	"H200": "dgxh200",
	"B200": "dgxb200",
	"L4":   "l4x4",
}

// CatalogueNames lists the catalogue model names, sorted.
func CatalogueNames() []string {
	names := make([]string, 0, len(catalogueMachines))
	for n := range catalogueMachines {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// AllModelNames lists every model a node list may name: the openb trace's
// and the catalogue's, sorted.
func AllModelNames() []string {
	names := append(ModelNames(), CatalogueNames()...)
	slices.Sort(names)
	return names
}

// knownModel reports whether a node list may name the model.
func knownModel(name string) bool {
	_, trace := models[name]
	_, cat := catalogueMachines[name]
	return trace || cat
}

// catalogue discovers each fake machine once per MIG mode and hands out
// copies.
type catalogue struct {
	mu       sync.Mutex
	machines map[catalogueKey]inventory.Machine
}

type catalogueKey struct {
	model string
	mig   bool
}

var fakeCatalogue = &catalogue{machines: map[catalogueKey]inventory.Machine{}}

// machine discovers the model's fake machine, with every MIG-capable GPU
// put in MIG mode when mig is set (nvgpu.EnableMIG, as an admin does).
func (c *catalogue) machine(ctx context.Context, model string, mig bool) (inventory.Machine, error) {
	key := catalogueKey{model, mig}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.machines[key]; ok {
		return m, nil
	}
	name, ok := catalogueMachines[model]
	if !ok {
		return inventory.Machine{}, fmt.Errorf("%w: unknown GPU model %q", ErrBadTrace, model)
	}
	g, err := nvgpu.New(ctx, nvgpu.Options{Machine: nvgpu.FakePrefix + name})
	if err != nil {
		return inventory.Machine{}, fmt.Errorf("catalogue model %s: %w", model, err)
	}
	defer func() { _ = g.Close() }()
	var m inventory.Machine
	if mig {
		m, err = nvgpu.EnableMIG(ctx, g)
	} else {
		m, err = g.Machine(ctx)
	}
	if err != nil {
		return inventory.Machine{}, fmt.Errorf("catalogue model %s: discover fake machine %s: %w", model, name, err)
	}
	c.machines[key] = m
	return m, nil
}

// catalogueMachine is the node's machine from the catalogue: the first
// n.GPUs GPUs of the model's fake machine, with UUIDs made unique to the
// node. migOn says, per GPU index, whether that GPU is in MIG mode.
func catalogueMachine(ctx context.Context, n Node, migOn func(index int) bool) (inventory.Machine, error) {
	plain, err := fakeCatalogue.machine(ctx, n.Model, false)
	if err != nil {
		return inventory.Machine{}, err
	}
	if n.GPUs > len(plain.GPUs) {
		return inventory.Machine{}, fmt.Errorf("node %s: %d GPUs of model %s, the catalogue machine %s has %d",
			n.Name, n.GPUs, n.Model, catalogueMachines[n.Model], len(plain.GPUs))
	}
	var mig inventory.Machine
	out := plain
	out.GPUs = make([]inventory.GPU, n.GPUs)
	for i := range n.GPUs {
		g := plain.GPUs[i]
		if g.MIGCapable && migOn(i) {
			if mig.GPUs == nil {
				if mig, err = fakeCatalogue.machine(ctx, n.Model, true); err != nil {
					return inventory.Machine{}, err
				}
			}
			g = mig.GPUs[i]
		}
		g.UUID = fmt.Sprintf("GPU-%s-%d", n.Name, i)
		out.GPUs[i] = g
	}
	return out, nil
}

// productName is the NVML product name of a node-list model.
func productName(ctx context.Context, model string) (string, error) {
	if m, ok := models[model]; ok {
		return m.ProductName, nil
	}
	m, err := fakeCatalogue.machine(ctx, model, false)
	if err != nil {
		return "", err
	}
	if len(m.GPUs) == 0 {
		return "", fmt.Errorf("catalogue model %s has no GPUs", model)
	}
	return m.GPUs[0].ProductName, nil
}

// nodeMachine is the node's machine: an openb model's synthesised
// (Node.Machine), a catalogue model's discovered from its fake machine.
// migOn says, per GPU index, whether a MIG-capable GPU is in MIG mode.
func nodeMachine(ctx context.Context, n Node, migOn func(index int) bool) (inventory.Machine, error) {
	if _, ok := models[n.Model]; ok || n.GPUs == 0 {
		return n.Machine(), nil
	}
	return catalogueMachine(ctx, n, migOn)
}

// pinnedMIG is the node list's MIG mode for the node: its mig column, off
// when unset.
func pinnedMIG(n Node) func(int) bool {
	return func(int) bool { return n.MIG != nil && *n.MIG }
}

// nodeLabels are the node's labels with kubernetes.io/hostname set.
func nodeLabels(n Node) map[string]string {
	out := map[string]string{"kubernetes.io/hostname": n.Name}
	for k, v := range n.Labels {
		out[k] = v
	}
	return out
}

// modelProduct is productName for a model the node or pod list already
// checked; "" when it cannot be discovered.
func modelProduct(model string) string {
	p, _ := productName(context.Background(), model)
	return p
}
