// Package cli is the flags/env convention of Tierra's binaries: typed flags,
// each bound to an environment variable named at the end of its help as
// [TIERRA_X], component-base logging flags under their own heading, and one
// exit convention (Main, Exit).
//
// Precedence: a flag on the command line wins; otherwise an environment
// variable that is set wins over the default, even when it is empty (an
// empty TIERRA_METRICS_ADDR turns metrics off); otherwise the default.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	logsapi "k8s.io/component-base/logs/api/v1"
	// Registers --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"
)

// FlagSet holds a binary's flags, their environment variables and the
// logging flags.
type FlagSet struct {
	name    string
	header  string
	lookup  func(string) (string, bool)
	out     io.Writer
	fs      *flag.FlagSet
	own     []*entry
	logging *logsapi.LoggingConfiguration
	logFlag map[string]bool
	// badFlag is the error of the last malformed flag value, with its name.
	badFlag error
}

// entry is one of the binary's own flags.
type entry struct {
	name, env, usage, typ, def string
	// set parses and stores a value; its error says what is allowed.
	set func(string) error
}

// NewFlagSet returns the flags of binary name; lookup reads the environment
// (os.LookupEnv), help goes to out.
func NewFlagSet(name string, lookup func(string) (string, bool), out io.Writer) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors come back from Parse; help is printed by Parse itself.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	f := &FlagSet{name: name, lookup: lookup, out: out, fs: fs,
		logging: logsapi.NewLoggingConfiguration(), logFlag: map[string]bool{}}
	before := map[string]bool{}
	fs.VisitAll(func(fl *flag.Flag) { before[fl.Name] = true })
	logsapi.AddGoFlags(f.logging, fs)
	fs.VisitAll(func(fl *flag.Flag) { f.logFlag[fl.Name] = !before[fl.Name] })
	return f
}

// SetHeader sets the text --help prints before the flags.
func (f *FlagSet) SetHeader(header string) { f.header = header }

// value is a typed flag.Value whose parse errors name the flag and the
// allowed form.
type value[T any] struct {
	f      *FlagSet
	e      *entry
	p      *T
	format func(T) string
	isBool bool
}

func (v *value[T]) Set(s string) error {
	if err := v.e.set(s); err != nil {
		v.f.badFlag = fmt.Errorf("--%s %q: %w", v.e.name, s, err)
		return err
	}
	return nil
}

func (v *value[T]) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.format(*v.p)
}

func (v *value[T]) IsBoolFlag() bool { return v != nil && v.isBool }

// Check is an extra rule on a flag's value; its error says what is allowed.
type Check[T any] func(T) error

func bind[T any](f *FlagSet, p *T, name, env string, def T, usage, typ string,
	parse func(string) (T, error), format func(T) string, checks []Check[T]) {
	*p = def
	set := func(s string) error {
		x, err := parse(s)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if err := c(x); err != nil {
				return err
			}
		}
		*p = x
		return nil
	}
	e := &entry{name: name, env: env, usage: usage, typ: typ, def: format(def), set: set}
	_, isBool := any(def).(bool)
	f.fs.Var(&value[T]{f: f, e: e, p: p, format: format, isBool: isBool}, name, usage)
	f.own = append(f.own, e)
}

// String binds a string flag to env.
func (f *FlagSet) String(p *string, name, env, def, usage string, checks ...Check[string]) {
	bind(f, p, name, env, def, usage, "string", func(s string) (string, error) { return s, nil },
		strconv.Quote, checks)
}

// Int binds an integer flag to env.
func (f *FlagSet) Int(p *int, name, env string, def int, usage string, checks ...Check[int]) {
	bind(f, p, name, env, def, usage, "int", func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, errors.New("want an integer such as 40")
		}
		return n, nil
	}, strconv.Itoa, checks)
}

// Float binds a floating-point flag to env.
func (f *FlagSet) Float(p *float64, name, env string, def float64, usage string, checks ...Check[float64]) {
	bind(f, p, name, env, def, usage, "float", func(s string) (float64, error) {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, errors.New("want a number such as 20 or 0.5")
		}
		return x, nil
	}, func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }, checks)
}

// Bool binds a boolean flag to env; --name alone means true.
func (f *FlagSet) Bool(p *bool, name, env string, def bool, usage string, checks ...Check[bool]) {
	bind(f, p, name, env, def, usage, "bool", func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, errors.New("want true or false")
		}
		return b, nil
	}, strconv.FormatBool, checks)
}

// Duration binds a duration flag to env.
func (f *FlagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string, checks ...Check[time.Duration]) {
	bind(f, p, name, env, def, usage, "duration", func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New("want a duration such as 90s, 10m or 1h30m")
		}
		return d, nil
	}, time.Duration.String, checks)
}

// Parse reads args, then the environment variables of the flags args did
// not set, and checks the logging flags. It returns flag.ErrHelp after
// printing the help for -h/--help. Every other error is a usage error.
func (f *FlagSet) Parse(args []string) error {
	f.badFlag = nil
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.PrintHelp()
		}
		if f.badFlag != nil {
			return f.badFlag
		}
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", f.fs.Args())
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	for _, e := range f.own {
		v, ok := f.lookup(e.env)
		if set[e.name] || !ok {
			continue
		}
		if err := e.set(v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q (--%s): %w", e.env, v, e.name, err))
		}
	}
	if err := logsapi.Validate(f.logging, nil, nil).ToAggregate(); err != nil {
		errs = append(errs, fmt.Errorf("logging flags: %w", err))
	}
	return errors.Join(errs...)
}
