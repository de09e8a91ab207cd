package checkpoint_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
)

// openTwo opens one state dir twice, as the two plugin processes of a
// surge rollout do.
func openTwo(t *testing.T) (*checkpoint.Store, *checkpoint.Store) {
	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	a, _, err := checkpoint.Open(ctx, checkpoint.Options{Dir: dir, BootID: "boot-1"})
	require.NoError(t, err)
	b, _, err := checkpoint.Open(ctx, checkpoint.Options{Dir: dir, BootID: "boot-1"})
	require.NoError(t, err)
	return a, b
}

func TestListSeesTheOtherProcessesRecords(t *testing.T) {
	a, b := openTwo(t)
	rec := checkpoint.Claim{UID: "uid-1", Namespace: "ns", Name: "c", Tenant: "research", Phase: checkpoint.PhasePrepared,
		Devices: []checkpoint.Device{{Request: "gpu", Pool: "node", Device: "gpu-0", GPUUUID: "GPU-0", Sharing: "TimeSlicing", Mode: "Shared"}}}
	require.NoError(t, a.Put(rec))
	got := b.List()
	require.Len(t, got, 1, "a record the other process wrote after Open")
	assert.Equal(t, rec, got[0])

	require.NoError(t, a.Delete("uid-1"))
	assert.Empty(t, b.List(), "a record the other process deleted")
}

func TestLockGPUsExcludesTheOtherProcess(t *testing.T) {
	a, b := openTwo(t)
	unlock, err := a.LockGPUs([]string{"GPU-1", "GPU-0", "GPU-1"})
	require.NoError(t, err)
	got := make(chan struct{})
	go func() {
		release, err := b.LockGPUs([]string{"GPU-1"})
		if err == nil {
			close(got)
			release()
		}
	}()
	select {
	case <-got:
		t.Fatal("the other process took GPU-1 while this one held it")
	case <-time.After(200 * time.Millisecond):
	}
	other, err := b.LockGPUs([]string{"GPU-2"})
	require.NoError(t, err, "another GPU is free")
	other()
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("GPU-1 was not handed over after unlock")
	}
	_, err = a.LockGPUs([]string{"../escape"})
	require.ErrorIs(t, err, checkpoint.ErrInvalidClaim, "a GPU name that is no file name")
}

func TestHoldingReturnsTheGPUsRecordsOnly(t *testing.T) {
	a, b := openTwo(t)
	for uid, gpu := range map[string]string{"uid-0": "GPU-0", "uid-1": "GPU-1", "uid-2": "GPU-0"} {
		require.NoError(t, a.Put(checkpoint.Claim{UID: uid, Namespace: "ns", Name: uid, Phase: checkpoint.PhasePrepared,
			Devices: []checkpoint.Device{{Request: "gpu", Pool: "node", Device: "d", GPUUUID: gpu, Sharing: "Exclusive"}}}))
	}
	var uids []string
	for _, c := range b.Holding("GPU-0") {
		uids = append(uids, c.UID)
	}
	assert.ElementsMatch(t, []string{"uid-0", "uid-2"}, uids, "from the other process's writes")
	assert.Len(t, b.Holding("GPU-0", "GPU-1"), 3)
	assert.Empty(t, b.Holding("GPU-7"))
}
