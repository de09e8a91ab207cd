package sim

import (
	"context"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/pkg/score"
)

// Fixture is a node list published the way the simulation publishes it. It
// hands out the objects a real cluster needs to reproduce a simulation
// (slices, device class, claims) and replays a pod sequence through the
// simulation, so that a test can compare the two pod by pod.
type Fixture struct {
	pub    *published
	claims *claimClasses
}

// NewFixture publishes nodes with the simulation's Shared policy.
func NewFixture(nodes []Node, p Publisher) (*Fixture, error) {
	pub, err := publish(nodes, p)
	if err != nil {
		return nil, err
	}
	if pub.gpus == 0 {
		return nil, fmt.Errorf("fixture has no GPUs")
	}
	return &Fixture{pub: pub, claims: newClaimClasses(pub.shapes)}, nil
}

// GPUs is the number of GPUs the fixture's nodes publish.
func (f *Fixture) GPUs() int { return f.pub.gpus }

// Slices returns copies of the ResourceSlices published for node i, with
// their node name set.
func (f *Fixture) Slices(i int) []*resourceapi.ResourceSlice {
	out := make([]*resourceapi.ResourceSlice, len(f.pub.slices[i]))
	for k, s := range f.pub.slices[i] {
		out[k] = s.DeepCopy()
	}
	return out
}

// DeviceClass returns the DeviceClass every simulated claim names.
func DeviceClass() *resourceapi.DeviceClass { return deviceClass() }

// ClaimSpec returns the claim spec the simulation gives the pod's GPU
// demand, or nil for a CPU-only pod.
func (f *Fixture) ClaimSpec(p Pod) (*resourceapi.ResourceClaimSpec, error) {
	cc, err := f.claims.get(p)
	if err != nil {
		return nil, fmt.Errorf("claim for pod %s: %w", p.Name, err)
	}
	if cc == nil {
		return nil, nil
	}
	return cc.claim.Spec.DeepCopy(), nil
}

// Replay schedules pods in order, each arriving once, with the named
// scorer and seed (for ties and node sampling), exactly as a simulation
// run does. It returns the node each pod was placed on, "" for a pod that
// found none.
func (f *Fixture) Replay(ctx context.Context, pods []Pod, scorer string, seed int64) ([]string, error) {
	return f.replay(ctx, pods, scorer, seed, typicalClasses(pods, f.pub.shapes))
}

// ReplayWith is Replay with the frag scorer's target workload given (as
// the scheduler plugin takes it in its args) instead of drawn from pods.
func (f *Fixture) ReplayWith(ctx context.Context, pods []Pod, scorer string, seed int64, typical []score.Typical) ([]string, error) {
	return f.replay(ctx, pods, scorer, seed, score.NewClasses(typical, f.pub.shapes))
}

func (f *Fixture) replay(ctx context.Context, pods []Pod, scorer string, seed int64, classes []score.Class) ([]string, error) {
	s, err := NewScorer(scorer)
	if err != nil {
		return nil, err
	}
	e := newEnv(f.pub, classes, s, seed, false)
	e.stats.Failed.Whole = map[int]int{}
	out := make([]string, len(pods))
	for i, p := range pods {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		node, err := e.placeOn(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("replay pod %d (%s): %w", i, p.Name, err)
		}
		out[i] = node
	}
	return out, nil
}

// placeOn is place that also names the chosen node.
func (e *env) placeOn(ctx context.Context, p Pod) (string, error) {
	e.last = -1
	ok, err := e.place(ctx, p)
	if err != nil || !ok {
		return "", err
	}
	return e.pub.nodes[e.last].Name, nil
}

// Choice is how the simulation's scorer ranks the node another scheduler
// chose for one pod, in the same cluster state.
type Choice struct {
	// Top says the chosen node is among the scorer's best ranked feasible
	// nodes (or, for a pod not placed, that no node was feasible).
	Top bool
	// Chosen and Best are the chosen node's and the best node's primary
	// scores; Chosen is -1 when the simulation finds the node infeasible.
	Chosen, Best float64
	// BestNode is one best ranked node.
	BestNode string
}

// Follow replays pods as placed by another scheduler (placed[i] is the
// node pod i went to, "" for none) and, before each placement, ranks the
// chosen node with the named scorer: it tells whether the scorer would
// have chosen the same node, pod by pod, without divergent histories.
func (f *Fixture) Follow(ctx context.Context, pods []Pod, placed []string, scorer string) ([]Choice, error) {
	s, err := NewScorer(scorer)
	if err != nil {
		return nil, err
	}
	e := newEnv(f.pub, typicalClasses(pods, f.pub.shapes), s, 0, false)
	index := map[string]int{}
	for i, n := range f.pub.nodes {
		index[n.Name] = i
	}
	out := make([]Choice, len(pods))
	for i, p := range pods {
		cc, err := e.claims.get(p)
		if err != nil {
			return nil, err
		}
		e.collect(p, cc)
		ch := Choice{Chosen: -1, Best: -1}
		for _, c := range e.cands {
			if c.r.Primary > ch.Best {
				ch.Best, ch.BestNode = c.r.Primary, f.pub.nodes[c.node].Name
			}
			if placed[i] != "" && c.node == index[placed[i]] {
				ch.Chosen = c.r.Primary
			}
		}
		if placed[i] == "" {
			ch.Top = len(e.cands) == 0
			out[i] = ch
			continue
		}
		ch.Top = ch.Chosen >= 0 && ch.Chosen == ch.Best
		out[i] = ch
		st := &e.states[index[placed[i]]]
		if cc == nil {
			st.addHost(p)
			continue
		}
		res, err := e.allocate(ctx, st, cc)
		if err != nil {
			return nil, err
		}
		if res == nil {
			return nil, fmt.Errorf("follow pod %d (%s): no allocation on %s", i, p.Name, placed[i])
		}
		if err := st.apply(p, *res, e.shapes); err != nil {
			return nil, err
		}
	}
	return out, nil
}
