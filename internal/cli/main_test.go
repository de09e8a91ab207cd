package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"
)

// mainEnv makes the test binary run demoMain instead of the tests.
const mainEnv = "TIERRA_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		demoMain()
	}
	os.Exit(m.Run())
}

// demoMain is a binary built on Main: it logs one line at -v=0 and one at
// -v=2, and fails when --fail is given.
func demoMain() {
	type config struct {
		fail bool
		name string
	}
	parse := func(fs *FlagSet, args []string) (config, error) {
		var c config
		fs.Bool(&c.fail, "fail", "TIERRA_FAIL", false, "fail the run")
		fs.String(&c.name, "name", "TIERRA_NAME", "demo", "a name")
		return c, fs.Parse(args)
	}
	Main("demo", os.Args[1:], parse, func(ctx context.Context, c config) error {
		logger := klog.FromContext(ctx)
		logger.Info("Starting", "name", c.name)
		logger.V(2).Info("Detail", "level", 2)
		if c.fail {
			return errors.New("it broke")
		}
		return nil
	})
}

// runDemo runs demoMain in a child process.
func runDemo(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), mainEnv+"=1"), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

func TestMainExitCodes(t *testing.T) {
	tests := map[string]struct {
		args       []string
		env        []string
		wantCode   int
		wantStderr string
	}{
		"success":         {wantCode: ExitOK},
		"help":            {args: []string{"--help"}, wantCode: ExitOK, wantStderr: "[TIERRA_FAIL]"},
		"bad flag":        {args: []string{"--fail=maybe"}, wantCode: ExitUsage, wantStderr: "demo: --fail \"maybe\": want true or false\nRun demo --help for the flags."},
		"bad variable":    {env: []string{"TIERRA_FAIL=maybe"}, wantCode: ExitUsage, wantStderr: `environment variable TIERRA_FAIL="maybe" (--fail)`},
		"bad log format":  {args: []string{"--logging-format=xml"}, wantCode: ExitUsage, wantStderr: "Unsupported log format"},
		"run failure":     {args: []string{"--fail"}, wantCode: ExitRun, wantStderr: "it broke"},
		"failure via env": {env: []string{"TIERRA_FAIL=true"}, wantCode: ExitRun, wantStderr: "it broke"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runDemo(t, tc.env, tc.args...)
			assert.Equal(t, tc.wantCode, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, tc.wantStderr)
		})
	}
}

func TestMainJSONLogs(t *testing.T) {
	_, stderr, code := runDemo(t, []string{"TIERRA_NAME=json-demo"}, "--logging-format=json", "-v=2", "--fail")
	require.Equal(t, ExitRun, code, stderr)
	var msgs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "every line is JSON: %q", line)
		msgs = append(msgs, m)
	}
	require.Len(t, msgs, 3, stderr)
	assert.Equal(t, "Starting", msgs[0]["msg"])
	assert.Equal(t, "json-demo", msgs[0]["name"])
	assert.Equal(t, "Detail", msgs[1]["msg"])
	assert.EqualValues(t, 2, msgs[1]["v"], "the verbosity flag applies")
	assert.Equal(t, "Failed", msgs[2]["msg"])
	assert.Equal(t, "it broke", msgs[2]["err"])
	assert.Equal(t, "demo", msgs[2]["command"])
}

func TestMainTextLogs(t *testing.T) {
	_, stderr, code := runDemo(t, nil)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stderr, `"Starting" name="demo"`)
	assert.NotContains(t, stderr, "Detail", "-v=0 hides V(2)")
	assert.False(t, json.Valid([]byte(strings.Split(stderr, "\n")[0])), "text, not JSON: %q", stderr)
}
