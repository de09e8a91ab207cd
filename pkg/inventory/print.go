package inventory

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// FormatPlacements writes placements compactly: "{0,2,4}:2" when they all
// have one size (the usual case), "{0:1,2:2}" otherwise, "{}" when none.
func FormatPlacements(ps []MIGPlacement) string {
	if len(ps) == 0 {
		return "{}"
	}
	sameSize := true
	for _, p := range ps {
		sameSize = sameSize && p.Size == ps[0].Size
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		if sameSize {
			parts[i] = strconv.Itoa(p.Start)
		} else {
			parts[i] = p.String()
		}
	}
	s := "{" + strings.Join(parts, ",") + "}"
	if sameSize {
		s += ":" + strconv.Itoa(ps[0].Size)
	}
	return s
}

// WriteTable writes a machine for people: one row per GPU, then the MIG
// profiles of each distinct MIG geometry, then live MIG instances.
func WriteTable(w io.Writer, m Machine) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Driver %s, CUDA %s, %d GPUs\n\n", m.DriverVersion, m.CUDADriverVersion, len(m.GPUs))
	fmt.Fprintln(tw, "GPU\tPRODUCT\tMEMORY\tCC\tPCI BUS\tPCIE ROOT\tNUMA\tNVLINK DOMAIN\tMIG\tCOMPUTE MODE\tUUID")
	for _, g := range m.GPUs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", g.Index, g.ProductName,
			formatGiB(g.MemoryBytes), g.CUDAComputeCapability, g.PCIBusID, g.PCIeRoot, g.NUMANode,
			orDash(g.NVLinkDomain), migState(g), g.ComputeMode, g.UUID)
	}
	seen := map[string]bool{}
	for _, g := range m.GPUs {
		if g.MIG == nil || len(g.MIG.Profiles) == 0 || seen[g.ProductName] {
			continue
		}
		seen[g.ProductName] = true
		fmt.Fprintf(tw, "\nMIG profiles of %s (%d compute slices, %d memory slices)\n",
			g.ProductName, g.MIG.ComputeSlices, g.MIG.MemorySlices)
		fmt.Fprintln(tw, "PROFILE\tID\tCOMPUTE\tMEMORY\tSMS\tMAX\tPLACEMENTS")
		for _, p := range g.MIG.Profiles {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\n", p.Name, p.ID, p.ComputeSlices,
				formatGiB(p.MemoryBytes), p.Multiprocessors, p.MaxInstances, FormatPlacements(p.Placements))
		}
	}
	writeInstances(tw, m)
	return tw.Flush()
}

func writeInstances(w io.Writer, m Machine) {
	header := false
	for _, g := range m.GPUs {
		if g.MIG == nil {
			continue
		}
		for _, in := range g.MIG.Instances {
			if !header {
				fmt.Fprintln(w, "\nMIG instances")
				fmt.Fprintln(w, "GPU\tGI\tPROFILE\tPLACEMENT\tCOMPUTE INSTANCES\tUUID")
				header = true
			}
			cis := make([]string, len(in.ComputeInstances))
			for i, c := range in.ComputeInstances {
				cis[i] = strconv.Itoa(c.ID)
			}
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\n", g.Index, in.GPUInstanceID, in.ProfileName,
				in.Placement, orDash(strings.Join(cis, ",")), orDash(in.UUID))
		}
	}
}

func migState(g GPU) string {
	switch {
	case g.MIGEnabled:
		return "enabled"
	case g.MIGCapable:
		return "disabled"
	default:
		return "-"
	}
}

func formatGiB(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
