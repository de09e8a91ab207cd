//go:build cgo

package nvgpu

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// profile is a GPU instance profile as NVML reports it, with its inventory
// form. index is what GetGpuInstanceProfileInfo takes (inventory's ID).
type profile struct {
	index      int
	info       nvml.GpuInstanceProfileInfo
	placements []nvml.GpuInstancePlacement
	inv        inventory.MIGProfile
}

func discoverMIG(d device, gpu *inventory.GPU) error {
	current, _, ret := d.GetMigMode()
	if unsupported(ret) {
		return nil
	}
	if ret != nvml.SUCCESS {
		return nvmlError("get MIG mode of "+d.String(), ret)
	}
	gpu.MIGCapable = true
	gpu.MIGEnabled = current == nvml.DEVICE_MIG_ENABLE
	profiles, err := readProfiles(d, gpu.MemoryBytes)
	if err != nil {
		return err
	}
	info := &inventory.MIGInfo{}
	for _, p := range profiles {
		info.Profiles = append(info.Profiles, p.inv)
		info.ComputeSlices = max(info.ComputeSlices, p.inv.ComputeSlices)
		for _, pl := range p.inv.Placements {
			info.MemorySlices = max(info.MemorySlices, pl.End())
		}
	}
	gpu.MIG = info
	if !gpu.MIGEnabled {
		return nil
	}
	live, err := listInstances(d, profiles)
	if err != nil {
		return err
	}
	for _, l := range live {
		info.Instances = append(info.Instances, l.inv)
	}
	return nil
}

// readProfiles reads every GPU instance profile the GPU reports, with its
// possible placements, and names it canonically.
func readProfiles(d device, memoryBytes uint64) ([]profile, error) {
	var out []profile
	memSlices := 0
	for idx := range nvml.GPU_INSTANCE_PROFILE_COUNT {
		info, ret := d.GetGpuInstanceProfileInfo(idx)
		if unsupported(ret) {
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("get MIG profile %d of %s", idx, d), ret)
		}
		placements, ret := d.GetGpuInstancePossiblePlacements(&info)
		if ret != nvml.SUCCESS && !unsupported(ret) {
			return nil, nvmlError(fmt.Sprintf("get placements of MIG profile %d of %s", idx, d), ret)
		}
		for _, pl := range placements {
			memSlices = max(memSlices, int(pl.Start+pl.Size))
		}
		out = append(out, profile{index: idx, info: info, placements: placements})
	}
	for i := range out {
		out[i].inv = inventoryProfile(out[i], memSlices, memoryBytes)
	}
	// Smallest first: by compute slices, then memory slices, then name.
	slices.SortFunc(out, func(a, b profile) int {
		return cmp.Or(cmp.Compare(a.inv.ComputeSlices, b.inv.ComputeSlices),
			cmp.Compare(a.inv.MemorySlices, b.inv.MemorySlices), cmp.Compare(a.inv.Name, b.inv.Name))
	})
	return out, nil
}

func inventoryProfile(p profile, totalSlices int, memoryBytes uint64) inventory.MIGProfile {
	inv := inventory.MIGProfile{
		ID:              p.index,
		ComputeSlices:   int(p.info.SliceCount),
		MemoryBytes:     p.info.MemorySizeMB * mib,
		Multiprocessors: int(p.info.MultiprocessorCount),
		CopyEngines:     int(p.info.CopyEngineCount),
		Decoders:        int(p.info.DecoderCount),
		Encoders:        int(p.info.EncoderCount),
		JPEGs:           int(p.info.JpegCount),
		OFAs:            int(p.info.OfaCount),
		MaxInstances:    int(p.info.InstanceCount),
	}
	for _, pl := range p.placements {
		inv.Placements = append(inv.Placements, inventory.MIGPlacement{Start: int(pl.Start), Size: int(pl.Size)})
	}
	slices.SortFunc(inv.Placements, func(a, b inventory.MIGPlacement) int { return cmp.Compare(a.Start, b.Start) })
	if len(inv.Placements) > 0 {
		inv.MemorySlices = inv.Placements[0].Size
	} else if totalSlices > 0 && memoryBytes > 0 {
		inv.MemorySlices = int(math.Ceil(float64(inv.MemoryBytes) / float64(memoryBytes) * float64(totalSlices)))
	}
	inv.Name = profileName(p.index, inv, totalSlices, memoryBytes)
	return inv
}

// profileName is the canonical "<N>g.<M>gb<suffix>" name. M is the
// profile's share of memory slices times the GPU's memory in whole GiB,
// rounded: the rule that reproduces nvidia-smi's names (1g.18gb and 3g.71gb
// on a 141 GiB H200, 1g.5gb on a 40 GiB A100) even though NVML's per-profile
// memory sizes are a little under those shares.
func profileName(index int, p inventory.MIGProfile, totalSlices int, memoryBytes uint64) string {
	gb := math.Round(float64(p.MemoryBytes) / gib)
	if totalSlices > 0 && p.MemorySlices > 0 && memoryBytes > 0 {
		totalGB := math.Ceil(float64(memoryBytes) / gib)
		gb = math.Round(float64(p.MemorySlices) / float64(totalSlices) * totalGB)
	}
	suffix := ""
	switch index {
	case nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV1, nvml.GPU_INSTANCE_PROFILE_2_SLICE_REV1:
		suffix = "+me"
	case nvml.GPU_INSTANCE_PROFILE_1_SLICE_NO_ME, nvml.GPU_INSTANCE_PROFILE_2_SLICE_NO_ME:
		suffix = "-me"
	case nvml.GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME, nvml.GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME:
		suffix = "+me.all"
	case nvml.GPU_INSTANCE_PROFILE_1_SLICE_GFX, nvml.GPU_INSTANCE_PROFILE_2_SLICE_GFX,
		nvml.GPU_INSTANCE_PROFILE_3_SLICE_GFX, nvml.GPU_INSTANCE_PROFILE_4_SLICE_GFX:
		suffix = "+gfx"
	}
	return fmt.Sprintf("%dg.%dgb%s", p.ComputeSlices, int(gb), suffix)
}

