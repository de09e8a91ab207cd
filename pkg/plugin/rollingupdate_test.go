package plugin_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// slowMIG holds every MIG creation, once the instance exists and before
// prepare can record it, until release is closed: a prepare caught at its
// most fragile point.
type slowMIG struct {
	*nvgpu.Fake
	entered chan struct{}
	release chan struct{}
}

func (s *slowMIG) CreateMIGInstance(ctx context.Context, opts nvgpu.CreateMIGOptions) (inventory.MIGInstance, error) {
	inst, err := s.Fake.CreateMIGInstance(ctx, opts)
	s.entered <- struct{}{}
	<-s.release
	return inst, err
}

// A DaemonSet surge: the new plugin pod starts on the node while the old
// one is half-way through a MIG prepare, with the same state and CDI
// directories. The new one's startup reconcile must wait for it, not roll
// it back, and must then be able to unprepare the claim the old one
// prepared after the new one opened the checkpoint.
func TestRollingUpdateDoesNotRollBackTheOldPluginsWork(t *testing.T) {
	slow := &slowMIG{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := startPlugin(t, v1alpha1.TierInference, func(h *harness) {
		slow.Fake = h.gpus
		h.hardware = slow
	})
	claim := h.claim(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).
		Selector(`device.attributes["gpu.tierra.dev"].migProfile == "3g.71gb"`).Obj(), nil)
	prepared := make(chan *drapb.NodePrepareResourcesResponse, 1)
	go func() {
		resp, err := h.prepare(claim)
		assert.NoError(t, err)
		prepared <- resp
	}()
	select { // the old plugin has checkpointed PrepareStarted
	case <-slow.entered:
	case resp := <-prepared:
		t.Fatalf("prepare ended without creating a MIG instance: %v", resp)
	case <-time.After(10 * time.Second):
		t.Fatal("prepare never reached MIG creation")
	}

	newCfg := h.cfg
	newCfg.PodUID = "new-pod"
	newCfg.PluginDataDir, newCfg.RegistrarDir = shortTempDir(t), shortTempDir(t)
	started := make(chan struct{})
	go func() {
		defer close(started)
		h.startDriver(t, newCfg)
	}()
	select {
	case <-started:
		t.Fatal("the new plugin reconciled while the old one was preparing")
	case <-time.After(300 * time.Millisecond):
	}
	close(slow.release)
	resp := <-prepared
	require.Empty(t, resp.Claims["uid-infer"].Error)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the new plugin did not start after the old one's prepare ended")
	}
	require.Len(t, h.gpu(t, 4).MIG.Instances, 1, "the old plugin's MIG instance survives the new one's reconcile")

	// The kubelet now talks to the new plugin only.
	dra := drapb.NewDRAPluginClient(dial(t, filepath.Join(newCfg.PluginDataDir, "dra-new-pod.sock")))
	un, err := dra.NodeUnprepareResources(h.ctx, &drapb.NodeUnprepareResourcesRequest{Claims: pbClaims(nil)})
	require.NoError(t, err)
	require.Empty(t, un.Claims)
	un, err = dra.NodeUnprepareResources(h.ctx, &drapb.NodeUnprepareResourcesRequest{
		Claims: []*drapb.Claim{{Namespace: "ns", Name: "infer", Uid: "uid-infer"}}})
	require.NoError(t, err)
	require.Empty(t, un.Claims["uid-infer"].Error)
	h.assertNothingPrepared(t)
}
