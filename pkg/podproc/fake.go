package podproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
)

// WriteFakeCgroup writes root/<pid>/cgroup as the kubelet's systemd cgroup
// driver on cgroup v2 lays out a process of a container of pod podUID, so
// that a Mapper over root finds the pod. It is for simulators and demos
// whose GPU processes are fake (nvgpu.FakeProcessesEnv); the write is atomic.
func WriteFakeCgroup(root string, pid uint32, podUID string) error {
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fake cgroup of process %d: %w", pid, err)
	}
	content := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
		strings.ReplaceAll(podUID, "-", "_") + ".slice/cri-containerd-" + strconv.FormatUint(uint64(pid), 16) + ".scope\n"
	if err := atomicfile.Write(filepath.Join(dir, "cgroup"), []byte(content), false); err != nil {
		return fmt.Errorf("fake cgroup of process %d: %w", pid, err)
	}
	return nil
}
