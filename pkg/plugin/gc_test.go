package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const (
	gcWait = 10 * time.Second
	gcTick = 10 * time.Millisecond
)

type claimChange func(t *testing.T, h *harness, claim *resourceapi.ResourceClaim)

func deleteClaim(t *testing.T, h *harness, claim *resourceapi.ResourceClaim) {
	require.NoError(t, h.client.ResourceV1().ResourceClaims(claim.Namespace).Delete(h.ctx, claim.Name, metav1.DeleteOptions{}))
}

// createClaim creates the claim again with this UID.
func createClaim(uid types.UID) claimChange {
	return func(t *testing.T, h *harness, claim *resourceapi.ResourceClaim) {
		c := claim.DeepCopy()
		c.UID, c.ResourceVersion = uid, ""
		_, err := h.client.ResourceV1().ResourceClaims(c.Namespace).Create(h.ctx, c, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

func updateAllocation(mutate func(*resourceapi.AllocationResult) *resourceapi.AllocationResult) claimChange {
	return func(t *testing.T, h *harness, claim *resourceapi.ResourceClaim) {
		c, err := h.client.ResourceV1().ResourceClaims(claim.Namespace).Get(h.ctx, claim.Name, metav1.GetOptions{})
		require.NoError(t, err)
		c.Status.Allocation = mutate(c.Status.Allocation)
		_, err = h.client.ResourceV1().ResourceClaims(c.Namespace).UpdateStatus(h.ctx, c, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
}

// apiDown makes the next n GETs of a claim fail as an unavailable API
// server does.
func apiDown(n int) claimChange {
	return func(t *testing.T, h *harness, _ *resourceapi.ResourceClaim) {
		var calls atomic.Int64
		h.client.PrependReactor("get", "resourceclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
			if calls.Add(1) > int64(n) {
				return false, nil, nil
			}
			return true, nil, apierrors.NewServiceUnavailable("etcd is unavailable")
		})
	}
}

func both(changes ...claimChange) claimChange {
	return func(t *testing.T, h *harness, claim *resourceapi.ResourceClaim) {
		for _, c := range changes {
			c(t, h, claim)
		}
	}
}

// A claim deleted from the API (or replaced, or deallocated) while prepared
// is unprepared by the plugin's periodic pass once two passes a grace
// apart found it gone; a live claim, a claim back by the second pass and
// any claim while the API fails are kept.
func TestClaimGC(t *testing.T) {
	tests := map[string]struct {
		// change is made before the first pass, between after it and
		// beforeThird after the second (for claims kept until then).
		change, between, beforeThird claimChange
		wantFreed                    bool
	}{
		"deleted":                     {change: deleteClaim, wantFreed: true},
		"re-created with another UID": {change: both(deleteClaim, createClaim("uid-other")), wantFreed: true},
		"deallocated": {change: updateAllocation(func(*resourceapi.AllocationResult) *resourceapi.AllocationResult { return nil }),
			wantFreed: true},
		"allocated on another node": {change: updateAllocation(func(a *resourceapi.AllocationResult) *resourceapi.AllocationResult {
			a.Devices.Results[0].Pool = "node-2"
			return a
		}), wantFreed: true},
		"still exists":      {change: func(*testing.T, *harness, *resourceapi.ResourceClaim) {}},
		"deleted, API down": {change: both(deleteClaim, apiDown(1000))},
		// An API error breaks the run of passes that found the claim gone.
		"deleted, API down at the second pass": {change: deleteClaim, between: apiDown(1)},
		// So does a pass that finds it back.
		"back by the second pass, deleted again": {change: deleteClaim, between: createClaim("uid-train"), beforeThird: deleteClaim},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(time.Now())
			h := startPlugin(t, v1alpha1.TierInference, func(h *harness) { h.clock = clk })
			claim := h.claim(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassGPU).Obj(), nil)
			resp, err := h.prepare(claim)
			require.NoError(t, err)
			require.Empty(t, resp.Claims["uid-train"].Error)
			tc.change(t, h, claim)

			claimPass(t, clk, plugin.ClaimGCFirstPass)
			assertPrepared(t, h, "after the first pass: gone only once")
			if tc.between != nil {
				tc.between(t, h, claim)
			}
			claimPass(t, clk, plugin.DefaultClaimGCInterval)

			if tc.wantFreed {
				h.assertNothingPrepared(t)
				assert.Len(t, gcEvents(t, h), 1, "a Warning event on the node names the claim")
				return
			}
			if tc.beforeThird != nil {
				tc.beforeThird(t, h, claim)
			}
			claimPass(t, clk, plugin.DefaultClaimGCInterval)
			assertPrepared(t, h, "kept")
			assert.Empty(t, gcEvents(t, h))
		})
	}
}

// claimPass lets the plugin's next claim pass run and waits for its end:
// the pass's timer is the clock's only waiter, gone while a pass runs.
func claimPass(t *testing.T, clk *testingclock.FakeClock, d time.Duration) {
	t.Helper()
	require.Eventually(t, clk.HasWaiters, gcWait, gcTick, "the claim pass waits for its timer")
	clk.Step(d)
	require.Eventually(t, clk.HasWaiters, gcWait, gcTick, "the claim pass ends")
}

func assertPrepared(t *testing.T, h *harness, what string) {
	t.Helper()
	require.Equal(t, inventory.ComputeModeExclusiveProcess, h.gpu(t, 0).ComputeMode, "%s: compute mode of the claim's GPU", what)
	for _, dir := range []string{h.cfg.CDIDir, filepath.Join(h.cfg.StateDir, "checkpoint")} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		n := 0
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != checkpoint.LockFile {
				n++
			}
		}
		require.Equal(t, 1, n, "%s: files in %s", what, dir)
	}
}

// gcEvents are the node's events about claims the pass unprepared.
func gcEvents(t *testing.T, h *harness) []string {
	list, err := h.client.CoreV1().Events(metav1.NamespaceDefault).List(h.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, ev := range list.Items {
		if ev.Reason != plugin.ReasonClaimGoneUnprepared {
			continue
		}
		assert.Equal(t, "Warning", ev.Type)
		assert.Equal(t, nodeName, ev.InvolvedObject.Name)
		assert.True(t, strings.Contains(ev.Message, "ns/train"), "the event names the claim: %s", ev.Message)
		out = append(out, ev.Message)
	}
	return out
}
