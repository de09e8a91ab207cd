package prepare_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// ctxRunner records commands and, like sharing.ExecRunner, runs none once
// its context is done.
type ctxRunner struct{ sharing.FakeRunner }

func (r *ctxRunner) Run(ctx context.Context, cmd sharing.Cmd) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.FakeRunner.Run(ctx, cmd)
}

// An unprepare whose context is done before the MPS daemon is stopped
// (the kubelet gave up while it waited for the GPU's lock) must keep the
// claim's record, so a retry stops the daemon; deleting it leaked the
// daemon for good.
func TestUnprepareCancelledKeepsTheDaemonsRecord(t *testing.T) {
	runner := &ctxRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
	require.NoError(t, err)
	e := newEnvPolicy(t, v1alpha1.TierDev, tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS), nil, func(o *prepare.Options) { o.Sharer = m })
	const mps = `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS"}}`
	claim := e.allocate(t, tierratest.MakeClaim("a", "ns").UID("uid-a").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Config(mps).Obj())
	_, err = e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	require.Len(t, runner.Commands(), 1, "daemon started")

	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	require.ErrorIs(t, e.prep.Unprepare(cancelled, "uid-a"), context.Canceled)
	require.Len(t, runner.Commands(), 1, "the daemon was not stopped")
	rec, ok := e.store.Get("uid-a")
	require.True(t, ok, "the record stays for the retry")
	assert.Equal(t, checkpoint.PhaseUnprepareStarted, rec.Phase)

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-a"))
	cmds := runner.Commands()
	require.Len(t, cmds, 2)
	assert.Equal(t, "quit\n", cmds[1].Stdin, "the retry stops the daemon")
	e.assertNothingPrepared(t)
}
