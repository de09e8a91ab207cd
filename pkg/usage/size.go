package usage

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cost"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Size is a device a claim could use instead: a MIG profile or a smaller
// GPU, as a tier class offers it, with its price.
type Size struct {
	// Name is what users ask for: "inference 1g.18gb".
	Name string
	// Product limits the size to claims on that product ("NVIDIA H200");
	// "" fits any (compare Multiprocessors across one architecture only).
	Product         string
	MemoryBytes     uint64
	Multiprocessors int
	// CostPerHour is in dollars per device-hour.
	CostPerHour float64
}

func (s Size) validate() error {
	switch {
	case s.Name == "":
		return errors.New("size without a name")
	case s.MemoryBytes == 0 || s.Multiprocessors <= 0:
		return fmt.Errorf("size %s: memory and multiprocessors must be positive", s.Name)
	case s.CostPerHour < 0:
		return fmt.Errorf("size %s: negative cost", s.Name)
	}
	return nil
}

// Suggestion is a cheaper size that a claim's peaks fit, one per device.
type Suggestion struct {
	Size  Size
	Count int
	// CostPerHour is Count × the size's cost; CurrentCostPerHour is the
	// claim's.
	CostPerHour        float64
	CurrentCostPerHour float64
	// Text says it: "peak 11 GiB / 9% SM: inference 1g.18gb would fit,
	// $0.44/h instead of $3.50/h".
	Text string
}

// Savings is the dollars per hour the suggestion saves.
func (s Suggestion) Savings() float64 { return s.CurrentCostPerHour - s.CostPerHour }

// suggest picks the cheapest size that holds the busiest device's peak
// memory and SMs with headroom, per device of the claim, when it costs
// less than the claim does now. Claims whose devices differ in product or
// size, or whose size or cost is unknown, get none.
func suggest(c Claim, p peaks, sizes []Size, headroom float64) *Suggestion {
	if len(c.Devices) == 0 || c.CostPerHour <= 0 {
		return nil
	}
	first := c.Devices[0]
	for _, d := range c.Devices {
		if d.Product != first.Product || d.MemoryBytes != first.MemoryBytes || d.Multiprocessors != first.Multiprocessors {
			return nil
		}
	}
	if first.Multiprocessors <= 0 {
		return nil
	}
	needMem := float64(p.memoryBytes) * (1 + headroom)
	needSMs := p.smRatio * float64(first.Multiprocessors) * (1 + headroom)
	var best *Size
	for i := range sizes {
		s := &sizes[i]
		if s.Product != "" && s.Product != first.Product {
			continue
		}
		if float64(s.MemoryBytes) < needMem || float64(s.Multiprocessors) < needSMs {
			continue
		}
		if s.MemoryBytes >= first.MemoryBytes && s.Multiprocessors >= first.Multiprocessors {
			continue // not smaller
		}
		if best == nil || s.CostPerHour < best.CostPerHour {
			best = s
		}
	}
	n := len(c.Devices)
	if best == nil || best.CostPerHour*float64(n) >= c.CostPerHour {
		return nil
	}
	sg := &Suggestion{Size: *best, Count: n, CostPerHour: best.CostPerHour * float64(n), CurrentCostPerHour: c.CostPerHour}
	sg.Text = suggestionText(p, sg)
	return sg
}

func suggestionText(p peaks, s *Suggestion) string {
	var b strings.Builder
	fmt.Fprintf(&b, "peak %s / %d%% SM", formatGiB(p.memoryBytes), int(math.Round(p.smRatio*100)))
	if s.Count > 1 {
		fmt.Fprintf(&b, " per device: %d x %s would fit", s.Count, s.Size.Name)
	} else {
		fmt.Fprintf(&b, ": %s would fit", s.Size.Name)
	}
	fmt.Fprintf(&b, ", $%.2f/h instead of $%.2f/h", s.CostPerHour, s.CurrentCostPerHour)
	return b.String()
}

// formatGiB prints whole GiB ("11 GiB"), or MiB under one GiB.
func formatGiB(b uint64) string {
	const gib, mib = 1 << 30, 1 << 20
	if b < gib {
		return fmt.Sprintf("%d MiB", int(math.Round(float64(b)/mib)))
	}
	return fmt.Sprintf("%d GiB", int(math.Round(float64(b)/gib)))
}

// OversizedMessage is the Event text for a claim with a suggestion.
func OversizedMessage(r ClaimReport) string {
	if r.Suggestion == nil {
		return ""
	}
	return fmt.Sprintf("claim %s holds %s: %s", r.Claim.Name, describeDevices(r.Claim.Devices), r.Suggestion.Text)
}

// GPUDevice describes a claim's device on gpu: the whole GPU when profile
// is "", else its MIG profile. The whole GPU's SMs are those of its full
// MIG profile (NVML reports no SM count outside MIG); 0 on GPUs without MIG,
// which gets such claims no suggestion.
func GPUDevice(gpu inventory.GPU, ref GPURef, profile string) Device {
	d := Device{GPU: ref, Product: gpu.ProductName, MemoryBytes: gpu.MemoryBytes, Multiprocessors: fullSMs(gpu)}
	if profile == "" || gpu.MIG == nil {
		return d
	}
	if p, ok := gpu.MIG.Profile(profile); ok {
		d.Profile, d.MemoryBytes, d.Multiprocessors = p.Name, p.MemoryBytes, p.Multiprocessors
	}
	return d
}

func fullSMs(gpu inventory.GPU) int {
	if gpu.MIG == nil {
		return 0
	}
	sms := 0
	for _, p := range gpu.MIG.Profiles {
		sms = max(sms, p.Multiprocessors)
	}
	return sms
}

// MIGSizes lists the MIG profiles of gpu (without media extensions) as
// sizes of the tier class className ("inference"), named "inference
// 1g.18gb", priced as pkg/slices publishes them (cost.MIG) from the GPU's
// price per hour.
func MIGSizes(gpu inventory.GPU, className string, pricePerGPUHour v1alpha1.MicroDollars) []Size {
	if gpu.MIG == nil || gpu.MIG.MemorySlices == 0 {
		return nil
	}
	var out []Size
	for _, p := range gpu.MIG.Profiles {
		if p.MediaExtensions() || p.Multiprocessors == 0 {
			continue
		}
		out = append(out, Size{
			Name: className + " " + p.Name, Product: gpu.ProductName,
			MemoryBytes: p.MemoryBytes, Multiprocessors: p.Multiprocessors,
			CostPerHour: cost.MIG(pricePerGPUHour, p, gpu).PerHour.Dollars(),
		})
	}
	return out
}
