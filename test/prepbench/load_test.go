package prepbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	resourceapi "k8s.io/api/resource/v1"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"

	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// mode is a way of preparing a claim.
type mode struct {
	name string
	// claim builds the mode's claim.
	claim func(name string) *resourceapi.ResourceClaim
	// distinct is how many claims the node can hold at once in this mode;
	// more are allocated to the same devices again (see dup).
	distinct int
	// dup says whether claims beyond distinct may share a device: true
	// for admin-access (monitoring) claims, which hold no GPU; false for
	// claims that need the device to themselves (prepare refuses a second
	// claim on a whole GPU, MIG placements exclude each other).
	dup bool
	// allocs names the allocations the mode uses; "" is its own.
	allocs string
}

func (m mode) allocKey() string {
	if m.allocs != "" {
		return m.allocs
	}
	return m.name
}

var (
	exclusive = mode{name: "exclusive", distinct: 4, claim: func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, namespace).Request("gpu", tiers.ClassGPU).Obj()
	}}
	// monitor claims are what a node holds besides the measured claims: a
	// record and a CDI spec each, on the same GPUs, as monitoring agents'
	// claims are.
	monitor = mode{name: "held", distinct: 4, dup: true, claim: func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, namespace).Request("gpu", tiers.ClassGPU).AdminAccess().Obj()
	}}
	mig1g = mode{name: "mig-1g", distinct: 28, claim: func(name string) *resourceapi.ResourceClaim {
		return tierratest.MakeClaim(name, namespace).Request("mig", tiers.ClassMIG).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj()
	}}
)

// claims returns n claims of the mode (at most m.distinct unless m.dup),
// creating the ones not created yet. Allocations come from the scheduler's
// allocator; duplicates reuse them round-robin.
func (e *env) claims(m mode, n int) ([]claimRef, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !m.dup {
		n = min(n, m.distinct)
	}
	have := e.created[m.name]
	results := e.results[m.allocKey()]
	for i := len(have); i < n; i++ {
		claim := m.claim(fmt.Sprintf("%s-%d", m.name, i))
		if len(results) < m.distinct {
			r, err := e.alloc.AllocateResult(e.ctx, nodeName, claim)
			if err != nil {
				return nil, fmt.Errorf("allocate %s: %w", claim.Name, err)
			}
			if r == nil {
				return nil, fmt.Errorf("allocate %s: does not fit", claim.Name)
			}
			results = append(results, r)
		}
		ref, err := e.createClaim(claim, results[i%len(results)])
		if err != nil {
			return nil, err
		}
		have = append(have, ref)
	}
	e.created[m.name], e.results[m.allocKey()] = have, results
	return have[:n], nil
}

// hold leaves exactly n monitoring claims prepared besides the measured ones.
func (e *env) hold(ctx context.Context, c drapb.DRAPluginClient, n int) error {
	refs, err := e.claims(monitor, max(n, len(e.held)))
	if err != nil {
		return err
	}
	for len(e.held) < n {
		if err := prepareOne(ctx, c, refs[len(e.held)]); err != nil {
			return err
		}
		e.held = append(e.held, refs[len(e.held)])
	}
	for len(e.held) > n {
		if err := unprepareOne(ctx, c, e.held[len(e.held)-1]); err != nil {
			return err
		}
		e.held = e.held[:len(e.held)-1]
	}
	return nil
}

// result is one measured case.
type result struct {
	pairs   int
	wall    time.Duration
	prepare []time.Duration // sorted
	steps   map[prepare.Step]time.Duration
}

func (r result) pct(p float64) time.Duration {
	if len(r.prepare) == 0 {
		return 0
	}
	return r.prepare[min(len(r.prepare)-1, int(float64(len(r.prepare))*p))]
}

func (r result) pairsPerSec() float64 { return float64(r.pairs) / r.wall.Seconds() }

// perPair is a step's time per prepare+unprepare pair.
func (r result) perPair(s prepare.Step) time.Duration {
	return r.steps[s] / time.Duration(max(r.pairs, 1))
}

// run has one worker per claim do prepare then unprepare of its claim
// until pairs pairs are done in all, and times every prepare.
func (e *env) run(ctx context.Context, c drapb.DRAPluginClient, claims []claimRef, pairs int) (result, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	lat := make([]time.Duration, 0, pairs)
	e.steps.reset()
	start := time.Now()
	var wg sync.WaitGroup
	for _, ref := range claims {
		wg.Go(func() {
			mine := make([]time.Duration, 0, pairs/len(claims)+1)
			var err error
			for next.Add(1) <= int64(pairs) {
				t := time.Now()
				if err = prepareOne(ctx, c, ref); err != nil {
					break
				}
				mine = append(mine, time.Since(t))
				if err = unprepareOne(ctx, c, ref); err != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	r := result{pairs: len(lat), wall: time.Since(start), prepare: lat, steps: e.steps.snapshot()}
	slices.Sort(r.prepare)
	return r, errors.Join(errs...)
}

func dial(socket string) (drapb.DRAPluginClient, func() error, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", socket, err)
	}
	return drapb.NewDRAPluginClient(conn), conn.Close, nil
}

func prepareOne(ctx context.Context, c drapb.DRAPluginClient, ref claimRef) error {
	resp, err := c.NodePrepareResources(ctx, &drapb.NodePrepareResourcesRequest{Claims: []*drapb.Claim{ref.pb()}})
	if err != nil {
		return fmt.Errorf("prepare %s: %w", ref.name, err)
	}
	res := resp.Claims[ref.uid]
	switch {
	case res == nil:
		return fmt.Errorf("prepare %s: no result", ref.name)
	case res.Error != "":
		return fmt.Errorf("prepare %s: %s", ref.name, res.Error)
	case len(res.Devices) != 1 || len(res.Devices[0].CdiDeviceIds) != 1:
		return fmt.Errorf("prepare %s: want one device with one CDI ID, got %v", ref.name, res.Devices)
	}
	return nil
}

func unprepareOne(ctx context.Context, c drapb.DRAPluginClient, ref claimRef) error {
	resp, err := c.NodeUnprepareResources(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: []*drapb.Claim{ref.pb()}})
	if err != nil {
		return fmt.Errorf("unprepare %s: %w", ref.name, err)
	}
	if res := resp.Claims[ref.uid]; res == nil || res.Error != "" {
		return fmt.Errorf("unprepare %s: %v", ref.name, res)
	}
	return nil
}

func (c claimRef) pb() *drapb.Claim {
	return &drapb.Claim{Namespace: namespace, Name: c.name, Uid: c.uid}
}

// stepTimes sums pkg/prepare's step timings.
type stepTimes struct {
	ns map[prepare.Step]*atomic.Int64
}

var allSteps = []prepare.Step{prepare.StepTenant, prepare.StepCheckpoint, prepare.StepNVML, prepare.StepCDI, prepare.StepSharing}

func newStepTimes() *stepTimes {
	s := &stepTimes{ns: map[prepare.Step]*atomic.Int64{}}
	for _, step := range allSteps {
		s.ns[step] = &atomic.Int64{}
	}
	return s
}

func (s *stepTimes) observe(step prepare.Step, took time.Duration) {
	if c, ok := s.ns[step]; ok {
		c.Add(int64(took))
	}
}

func (s *stepTimes) reset() {
	for _, c := range s.ns {
		c.Store(0)
	}
}

func (s *stepTimes) snapshot() map[prepare.Step]time.Duration {
	out := map[prepare.Step]time.Duration{}
	for step, c := range s.ns {
		out[step] = time.Duration(c.Load())
	}
	return out
}
