package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Node is one row of a node list: a machine and its GPUs.
type Node struct {
	Name      string
	MilliCPU  int64
	MemoryMiB int64
	GPUs      int
	// Model is the GPU model name: one of the openb trace's (ModelNames)
	// or of the fake machine catalogue (CatalogueNames).
	Model string
	// Labels are the node's labels (TierPolicy node selectors read them);
	// the node list's optional labels column, "k=v;k2=v2".
	Labels map[string]string
	// MIG, when set, pins the GPUs' MIG mode (the optional mig column);
	// unset, a policy run puts a GPU in MIG mode when its tier is MIG.
	MIG *bool
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
	// MIGSlices, when positive, asks for a MIG instance of that many
	// compute slices (the optional mig_profile column: 1g, 2g, 3g, 4g, 7g)
	// instead of a compute share; GPUMilli is then its share of a GPU's
	// compute, slices/7 rounded up (1g: 143).
	MIGSlices int
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

// LoadNodes reads a node list (sn, cpu_milli, memory_mib, gpu, model, and
// optionally labels and mig). Every GPU model must be an openb model or a
// catalogue model.
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
	if n.GPUs > 0 && !knownModel(n.Model) {
		return Node{}, t.errorf("model", "unknown GPU model %q (known: %s)", n.Model, strings.Join(AllModelNames(), ", "))
	}
	if n.Labels, err = t.labels(); err != nil {
		return Node{}, err
	}
	if _, ok := t.cols["mig"]; ok && t.str("mig") != "" {
		v, err := strconv.ParseBool(t.str("mig"))
		if err != nil {
			return Node{}, t.errorf("mig", "%q is not true or false", t.str("mig"))
		}
		n.MIG = &v
	}
	return n, nil
}

// labels reads the optional labels column: "k=v;k2=v2".
func (t *table) labels() (map[string]string, error) {
	if _, ok := t.cols["labels"]; !ok || t.str("labels") == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(t.str("labels"), ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, t.errorf("labels", "%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
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
	if err := t.migProfile(&p); err != nil {
		return Pod{}, err
	}
	switch {
	case p.MIGSlices > 0:
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
			if !knownModel(m) {
				return Pod{}, t.errorf("gpu_spec", "unknown GPU model %q (known: %s)", m, strings.Join(AllModelNames(), ", "))
			}
			if !contains(p.GPUSpec, m) {
				p.GPUSpec = append(p.GPUSpec, m)
			}
		}
	}
	return p, nil
}

// MIGComputeSlices are the compute slices of a MIG GPU (H100, H200, B200,
// A100): an "Ng" profile takes N of them.
const MIGComputeSlices = 7

// migProfiles are the compute-slice counts MIG profiles come in.
var migProfiles = []int{1, 2, 3, 4, 7}

// migProfile reads the optional mig_profile column ("2g" or "2g.35gb": the
// compute slices count); the pod then takes one GPU, its share slices/7.
func (t *table) migProfile(p *Pod) error {
	if _, ok := t.cols["mig_profile"]; !ok || t.str("mig_profile") == "" {
		return nil
	}
	s := t.str("mig_profile")
	g, _, _ := strings.Cut(s, ".")
	n, err := strconv.Atoi(strings.TrimSuffix(g, "g"))
	if err != nil || !strings.HasSuffix(g, "g") || !slices.Contains(migProfiles, n) {
		return t.errorf("mig_profile", "%q is not a MIG profile (want one of 1g, 2g, 3g, 4g, 7g, optionally with its memory, e.g. 1g.18gb)", s)
	}
	if p.NumGPU > 1 {
		return t.errorf("mig_profile", "%s: a pod with %d GPUs cannot take a MIG instance", s, p.NumGPU)
	}
	p.NumGPU, p.MIGSlices = 1, n
	p.GPUMilli = (int64(n)*1000 + MIGComputeSlices - 1) / MIGComputeSlices
	return nil
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
