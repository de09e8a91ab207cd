package checkpoint_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
)

func TestStateLockExclusiveWaitsForSharedHolders(t *testing.T) {
	dir := t.TempDir()
	old, err := checkpoint.OpenStateLock(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = old.Close() })
	upd, err := checkpoint.OpenStateLock(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = upd.Close() })

	// Two prepares in flight in the old process.
	release1, err := old.Shared()
	require.NoError(t, err)
	release2, err := old.Shared()
	require.NoError(t, err)

	got := make(chan func() error, 1)
	go func() {
		unlock, err := upd.Exclusive()
		if err != nil {
			close(got)
			return
		}
		got <- unlock
	}()
	release1()
	release1() // releasing twice is one release
	select {
	case <-got:
		t.Fatal("exclusive lock taken while a prepare is still in flight")
	case <-time.After(100 * time.Millisecond):
	}
	release2()
	var unlock func() error
	select {
	case unlock = <-got:
		require.NotNil(t, unlock, "exclusive lock failed")
	case <-time.After(5 * time.Second):
		t.Fatal("exclusive lock not taken after the last prepare ended")
	}

	// While it is held, a new prepare in the old process waits.
	shared := make(chan func(), 1)
	go func() {
		r, err := old.Shared()
		if err == nil {
			shared <- r
		}
	}()
	select {
	case <-shared:
		t.Fatal("shared lock taken during the exclusive hold")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, unlock())
	select {
	case r := <-shared:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("shared lock not taken after the exclusive hold ended")
	}
}
