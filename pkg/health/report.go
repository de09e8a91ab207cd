package health

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// NodeReport is the health part of `tierra inspect`: every GPU of the node
// with what the plugin last recorded of it.
type NodeReport struct {
	// RecordedAt is when the plugin wrote the status.
	RecordedAt time.Time   `json:"recordedAt"`
	GPUs       []GPUReport `json:"gpus"`
}

// GPUReport is one GPU's health with its index in discovery.
type GPUReport struct {
	// Index is the GPU's index; -1 for a GPU the plugin recorded that
	// discovery does not see now (off the bus).
	Index int `json:"index"`
	GPUStatus
}

// Report joins a discovered machine with a recorded status: the discovered
// GPUs in index order (Healthy, with no events, where the status does not
// know them), then the recorded GPUs discovery does not see.
func Report(m inventory.Machine, s Status) NodeReport {
	recorded := make(map[string]GPUStatus, len(s.GPUs))
	for _, g := range s.GPUs {
		recorded[g.UUID] = g
	}
	r := NodeReport{RecordedAt: s.Time, GPUs: make([]GPUReport, 0, len(m.GPUs))}
	for _, g := range m.GPUs {
		gs, ok := recorded[g.UUID]
		if !ok {
			gs = GPUStatus{UUID: g.UUID, State: StateHealthy}
		}
		delete(recorded, g.UUID)
		r.GPUs = append(r.GPUs, GPUReport{Index: g.Index, GPUStatus: gs})
	}
	slices.SortStableFunc(r.GPUs, func(a, b GPUReport) int { return a.Index - b.Index })
	for _, g := range s.GPUs {
		if _, missing := recorded[g.UUID]; missing {
			r.GPUs = append(r.GPUs, GPUReport{Index: -1, GPUStatus: g})
		}
	}
	return r
}

// WriteTable writes the report as two tables: each GPU's state, taints
// and when they clear, seen from now; then the last lastEvents events of
// each GPU, newest first.
func (r NodeReport) WriteTable(w io.Writer, now time.Time, lastEvents int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Health recorded by the plugin at %s (%s ago)\n", r.RecordedAt.Format(time.RFC3339), age(now, r.RecordedAt))
	fmt.Fprintln(tw, "GPU\tSTATE\tTAINTS\tCLEARS\tUUID")
	for _, g := range r.GPUs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", gpuIndex(g.Index), g.State, faults(g.Faults), clears(g.GPUStatus, now), g.UUID)
	}
	header := false
	for _, g := range r.GPUs {
		events := g.Events[max(0, len(g.Events)-lastEvents):]
		for i := len(events) - 1; i >= 0; i-- {
			if !header {
				fmt.Fprintf(tw, "\nLast events (at most %d per GPU, newest first)\n", lastEvents)
				fmt.Fprintln(tw, "GPU\tTIME\tAGO\tEVENT\tACTION")
				header = true
			}
			e := events[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", gpuIndex(g.Index), e.Time.Format(time.RFC3339), age(now, e.Time), e.Event, e.Action)
		}
	}
	return tw.Flush()
}

func gpuIndex(i int) string {
	if i < 0 {
		return "-"
	}
	return fmt.Sprint(i)
}

func faults(fs []Fault) string {
	if len(fs) == 0 {
		return "-"
	}
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return strings.Join(out, ", ")
}

// clears says when a GPU's taints go: in how long, or once a lost GPU
// answers again.
func clears(g GPUStatus, now time.Time) string {
	quiet := "?"
	if g.QuietPeriod != nil {
		quiet = g.QuietPeriod.Duration.String()
	}
	switch {
	case g.State == StateLost:
		return "after it answers NVML again + quiet " + quiet
	case g.ClearsAt == nil:
		return "-"
	case !g.ClearsAt.After(now):
		return "due now (quiet " + quiet + ")"
	}
	return "in " + g.ClearsAt.Sub(now).Round(time.Second).String() + " (quiet " + quiet + ")"
}

func age(now, t time.Time) string {
	if d := now.Sub(t); d > 0 {
		return d.Round(time.Second).String()
	}
	return "0s"
}
