package plugin

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// The periodic pass that frees the devices of claims deleted from the API
// while prepared: a force-deleted pod or claim never gets
// NodeUnprepareResources, so its record would hold its devices forever.
const (
	// DefaultClaimGCInterval is the time between two passes.
	DefaultClaimGCInterval = 5 * time.Minute
	// ClaimGCFirstPass is how long after start the first pass runs.
	ClaimGCFirstPass = 30 * time.Second
	// ClaimGCGrace is how long a claim must have been found gone, in every
	// pass since, before it is unprepared: a claim being re-created or a
	// lagging read never loses a live claim.
	ClaimGCGrace = time.Minute
)

// ReasonClaimGoneUnprepared is the reason of the Node event that says a
// claim gone from the API was unprepared without the kubelet asking.
const ReasonClaimGoneUnprepared = "ClaimGoneUnprepared"

// claimGC is the periodic pass. A record's claim is gone when a GET of it
// is NotFound, returns another UID, or shows it no longer allocated a
// device of this driver in this node's pool. Gone in two consecutive
// passes at least ClaimGCGrace apart, it is unprepared through the
// Preparer. Any other API error keeps the record, and resets its count.
type claimGC struct {
	prep   *prepare.Preparer
	lock   interface{ Shared() (func(), error) }
	client kubernetes.Interface
	node   *corev1.Node
	pool   string
	clock  clock.Clock
	every  time.Duration
	// gone is when each claim (by UID) was first found gone, in an
	// unbroken run of passes that found it so.
	gone map[string]time.Time
	// ended is told after each pass: a freed claim may end a GPU's
	// reshaping (publisher.claimsEnded).
	ended func(context.Context)
}

// startClaimGC starts the periodic pass until ctx ends; a negative
// interval disables it.
func (d *Driver) startClaimGC(ctx context.Context, cfg Config, deps Deps, node *corev1.Node) {
	logger := klog.FromContext(ctx)
	if cfg.ClaimGCInterval < 0 {
		logger.Info("Freeing claims deleted from the API is disabled (--claim-gc-interval < 0)")
		return
	}
	clk := deps.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	gc := &claimGC{prep: d.prep, lock: d.lock, client: deps.Client, node: node, pool: cfg.NodeName,
		clock: clk, every: cfg.ClaimGCInterval, gone: map[string]time.Time{}, ended: d.pub.claimsEnded}
	d.wg.Go(func() { gc.run(klog.NewContext(ctx, klog.LoggerWithName(logger, "claim-gc"))) })
}

func (g *claimGC) run(ctx context.Context) {
	t := g.clock.NewTimer(ClaimGCFirstPass)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		g.pass(ctx)
		t.Reset(g.every)
	}
}

// pass checks every record once and frees those gone long enough.
func (g *claimGC) pass(ctx context.Context) {
	logger := klog.FromContext(ctx)
	now := g.clock.Now()
	gone := map[string]time.Time{}
	for _, rec := range g.prep.Records() {
		ref := klog.KRef(rec.Namespace, rec.Name)
		why, err := g.check(ctx, rec)
		if err != nil {
			logger.Error(err, "Could not tell whether a prepared claim still exists; keeping it", "claim", ref, "uid", rec.UID)
			continue
		}
		if why == "" {
			continue
		}
		since, seen := g.gone[rec.UID]
		if !seen {
			logger.Info("Prepared claim is gone from the API; unpreparing it if it stays gone", "claim", ref, "uid", rec.UID,
				"why", why, "grace", ClaimGCGrace)
			gone[rec.UID] = now
			continue
		}
		if now.Sub(since) < ClaimGCGrace || !g.free(ctx, rec, why) {
			gone[rec.UID] = since
		}
	}
	g.gone = gone
	if g.ended != nil {
		g.ended(ctx)
	}
}

// check says why the record's claim is gone, or "" while it is live.
func (g *claimGC) check(ctx context.Context, rec checkpoint.Claim) (string, error) {
	claim, err := g.client.ResourceV1().ResourceClaims(rec.Namespace).Get(ctx, rec.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "deleted from the API", nil
	case err != nil:
		return "", fmt.Errorf("get ResourceClaim %s/%s: %w", rec.Namespace, rec.Name, err)
	case string(claim.UID) != rec.UID:
		return fmt.Sprintf("deleted from the API; a new claim of the same name has UID %s", claim.UID), nil
	case claim.Status.Allocation == nil:
		return "no longer allocated", nil
	case !allocatedIn(claim.Status.Allocation, g.pool):
		return fmt.Sprintf("no longer allocated a device of %s on node %s", v1alpha1.DriverName, g.pool), nil
	}
	return "", nil
}

func allocatedIn(a *resourceapi.AllocationResult, pool string) bool {
	for _, r := range a.Devices.Results {
		if r.Driver == v1alpha1.DriverName && r.Pool == pool {
			return true
		}
	}
	return false
}

// free unprepares the claim as the kubelet would (the state lock shared,
// the Preparer's GPU locks and undo) and reports whether it succeeded.
func (g *claimGC) free(ctx context.Context, rec checkpoint.Claim, why string) bool {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KRef(rec.Namespace, rec.Name), "uid", rec.UID)
	release, err := g.lock.Shared()
	if err != nil {
		logger.Error(err, "Could not unprepare a claim gone from the API; retrying at the next pass")
		return false
	}
	defer release()
	if err := g.prep.Unprepare(ctx, rec.UID); err != nil {
		logger.Error(err, "Could not unprepare a claim gone from the API; retrying at the next pass")
		return false
	}
	logger.Info("Unprepared a claim gone from the API", "why", why)
	nodeEvent(ctx, g.client, g.node, corev1.EventTypeWarning, ReasonClaimGoneUnprepared,
		fmt.Sprintf("Unprepared ResourceClaim %s/%s (UID %s): it was %s while prepared on this node and the kubelet never unprepared it; its devices are free again",
			rec.Namespace, rec.Name, rec.UID, why))
	return true
}
