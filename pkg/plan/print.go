package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints one row per claim (claim → tier → node → devices →
// cost per hour) and the yield of each node.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	heading := res.RowHeading
	if heading == "" {
		heading = "CLAIM"
	}
	fmt.Fprintln(tw, heading+"\tCLASS\tTIER\tNODE\tDEVICES\tGPUS\t$/HOUR")
	var total float64
	for _, p := range res.Placements {
		node, devices := p.Node, strings.Join(p.Devices, ",")
		if node == "" {
			node, devices = "-", "(does not fit on any node)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3g\t%s\n", p.Claim, orDash(p.Classes), orDash(p.Tiers),
			node, devices, p.GPUs, p.Cost)
		total += p.GPUs
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tGPUS\tALLOCATED (GPU-EQUIV.)\tYIELD")
	var gpus int
	for _, n := range res.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%.3g\t%.1f%%\n", n.Node, n.GPUs, n.Allocated, percent(n.Allocated, n.GPUs))
		gpus += n.GPUs
	}
	fmt.Fprintf(tw, "total\t%d\t%.3g\t%.1f%%\n", gpus, total, percent(total, gpus))
	return tw.Flush()
}

func percent(part float64, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * part / float64(whole)
}

func orDash(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ",")
}
