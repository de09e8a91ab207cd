package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// Exit codes of Tierra's binaries.
const (
	ExitOK    = 0 // success, or --help
	ExitRun   = 1 // the binary ran and failed
	ExitUsage = 2 // bad flags, environment variables or configuration
)

// UsageError marks a bad command line, environment or configuration.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usage marks err (when not nil) as a usage error.
func Usage(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return UsageError{Err: err}
}

// ExitCode is the exit status for err: ExitOK for nil and flag.ErrHelp,
// ExitUsage for a UsageError, ExitRun otherwise.
func ExitCode(err error) int {
	var u UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	}
	return ExitRun
}

// Exit ends the process for err (see ExitCode): a usage error is printed
// to stderr with a pointer to --help, a run failure is logged; klog is
// flushed first.
func Exit(name string, err error) {
	code := ExitCode(err)
	switch code {
	case ExitUsage:
		fmt.Fprintf(os.Stderr, "%s: %v\nRun %s --help for the flags.\n", name, err, name)
	case ExitRun:
		klog.Background().Error(err, "Failed", "command", name)
	}
	klog.FlushAndExit(klog.ExitFlushTimeout, code)
}

// Main is a binary's main: parse reads args into a config with a FlagSet
// bound to the process environment (every error it returns is a usage
// error), the logging flags are applied, and run gets a context cancelled
// by SIGINT or SIGTERM that carries klog's logger. It exits as Exit does.
func Main[T any](name string, args []string, parse func(*FlagSet, []string) (T, error), run func(context.Context, T) error) {
	Exit(name, mainErr(name, args, parse, run))
}

func mainErr[T any](name string, args []string, parse func(*FlagSet, []string) (T, error), run func(context.Context, T) error) error {
	fs := NewFlagSet(name, os.LookupEnv, os.Stderr)
	cfg, err := parse(fs, args)
	if err != nil {
		return Usage(err)
	}
	if err := fs.ApplyLogging(); err != nil {
		return Usage(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(klog.NewContext(ctx, klog.Background()), cfg)
}

// ApplyLogging makes the logging flags take effect (once per process).
func (f *FlagSet) ApplyLogging() error {
	if err := logsapi.ValidateAndApply(f.logging, nil); err != nil {
		return fmt.Errorf("logging flags: %w", err)
	}
	return nil
}
