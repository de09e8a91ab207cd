package prepare_test

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// fullDisk is a checkpoint whose disk fills up after okPuts writes: every
// later Put fails with ENOSPC. Deleting still works, as on a full disk.
type fullDisk struct {
	*checkpoint.Store
	okPuts atomic.Int32
}

func (f *fullDisk) Put(c checkpoint.Claim) error {
	if f.okPuts.Add(-1) < 0 {
		return &errnoErr{syscall.ENOSPC}
	}
	return f.Store.Put(c)
}

type errnoErr struct{ errno syscall.Errno }

func (e *errnoErr) Error() string { return "write checkpoint: " + e.errno.Error() }
func (e *errnoErr) Unwrap() error { return e.errno }

// A full disk after the MIG instance is created: the instance's record
// cannot be written, nor can the rollback's UnprepareStarted; the rollback
// must destroy the instance anyway instead of leaking it.
func TestPrepareOnAFullDiskLeaksNoMIGInstance(t *testing.T) {
	disk := &fullDisk{}
	disk.okPuts.Store(1) // PrepareStarted only
	e := newEnv(t, v1alpha1.TierInference, nil, func(o *prepare.Options) {
		disk.Store = o.Store.(*checkpoint.Store)
		o.Store = disk
	})
	claim := e.allocate(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.ErrorIs(t, err, syscall.ENOSPC)
	e.assertNothingPrepared(t)

	disk.okPuts.Store(100) // space freed: the retry prepares at the same placement
	_, err = e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-infer"))
	e.assertNothingPrepared(t)
}

// leakyCreate creates the instance and then fails, as a create whose state
// write or compute instance fails after the GPU instance exists.
type leakyCreate struct {
	*nvgpu.Fake
}

func (l leakyCreate) CreateMIGInstance(ctx context.Context, opts nvgpu.CreateMIGOptions) (inventory.MIGInstance, error) {
	if _, err := l.Fake.CreateMIGInstance(ctx, opts); err != nil {
		return inventory.MIGInstance{}, err
	}
	return inventory.MIGInstance{}, errors.New("save fake machine state: no space left on device")
}

// A create that fails after the instance exists leaves nothing behind: the
// instance at the planned placement is taken into the record and destroyed.
func TestPrepareDestroysAnInstanceAFailedCreateLeft(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, nil, func(o *prepare.Options) { o.Hardware = leakyCreate{o.Hardware.(*nvgpu.Fake)} })
	claim := e.allocate(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.ErrorContains(t, err, "no space left on device")
	e.assertNothingPrepared(t)

}
