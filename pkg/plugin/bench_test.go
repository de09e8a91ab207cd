package plugin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// BenchmarkPrepareOverSocket measures one NodePrepareResources plus one
// NodeUnprepareResources of a single claim over the DRA socket, including
// the claim GET from the (fake) API, the checkpoint fsyncs, the CDI spec
// write and the (fake) NVML calls.
func BenchmarkPrepareOverSocket(b *testing.B) {
	modes := map[string]func(*tierratest.ClaimWrapper) *tierratest.ClaimWrapper{
		"exclusive": func(w *tierratest.ClaimWrapper) *tierratest.ClaimWrapper { return w.Request("gpu", tiers.ClassGPU) },
		"mig-1g": func(w *tierratest.ClaimWrapper) *tierratest.ClaimWrapper {
			return w.Request("mig", tiers.ClassMIG).Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`)
		},
	}
	for name, request := range modes {
		b.Run(name, func(b *testing.B) {
			h := startPlugin(b, v1alpha1.TierInference)
			claim := h.claim(b, request(tierratest.MakeClaim("c", "ns").UID("uid-c")).Obj(), nil)
			var prepare time.Duration
			for b.Loop() {
				prepare += prepareUnprepare(b, h, claim)
			}
			b.ReportMetric(float64(prepare.Nanoseconds())/float64(b.N), "prepare-ns/op")
		})
	}
}

// prepareUnprepare returns how long the prepare took.
func prepareUnprepare(b *testing.B, h *harness, claim *resourceapi.ResourceClaim) time.Duration {
	start := time.Now()
	resp, err := h.prepare(claim)
	took := time.Since(start)
	require.NoError(b, err)
	require.Empty(b, resp.Claims[string(claim.UID)].Error)
	un, err := h.unprepare(claim)
	require.NoError(b, err)
	require.Empty(b, un.Claims[string(claim.UID)].Error)
	return took
}
