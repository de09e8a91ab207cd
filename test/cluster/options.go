// Package cluster runs a real Kubernetes control plane (etcd, kube-apiserver,
// kube-scheduler, kube-controller-manager, all upstream v1.37.1) as plain
// processes on 127.0.0.1, for e2e tests and `make demo`. There is no kubelet:
// nodes are API objects, made Ready by a test or by kwok.
//
// The binaries come from hack/tools/build.sh (`make cluster-build`), which
// caches them in _output/bin.
package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrBinariesMissing reports that the control-plane binaries are not built.
var ErrBinariesMissing = errors.New("control-plane binaries not built")

// BuildCommand is what builds the binaries Start needs.
const BuildCommand = "make cluster-build (or hack/tools/build.sh)"

// Binaries Start runs, looked up in Options.BinDir.
var Binaries = []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"}

// Options configures Start. The zero value is usable: paths default to the
// repository's _output directory.
type Options struct {
	// BinDir holds the binaries. Default: $TIERRA_CLUSTER_BIN, else
	// <repo>/_output/bin.
	BinDir string
	// StateDir holds certificates, the kubeconfig, etcd's data, logs and the
	// state file. Default: <repo>/_output/cluster. Start wipes it unless a
	// live cluster is recorded there.
	StateDir string
	// KubeAPIQPS and KubeAPIBurst are the scheduler's and controller
	// manager's client limits. Default 200 and 400 (upstream's 20 is the
	// bottleneck with many pods).
	KubeAPIQPS, KubeAPIBurst int
	// Kwok also starts kwok, which plays kubelet for every Node annotated
	// KwokNodeAnnotation: it reports the node Ready (the node lifecycle
	// controller then lifts the not-ready taint), heartbeats it, and moves
	// its pods to Running and through deletion.
	Kwok bool
	// StopWithParent has the kernel SIGKILL every component when the process
	// that called Start dies, even without Stop (a test that times out or
	// panics). Leave it off for a cluster meant to outlive its starter, as
	// the CLI's up is.
	StopWithParent bool
	// FeatureGates, when set, is passed as --feature-gates to kube-apiserver,
	// kube-scheduler and kube-controller-manager (e.g.
	// "GenericWorkload=true,GangScheduling=true"), so the three agree.
	FeatureGates string
	// RuntimeConfig, when set, is kube-apiserver's --runtime-config (e.g.
	// "scheduling.k8s.io/v1alpha1=true" to serve an API group version that is
	// off by default).
	RuntimeConfig string
	// Log receives progress lines. Default: discarded.
	Log io.Writer
}

// KwokNodeAnnotation, set to "fake", marks the Nodes kwok manages.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// kwokStages are the Stage configs Start gives kwok, relative to
// <BinDir>/kwok-stages (copied there from kwok's module by build.sh).
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat/node-heartbeat.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

func (o *Options) defaults() error {
	if o.BinDir == "" {
		o.BinDir = os.Getenv("TIERRA_CLUSTER_BIN")
	}
	if o.BinDir == "" || o.StateDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		if o.BinDir == "" {
			o.BinDir = filepath.Join(root, "_output", "bin")
		}
		if o.StateDir == "" {
			o.StateDir = filepath.Join(root, "_output", "cluster")
		}
	}
	var err error
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return fmt.Errorf("bin dir: %w", err)
	}
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if o.KubeAPIQPS == 0 {
		o.KubeAPIQPS = 200
	}
	if o.KubeAPIBurst == 0 {
		o.KubeAPIBurst = 400
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// CheckBinaries returns an error wrapping ErrBinariesMissing, naming the
// missing files and the build command, when binDir lacks any of Binaries
// (and, with kwok, kwok and its stages). An empty binDir means the default.
func CheckBinaries(binDir string, kwok bool) error {
	o := Options{BinDir: binDir, StateDir: os.TempDir()}
	if err := o.defaults(); err != nil {
		return err
	}
	want := Binaries
	if kwok {
		want = append(append([]string{}, Binaries...), "kwok")
		for _, s := range kwokStages {
			want = append(want, filepath.Join("kwok-stages", s))
		}
	}
	var missing []string
	for _, b := range want {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s missing in %s; run %s", ErrBinariesMissing,
			strings.Join(missing, ", "), o.BinDir, BuildCommand)
	}
	return nil
}

// RepoRoot finds the Tierra repository root by walking up from the working
// directory to the go.mod of module github.com/tierra-gpu/tierra.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/tierra-gpu/tierra\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found above the working directory; set BinDir and StateDir")
		}
		dir = parent
	}
}
