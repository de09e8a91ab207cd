package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type opts struct {
	s string
	i int
	f float64
	b bool
	d time.Duration
}

func newTestFlags(env map[string]string, out *bytes.Buffer) (*FlagSet, *opts) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := NewFlagSet("demo", lookup, out)
	fs.SetHeader("demo does nothing.\n")
	var o opts
	fs.String(&o.s, "name", "TIERRA_NAME", "def", "a name")
	fs.Int(&o.i, "count", "TIERRA_COUNT", 3, "a count", func(n int) error {
		if n > 10 {
			return errors.New("want at most 10")
		}
		return nil
	})
	fs.Float(&o.f, "share", "TIERRA_SHARE", 0.5, "a share")
	fs.Bool(&o.b, "fast", "TIERRA_FAST", false, "go fast")
	fs.Duration(&o.d, "every", "TIERRA_EVERY", time.Minute, "how often")
	return fs, &o
}

func TestPrecedence(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		want opts
	}{
		"defaults": {want: opts{s: "def", i: 3, f: 0.5, d: time.Minute}},
		"environment": {
			env:  map[string]string{"TIERRA_NAME": "env", "TIERRA_COUNT": "7", "TIERRA_SHARE": "0.25", "TIERRA_FAST": "true", "TIERRA_EVERY": "5s"},
			want: opts{s: "env", i: 7, f: 0.25, b: true, d: 5 * time.Second},
		},
		"flag beats environment": {
			args: []string{"--name=flag", "--count", "1", "-share=1", "--fast=false", "--every=1h"},
			env:  map[string]string{"TIERRA_NAME": "env", "TIERRA_COUNT": "7", "TIERRA_SHARE": "oops", "TIERRA_FAST": "true", "TIERRA_EVERY": "5s"},
			want: opts{s: "flag", i: 1, f: 1, d: time.Hour},
		},
		"an empty variable is a value": {
			env:  map[string]string{"TIERRA_NAME": ""},
			want: opts{s: "", i: 3, f: 0.5, d: time.Minute},
		},
		"a bool flag alone is true": {args: []string{"--fast"}, want: opts{s: "def", i: 3, f: 0.5, b: true, d: time.Minute}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs, got := newTestFlags(tc.env, &bytes.Buffer{})
			require.NoError(t, fs.Parse(tc.args))
			assert.Equal(t, tc.want, *got)
		})
	}
}

func TestMalformed(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		wantErr []string
	}{
		"int flag":        {args: []string{"--count=many"}, wantErr: []string{`--count "many": want an integer such as 40`}},
		"int check":       {args: []string{"--count=11"}, wantErr: []string{`--count "11": want at most 10`}},
		"float flag":      {args: []string{"--share=half"}, wantErr: []string{`--share "half": want a number such as 20 or 0.5`}},
		"bool flag":       {args: []string{"--fast=yes please"}, wantErr: []string{`--fast "yes please": want true or false`}},
		"duration flag":   {args: []string{"--every=60"}, wantErr: []string{`--every "60": want a duration such as 90s, 10m or 1h30m`}},
		"unknown flag":    {args: []string{"--colour=red"}, wantErr: []string{"flag provided but not defined: -colour"}},
		"stray arguments": {args: []string{"run", "now"}, wantErr: []string{`unexpected arguments: ["run" "now"]`}},
		"variables, all named": {
			env: map[string]string{"TIERRA_COUNT": "", "TIERRA_SHARE": "x", "TIERRA_FAST": "on", "TIERRA_EVERY": "soon"},
			wantErr: []string{
				`environment variable TIERRA_COUNT="" (--count): want an integer`,
				`environment variable TIERRA_SHARE="x" (--share): want a number`,
				`environment variable TIERRA_FAST="on" (--fast): want true or false`,
				`environment variable TIERRA_EVERY="soon" (--every): want a duration`,
			},
		},
		"variable check":         {env: map[string]string{"TIERRA_COUNT": "12"}, wantErr: []string{`TIERRA_COUNT="12" (--count): want at most 10`}},
		"unknown logging format": {args: []string{"--logging-format=xml"}, wantErr: []string{"logging flags:", "Unsupported log format"}},
		"vmodule with json":      {args: []string{"--logging-format=json", "--vmodule=foo=2"}, wantErr: []string{"Only supported for text log format"}},
		"alpha option":           {args: []string{"--logging-format=json", "--log-json-split-stream"}, wantErr: []string{"Feature LoggingAlphaOptions is disabled"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs, _ := newTestFlags(tc.env, &bytes.Buffer{})
			err := fs.Parse(tc.args)
			for _, want := range tc.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	fs, _ := newTestFlags(nil, &out)
	err := fs.Parse([]string{"--help"})
	require.ErrorIs(t, err, flag.ErrHelp)
	help := out.String()
	lines := strings.Split(help, "\n")
	assert.Equal(t, "demo does nothing.", lines[0])
	assert.Contains(t, help, "even when it is empty")
	for _, want := range []string{
		"  --name string\n    \ta name (default \"def\") [TIERRA_NAME]\n",
		"  --count int\n    \ta count (default 3) [TIERRA_COUNT]\n",
		"  --share float\n    \ta share (default 0.5) [TIERRA_SHARE]\n",
		"  --fast\n    \tgo fast [TIERRA_FAST]\n",
		"  --every duration\n    \thow often (default 1m0s) [TIERRA_EVERY]\n",
	} {
		assert.Contains(t, help, want)
	}
	heading := strings.Index(help, "\nLogging flags")
	require.Positive(t, heading)
	assert.Less(t, strings.Index(help, "--every"), heading, "own flags first")
	for _, name := range []string{"--logging-format string", "--v value", "--vmodule value", "--log-flush-frequency duration"} {
		assert.Greater(t, strings.Index(help, name), heading, name)
	}
	assert.Contains(t, help, `"json"`, "the JSON format is registered")
	assert.NotContains(t, help, "--logtostderr", "klog's deprecated flags are gone")
	assert.NotContains(t, help, "--log-json-split-stream", "alpha options need a feature gate the binaries lack")
}

func TestExitCode(t *testing.T) {
	tests := map[string]struct {
		err  error
		want int
	}{
		"success":        {want: ExitOK},
		"help":           {err: flag.ErrHelp, want: ExitOK},
		"help, marked":   {err: Usage(flag.ErrHelp), want: ExitOK},
		"usage":          {err: Usage(errors.New("bad flag")), want: ExitUsage},
		"usage, wrapped": {err: errors.Join(errors.New("x"), Usage(errors.New("bad flag"))), want: ExitUsage},
		"run failure":    {err: errors.New("connection refused"), want: ExitRun},
		"usage of nil":   {err: Usage(nil), want: ExitOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, ExitCode(tc.err))
		})
	}
}
