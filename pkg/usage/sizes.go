package usage

import (
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

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
// 1g.18gb", priced as pkg/slices publishes them: the GPU's price per hour
// pro-rated by memory slices.
func MIGSizes(gpu inventory.GPU, className string, pricePerGPUHour float64) []Size {
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
			CostPerHour: pricePerGPUHour * float64(p.MemorySlices) / float64(gpu.MIG.MemorySlices),
		})
	}
	return out
}
