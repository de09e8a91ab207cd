package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// envNote is the convention, printed after every binary's header.
const envNote = `Every flag can also be set by the environment variable named in brackets
at the end of its help. A flag on the command line wins over the variable; a
variable that is set wins over the default, even when it is empty (an empty
value means what an empty flag means). The logging flags are command line only.
`

// PrintHelp writes the header, the binary's own flags and then the logging
// flags under their own heading.
func (f *FlagSet) PrintHelp() {
	out := f.out
	fmt.Fprint(out, f.header)
	if f.header != "" && !strings.HasSuffix(f.header, "\n\n") {
		fmt.Fprintln(out)
	}
	fmt.Fprint(out, envNote)
	fmt.Fprintln(out, "\nFlags:")
	for _, e := range f.own {
		printFlag(out, e.name, e.typ, e.usage, e.def, e.env)
	}
	fmt.Fprintln(out, "\nLogging flags (k8s.io/component-base/logs):")
	fmt.Fprintln(out, "  (the [Alpha] stream options are left out: they need the LoggingAlphaOptions")
	fmt.Fprintln(out, "  feature gate, which these binaries do not expose)")
	f.fs.VisitAll(func(fl *flag.Flag) {
		if f.logFlag[fl.Name] && !strings.HasPrefix(fl.Usage, "[Alpha]") {
			typ, usage := flag.UnquoteUsage(fl)
			printFlag(out, fl.Name, typ, usage, fl.DefValue, "")
		}
	})
}

func printFlag(out io.Writer, name, typ, usage, def, env string) {
	line := "  --" + name
	if typ != "" && typ != "bool" {
		line += " " + typ
	}
	fmt.Fprintln(out, line)
	text := usage
	if def != "" && def != `""` && def != "0" && def != "false" && def != "0s" && def != "[]" {
		text += fmt.Sprintf(" (default %s)", def)
	}
	if env != "" {
		text += " [" + env + "]"
	}
	fmt.Fprintln(out, "    \t"+strings.ReplaceAll(text, "\n", "\n    \t"))
}
