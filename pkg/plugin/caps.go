package plugin

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// procCaps resolves MIG capability device nodes the way the NVIDIA
// container toolkit does: the driver lists each GPU and compute instance
// under /proc/driver/nvidia/capabilities/gpu<minor>/mig/gi<N>[/ci<M>]/access
// with the minor of its /dev/nvidia-caps/nvidia-cap<minor> node.
type procCaps struct{ root string }

// MIGCaps implements prepare.CapResolver.
func (c procCaps) MIGCaps(gpu inventory.GPU, gi, ci int) ([]string, error) {
	giDir := filepath.Join(c.root, fmt.Sprintf("gpu%d", gpu.Minor), "mig", fmt.Sprintf("gi%d", gi))
	var out []string
	for _, dir := range []string{giDir, filepath.Join(giDir, fmt.Sprintf("ci%d", ci))} {
		minor, err := capMinor(filepath.Join(dir, "access"))
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", minor))
	}
	return out, nil
}

func capMinor(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("MIG capability: %w", err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(key) == "DeviceFileMinor" {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil {
				return 0, fmt.Errorf("MIG capability %s: DeviceFileMinor %q: %w", path, value, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("MIG capability %s: no DeviceFileMinor", path)
}

// procCapsRoot is where the NVIDIA driver lists capabilities.
const procCapsRoot = "/proc/driver/nvidia/capabilities"

// capResolver reads /proc on real GPUs and fakes the nodes on a fake machine.
func capResolver(cfg Config, override prepare.CapResolver) prepare.CapResolver {
	switch {
	case override != nil:
		return override
	case strings.HasPrefix(cfg.Machine, nvgpu.FakePrefix):
		return prepare.FakeCaps{}
	default:
		return procCaps{root: procCapsRoot}
	}
}
