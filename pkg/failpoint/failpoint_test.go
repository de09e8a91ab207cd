package failpoint

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHitKillsOnlyAtTheArmedPoint(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit("other")
		_, _ = os.Stdout.WriteString("passed other\n")
		Hit("here")
		t.Fatal("still alive after the armed fail point")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKillsOnlyAtTheArmedPoint$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=here")
	out, err := cmd.Output()
	require.Contains(t, string(out), "passed other", "a fail point that is not armed must not kill")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	ws := exit.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled())
	require.Equal(t, syscall.SIGKILL, ws.Signal())
}

func TestHitUnarmedReturns(t *testing.T) {
	armed = ""
	Hit("anything")
}
