package nvgpu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// CapResolver names the device nodes that grant access to one MIG GPU
// instance and its compute instance (/dev/nvidia-caps/nvidia-cap<N>), which
// a container needs besides the GPU's own nodes. On the real NVML they are
// read from the driver's /proc listing; a fake machine numbers them itself.
// Either fails with ErrNotFound for an instance that does not exist.
type CapResolver interface {
	MIGCaps(gpu inventory.GPU, gpuInstanceID, computeInstanceID int) ([]string, error)
}

// procCapsRoot is where the NVIDIA driver lists capabilities.
const procCapsRoot = "/proc/driver/nvidia/capabilities"

// procCaps resolves MIG capability device nodes the way the NVIDIA
// container toolkit does: the driver lists each GPU and compute instance
// under /proc/driver/nvidia/capabilities/gpu<minor>/mig/gi<N>[/ci<M>]/access
// with the minor of its /dev/nvidia-caps/nvidia-cap<minor> node.
type procCaps struct{ root string }

// MIGCaps implements CapResolver.
func (c procCaps) MIGCaps(gpu inventory.GPU, gi, ci int) ([]string, error) {
	giDir := filepath.Join(c.root, fmt.Sprintf("gpu%d", gpu.Minor), "mig", fmt.Sprintf("gi%d", gi))
	var out []string
	for _, dir := range []string{giDir, filepath.Join(giDir, fmt.Sprintf("ci%d", ci))} {
		minor, err := capMinor(filepath.Join(dir, "access"))
		if err != nil {
			return nil, err
		}
		out = append(out, capNode(minor))
	}
	return out, nil
}

func capMinor(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("MIG capability: %w: %w", ErrNotFound, err)
	}
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

func capNode(minor int) string { return fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", minor) }

// fakeCapNodes are a fake machine's capability nodes of a GPU instance and
// its compute instance, numbered from the GPU's minor and the instance IDs:
// distinct per instance, the same in every process.
func fakeCapNodes(gpu inventory.GPU, gi, ci int) []string {
	base := 1000 * (gpu.Minor + 1)
	return []string{capNode(base + 10*gi), capNode(base + 10*gi + ci + 1)}
}
