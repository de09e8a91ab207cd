package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Node is one row of a node list: a machine and its GPUs.
type Node struct {
	Name      string
	MilliCPU  int64
	MemoryMiB int64
	GPUs      int
	// Model is the trace's GPU model name (a key of the model table).
	Model string
}

// Pod is one row of a pod list: what one pod requests.
type Pod struct {
	Name      string
	MilliCPU  int64
	MemoryMiB int64
	// NumGPU is how many GPUs the pod uses; 0 for a CPU-only pod.
	NumGPU int
	// GPUMilli is the share of each GPU, in thousandths; below 1000 the
	// pod shares one GPU with others.
	GPUMilli int64
	// GPUSpec lists the trace models the pod may run on; empty means any.
	GPUSpec []string
}

// Fractional reports whether the pod asks for a share of one GPU.
func (p Pod) Fractional() bool { return p.NumGPU == 1 && p.GPUMilli < 1000 }

// GPURequest is the pod's GPU demand in thousandths of a GPU.
func (p Pod) GPURequest() int64 { return int64(p.NumGPU) * p.GPUMilli }

// Default file names inside the data directory.
const (
	NodeListFile   = "openb_node_list_gpu_node.csv"
	DefaultPodList = "openb_pod_list_default.csv"
)

// ErrBadTrace marks every problem found in a trace file.
var ErrBadTrace = errors.New("bad trace")

// table reads a CSV file with a header and hands each row to the caller
// with a lookup that reports the position of bad values.
type table struct {
	path   string
	r      *csv.Reader
	cols   map[string]int
	record []string
}

func openTable(path string, required ...string) (*table, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open trace: %w", err)
	}
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s:1: read header: %w", path, err)
	}
	t := &table{path: path, r: r, cols: map[string]int{}}
	for i, name := range header {
		t.cols[strings.TrimSpace(name)] = i
	}
	for _, name := range required {
		if _, ok := t.cols[name]; !ok {
			_ = f.Close()
			return nil, nil, fmt.Errorf("%s:1: %w: missing column %q", path, ErrBadTrace, name)
		}
	}
	return t, f.Close, nil
}

// next reads the next row; it returns false at the end of the file.
func (t *table) next() (bool, error) {
	rec, err := t.r.Read()
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w: %w", t.path, ErrBadTrace, err)
	}
	t.record = rec
	return true, nil
}

// errorf reports a bad value with the file, line and column it came from.
func (t *table) errorf(col string, format string, args ...any) error {
	i := t.cols[col]
	line, column := t.r.FieldPos(i)
	return fmt.Errorf("%s:%d:%d: column %s: %w: %s", t.path, line, column, col, ErrBadTrace, fmt.Sprintf(format, args...))
}

func (t *table) str(col string) string { return strings.TrimSpace(t.record[t.cols[col]]) }

func (t *table) int(col string, minimum int64) (int64, error) {
	s := t.str(col)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, t.errorf(col, "%q is not an integer", s)
	}
	if v < minimum {
		return 0, t.errorf(col, "%d is below %d", v, minimum)
	}
	return v, nil
}

// LoadNodes reads a node list (sn, cpu_milli, memory_mib, gpu, model).
// Every GPU model must be in the model table.
func LoadNodes(path string) ([]Node, error) {
	t, closeFn, err := openTable(path, "sn", "cpu_milli", "memory_mib", "gpu", "model")
	if err != nil {
		return nil, err
	}
	defer func() { _ = closeFn() }()
	var nodes []Node
	for {
		ok, err := t.next()
		if err != nil || !ok {
			return nodes, err
		}
		n, err := t.node()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
}

func (t *table) node() (Node, error) {
	n := Node{Name: t.str("sn"), Model: t.str("model")}
	var err error
	if n.Name == "" {
		return Node{}, t.errorf("sn", "empty node name")
	}
	if n.MilliCPU, err = t.int("cpu_milli", 1); err != nil {
		return Node{}, err
	}
	if n.MemoryMiB, err = t.int("memory_mib", 1); err != nil {
		return Node{}, err
	}
	gpus, err := t.int("gpu", 0)
	if err != nil {
		return Node{}, err
	}
	n.GPUs = int(gpus)
	if n.GPUs > 0 {
		if _, ok := LookupModel(n.Model); !ok {
			return Node{}, t.errorf("model", "unknown GPU model %q (known: %s)", n.Model, strings.Join(ModelNames(), ", "))
		}
	}
	return n, nil
}

// LoadPods reads a pod list (name, cpu_milli, memory_mib, num_gpu,
// gpu_milli, and gpu_spec when present: the multigpu lists lack it); other
// columns are ignored.
func LoadPods(path string) ([]Pod, error) {
	t, closeFn, err := openTable(path, "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
	if err != nil {
		return nil, err
	}
	defer func() { _ = closeFn() }()
	var pods []Pod
	for {
		ok, err := t.next()
		if err != nil || !ok {
			return pods, err
		}
		p, err := t.pod()
		if err != nil {
			return nil, err
		}
		pods = append(pods, p)
	}
}

func (t *table) pod() (Pod, error) {
	p := Pod{Name: t.str("name")}
	var err error
	if p.MilliCPU, err = t.int("cpu_milli", 0); err != nil {
		return Pod{}, err
	}
	if p.MemoryMiB, err = t.int("memory_mib", 0); err != nil {
		return Pod{}, err
	}
	num, err := t.int("num_gpu", 0)
	if err != nil {
		return Pod{}, err
	}
	p.NumGPU = int(num)
	if p.GPUMilli, err = t.int("gpu_milli", 0); err != nil {
		return Pod{}, err
	}
	switch {
	case p.NumGPU == 0:
		p.GPUMilli = 0
	case p.GPUMilli < 1 || p.GPUMilli > 1000:
		return Pod{}, t.errorf("gpu_milli", "%d is outside 1-1000 for a GPU pod", p.GPUMilli)
	case p.NumGPU > 1 && p.GPUMilli != 1000:
		return Pod{}, t.errorf("gpu_milli", "%d: a pod with %d GPUs must take whole GPUs (1000)", p.GPUMilli, p.NumGPU)
	}
	if _, ok := t.cols["gpu_spec"]; !ok {
		return p, nil
	}
	if spec := t.str("gpu_spec"); spec != "" {
		for _, m := range strings.Split(spec, "|") {
			if _, ok := LookupModel(m); !ok {
				return Pod{}, t.errorf("gpu_spec", "unknown GPU model %q (known: %s)", m, strings.Join(ModelNames(), ", "))
			}
			if !contains(p.GPUSpec, m) {
				p.GPUSpec = append(p.GPUSpec, m)
			}
		}
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ResolveDataDir finds the trace directory: the flag value when set,
// otherwise ../shared/data/openb relative to the repository root (found by
// walking up from the working directory to go.mod).
func ResolveDataDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("resolve data dir: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "data", "openb"), nil
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "..", "shared", "data", "openb"), nil
		}
	}
}
