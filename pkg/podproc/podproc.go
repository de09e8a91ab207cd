// Package podproc finds the pod a host process runs in, from the pod UID
// the kubelet writes into the process's cgroup path (/proc/<pid>/cgroup).
// It knows the cgroup v1 and v2 layouts of both cgroup drivers:
//
//	cgroup v1, cgroupfs:  12:memory:/kubepods/burstable/pod<uid>/<container>
//	cgroup v2, systemd:   0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//	cgroup v2, cgroupfs:  0::/kubepods/besteffort/pod<uid>/<container>
//
// and the same under a prefix (kind's /kubelet.slice/kubelet-kubepods.slice/…,
// a cgroup namespace's /../../…). The package is pure apart from reading
// the files under its proc root, so tests point it at a fake /proc tree.
package podproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrNotInPod: the process runs outside every pod (a host daemon, the MPS
// server, a process of a container the kubelet does not manage).
var ErrNotInPod = errors.New("process is not in a pod")

// ErrNoProcess: no such process (it may have exited since NVML listed it).
var ErrNoProcess = errors.New("no such process")

// Mapper maps host PIDs to pod UIDs by reading ProcRoot/<pid>/cgroup.
type Mapper struct {
	// ProcRoot is the host's /proc as this process sees it: "" is /proc;
	// a plugin in a container without hostPID mounts the host's at e.g.
	// /host/proc.
	ProcRoot string
}

// PodUID returns the UID of the pod process pid runs in. It fails with
// ErrNoProcess when the process is gone and ErrNotInPod when it runs
// outside every pod.
func (m Mapper) PodUID(pid uint32) (string, error) {
	root := m.ProcRoot
	if root == "" {
		root = "/proc"
	}
	path := filepath.Join(root, strconv.FormatUint(uint64(pid), 10), "cgroup")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("process %d (%s): %w", pid, path, ErrNoProcess)
	}
	if err != nil {
		return "", fmt.Errorf("read cgroup of process %d: %w", pid, err)
	}
	defer func() { _ = f.Close() }()
	uid, err := PodUIDFromCgroup(f)
	if err != nil {
		return "", fmt.Errorf("process %d: %w", pid, err)
	}
	return uid, nil
}

// podSegment matches one cgroup path segment naming a pod: "pod<uid>"
// (cgroupfs) or "<prefix>-pod<uid_with_underscores>.slice" (systemd).
var podSegment = regexp.MustCompile(`(?:^|-)pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})(?:\.slice)?$`)

// PodUIDFromCgroup reads a /proc/<pid>/cgroup file (one
// "hierarchy-id:controllers:path" line per hierarchy) and returns the pod
// UID in its paths, with dashes, in lower case. Every hierarchy of a pod's
// process names the same pod; a file whose lines name two pods is an error.
func PodUIDFromCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	uid := ""
	for sc.Scan() {
		path, ok := cgroupPath(sc.Text())
		if !ok {
			continue
		}
		found, ok := podUIDFromPath(path)
		if !ok {
			continue
		}
		if uid != "" && found != uid {
			return "", fmt.Errorf("cgroup paths name two pods, %s and %s", uid, found)
		}
		uid = found
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read cgroup file: %w", err)
	}
	if uid == "" {
		return "", ErrNotInPod
	}
	return uid, nil
}

// cgroupPath splits "id:controllers:path"; the path may itself hold colons.
func cgroupPath(line string) (string, bool) {
	_, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok {
		return "", false
	}
	_, path, ok := strings.Cut(rest, ":")
	return path, ok
}

// podUIDFromPath returns the UID of the innermost pod segment of a cgroup
// path.
func podUIDFromPath(path string) (string, bool) {
	segs := strings.Split(path, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if m := podSegment.FindStringSubmatch(segs[i]); m != nil {
			return strings.ToLower(strings.ReplaceAll(m[1], "_", "-")), true
		}
	}
	return "", false
}