// liveInstance is a GPU instance that exists now, with its handles.
type liveInstance struct {
	gi  nvml.GpuInstance
	cis []nvml.ComputeInstance
	inv inventory.MIGInstance
}

// listInstances reads every live GPU instance and its compute instances,
// ordered by GPU instance id.
func listInstances(d device, profiles []profile) ([]liveInstance, error) {
	uuids, err := migDeviceUUIDs(d)
	if err != nil {
		return nil, err
	}
	var out []liveInstance
	for _, p := range profiles {
		gis, ret := d.GetGpuInstances(&p.info)
		if unsupported(ret) {
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("list %s instances of %s", p.inv.Name, d), ret)
		}
		for _, gi := range gis {
			l, err := readInstance(d, gi, p, uuids)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b liveInstance) int {
		return cmp.Compare(a.inv.GPUInstanceID, b.inv.GPUInstanceID)
	})
	return out, nil
}

func readInstance(d device, gi nvml.GpuInstance, p profile, uuids map[[2]int]string) (liveInstance, error) {
	info, ret := gi.GetInfo()
	if ret != nvml.SUCCESS {
		return liveInstance{}, nvmlError(fmt.Sprintf("get %s instance info of %s", p.inv.Name, d), ret)
	}
	l := liveInstance{gi: gi, inv: inventory.MIGInstance{
		GPUInstanceID: int(info.Id),
		ProfileID:     p.index,
		ProfileName:   p.inv.Name,
		Placement:     inventory.MIGPlacement{Start: int(info.Placement.Start), Size: int(info.Placement.Size)},
	}}
	for ciIdx := range nvml.COMPUTE_INSTANCE_PROFILE_COUNT {
		ciProfile, ret := gi.GetComputeInstanceProfileInfo(ciIdx, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if ret != nvml.SUCCESS {
			continue // profile not offered inside this GPU instance
		}
		cis, ret := gi.GetComputeInstances(&ciProfile)
		if ret != nvml.SUCCESS && !unsupported(ret) {
			return l, nvmlError(fmt.Sprintf("list compute instances of GPU instance %d on %s", info.Id, d), ret)
		}
		for _, ci := range cis {
			ciInfo, ret := ci.GetInfo()
			if ret != nvml.SUCCESS {
				return l, nvmlError(fmt.Sprintf("get compute instance of GPU instance %d on %s", info.Id, d), ret)
			}
			l.cis = append(l.cis, ci)
			l.inv.ComputeInstances = append(l.inv.ComputeInstances,
				inventory.ComputeInstance{ID: int(ciInfo.Id), ProfileID: ciIdx})
		}
	}
	slices.SortStableFunc(l.inv.ComputeInstances, func(a, b inventory.ComputeInstance) int { return cmp.Compare(a.ID, b.ID) })
	if len(l.inv.ComputeInstances) > 0 {
		l.inv.UUID = uuids[[2]int{l.inv.GPUInstanceID, l.inv.ComputeInstances[0].ID}]
	}
	return l, nil
}

// migDeviceUUIDs maps (GPU instance id, compute instance id) to the MIG
// device UUID NVML reports for it.
func migDeviceUUIDs(d device) (map[[2]int]string, error) {
	out := map[[2]int]string{}
	n, ret := d.GetMaxMigDeviceCount()
	if unsupported(ret) {
		return out, nil
	}
	if ret != nvml.SUCCESS {
		return nil, nvmlError("count MIG devices of "+d.String(), ret)
	}
	migs, err := migHandles(d, n)
	if err != nil {
		return nil, err
	}
	for _, m := range migs {
		out[[2]int{m.gi, m.ci}] = m.uuid
	}
	return out, nil
}

// migHandle is one MIG device of a parent GPU: its index and handle, and
// the instance ids and UUID NVML reports for it.
type migHandle struct {
	index  int
	handle nvml.Device
	gi, ci int
	uuid   string
}

// migHandles reads the MIG devices at d's first n MIG device indexes,
// skipping the indexes that hold none.
func migHandles(d device, n int) ([]migHandle, error) {
	var out []migHandle
	for i := range n {
		h, ret := d.GetMigDeviceHandleByIndex(i)
		if unsupported(ret) {
			continue // no MIG device at this index
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("get MIG device %d of %s", i, d), ret)
		}
		gi, ret1 := h.GetGpuInstanceId()
		ci, ret2 := h.GetComputeInstanceId()
		uuid, ret3 := h.GetUUID()
		for _, r := range []nvml.Return{ret1, ret2, ret3} {
			if r != nvml.SUCCESS {
				return nil, nvmlError(fmt.Sprintf("read MIG device %d of %s", i, d), r)
			}
		}
		out = append(out, migHandle{index: i, handle: h, gi: gi, ci: ci, uuid: uuid})
	}
	return out, nil
}
