// Package failpoint kills the process at a named step, for crash tests:
// with TIERRA_FAILPOINT=<name> set, Hit(name) sends the process SIGKILL,
// as a power cut or an OOM kill would stop it there. Unset, Hit costs one
// comparison of a string read once at start.
package failpoint

import (
	"os"
	"syscall"
)

// Env names the fail point to crash at.
const Env = "TIERRA_FAILPOINT"

var armed = os.Getenv(Env)

// Hit kills the process with SIGKILL when name is the armed fail point.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously; never return
}
