package deploy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// churn prepares and unprepares claims in a loop through the kubelet, as
// pods come and go on a node, and counts who served each call and what
// failed.
type churn struct {
	kl     *kubelet
	claims []allocatedClaim

	mu       sync.Mutex
	served   map[string]int // pod UID of the plugin instance -> calls
	failures []string
	calls    int
	latency  []time.Duration

	stopping atomic.Bool
	done     chan struct{}
}

func startChurn(ctx context.Context, kl *kubelet, claims []allocatedClaim) *churn {
	c := &churn{kl: kl, claims: claims, served: map[string]int{}, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

func (c *churn) run(ctx context.Context) {
	defer close(c.done)
	for i := 0; !c.stopping.Load() && ctx.Err() == nil; i++ {
		claim := c.claims[i%len(c.claims)]
		t0 := time.Now()
		ids, by, err := c.kl.prepare(ctx, claim.ref)
		if err == nil && !slices.Equal(ids, claim.wantIDs) {
			err = fmt.Errorf("prepare %s: CDI IDs %v, want %v", claim.ref.name, ids, claim.wantIDs)
		}
		c.record(by, err, time.Since(t0))
		by, err = c.kl.unprepare(ctx, claim.ref)
		c.record(by, err, 0)
	}
}

func (c *churn) record(draSocket string, err error, prepareLatency time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err != nil {
		c.failures = append(c.failures, fmt.Sprintf("call %d (plugin %s): %v", c.calls, socketOwner(draSocket), err))
		return
	}
	c.served[socketOwner(draSocket)]++
	if prepareLatency > 0 {
		c.latency = append(c.latency, prepareLatency)
	}
}

// servedBy returns how many calls the plugin instance of the pod served.
func (c *churn) servedBy(podUID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served[podUID]
}

// waitServed waits until the instance served n calls in all.
func (c *churn) waitServed(ctx context.Context, podUID string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.servedBy(podUID) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("plugin %s served %d calls in %s, want %d", podUID, c.servedBy(podUID), timeout, n)
		}
		select {
		case <-c.done:
			return fmt.Errorf("churn stopped")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// stop ends the loop after its current prepare/unprepare pair, so it
// leaves nothing prepared.
func (c *churn) stop() {
	c.stopping.Store(true)
	<-c.done
}
