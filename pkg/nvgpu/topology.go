//go:build cgo

package nvgpu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// discoverTopology fills PCI bus id, PCIe root, NUMA node and the fabric
// NVLink domain (the node-local domain is assigned once all GPUs are known).
func (g *nvmlMachine) discoverTopology(d device, gpu *inventory.GPU) error {
	pci, ret := d.GetPciInfo()
	if ret != nvml.SUCCESS {
		return nvmlError("get PCI info of "+d.String(), ret)
	}
	gpu.PCIBusID = normalizeBusID(cString(pci.BusId[:]))
	if gpu.PCIBusID == "" {
		gpu.PCIBusID = fmt.Sprintf("%04x:%02x:%02x.0", pci.Domain, pci.Bus, pci.Device)
	}
	if root, ok := g.host.PCIeRoot(gpu.PCIBusID); ok {
		gpu.PCIeRoot = root
	} else {
		gpu.PCIeRoot = derivePCIeRoot(gpu.PCIBusID)
	}
	numa, ret := d.GetNumaNodeId()
	switch {
	case ret == nvml.SUCCESS:
		gpu.NUMANode = numa
	case !unsupported(ret):
		return nvmlError("get NUMA node of "+d.String(), ret)
	}
	fabric, ret := d.GetGpuFabricInfo()
	switch {
	case ret == nvml.SUCCESS && fabric.State == nvml.GPU_FABRIC_STATE_COMPLETED &&
		nvml.Return(fabric.Status) == nvml.SUCCESS:
		gpu.NVLinkDomain = fmt.Sprintf("%s.%d", formatUUID(fabric.ClusterUuid), fabric.CliqueId)
	case ret != nvml.SUCCESS && !unsupported(ret):
		return nvmlError("get fabric info of "+d.String(), ret)
	}
	return nil
}

// activeNVLinkPeers returns the normalised PCI bus ids at the far end of
// the GPU's active NVLinks.
func activeNVLinkPeers(d device) ([]string, error) {
	var peers []string
	for link := range nvml.NVLINK_MAX_LINKS {
		state, ret := d.GetNvLinkState(link)
		if unsupported(ret) {
			// Past the GPU's last link, or no NVLink at all.
			break
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("get NVLink %d state of %s", link, d), ret)
		}
		if state != nvml.FEATURE_ENABLED {
			continue
		}
		remote, ret := d.GetNvLinkRemotePciInfo(link)
		if ret != nvml.SUCCESS {
			return nil, nvmlError(fmt.Sprintf("get NVLink %d peer of %s", link, d), ret)
		}
		if id := normalizeBusID(cString(remote.BusId[:])); id != "" && !slices.Contains(peers, id) {
			peers = append(peers, id)
		}
	}
	return peers, nil
}

// assignLocalNVLinkDomains gives GPUs without a fabric domain a node-local
// one: GPUs joined by active NVLinks, directly or through the same NVSwitch,
// share a domain named after their UUIDs. GPUs without links get none.
func assignLocalNVLinkDomains(all []inventory.GPU, links map[string][]string) {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	for bus, peers := range links {
		for _, p := range peers {
			parent[find(p)] = find(bus)
		}
	}
	members := map[string][]string{}
	for _, gpu := range all {
		if len(links[gpu.PCIBusID]) > 0 {
			r := find(gpu.PCIBusID)
			members[r] = append(members[r], gpu.UUID)
		}
	}
	for i := range all {
		gpu := &all[i]
		if gpu.NVLinkDomain != "" || len(links[gpu.PCIBusID]) == 0 {
			continue
		}
		uuids := slices.Clone(members[find(gpu.PCIBusID)])
		slices.Sort(uuids)
		sum := sha256.Sum256([]byte(strings.Join(uuids, ",")))
		gpu.NVLinkDomain = "local-" + hex.EncodeToString(sum[:6])
	}
}

// sysfs resolves PCIe roots from the kernel's view of the PCI tree.
type sysfs struct{ root string }

// PCIeRoot follows /sys/bus/pci/devices/<busID>, a link into
// /sys/devices/pci<domain>:<bus>/..., and returns that first element.
func (s sysfs) PCIeRoot(busID string) (string, bool) {
	target, err := filepath.EvalSymlinks(filepath.Join(s.root, "bus", "pci", "devices", busID))
	if err != nil {
		return "", false
	}
	for _, part := range strings.Split(filepath.ToSlash(target), "/") {
		if strings.HasPrefix(part, "pci") && strings.Contains(part, ":") {
			return part, true
		}
	}
	return "", false
}

// derivePCIeRoot names the root from the bus id alone ("0000:18:00.0" →
// "pci0000:18"): right when the GPU sits on a root bus, a stable stand-in
// otherwise.
func derivePCIeRoot(busID string) string {
	parts := strings.SplitN(busID, ":", 3)
	if len(parts) < 3 {
		return ""
	}
	return "pci" + parts[0] + ":" + parts[1]
}

// normalizeBusID turns NVML's "00000000:18:00.0" into sysfs's
// "0000:18:00.0" (lower case, four-digit domain).
func normalizeBusID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	parts := strings.SplitN(id, ":", 2)
	if len(parts) != 2 {
		return id
	}
	domain := strings.TrimLeft(parts[0], "0")
	if len(domain) < 4 {
		domain = strings.Repeat("0", 4-len(domain)) + domain
	}
	return domain + ":" + parts[1]
}

func cString[T int8 | uint8](b []T) string {
	buf := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		buf = append(buf, byte(c))
	}
	return string(bytes.TrimSpace(buf))
}

func formatUUID(u [16]uint8) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
