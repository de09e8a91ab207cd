package sharing

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ExecRunner runs commands as host processes, with the plugin's
// environment plus Cmd.Env.
type ExecRunner struct{}

var _ Runner = ExecRunner{}

// Run runs the command to completion; the error carries its output.
func (ExecRunner) Run(ctx context.Context, cmd Cmd) error {
	if len(cmd.Argv) == 0 {
		return fmt.Errorf("run: empty command")
	}
	c := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	c.Env = append(os.Environ(), cmd.Env...)
	c.Stdin = strings.NewReader(cmd.Stdin)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("run %s: %w: %s", strings.Join(cmd.Argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
