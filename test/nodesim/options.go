package nodesim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// Options configures a simulated node.
type Options struct {
	// Name is the Node's name (required).
	Name string
	// Machine is the fake machine, "fake:<name>" (required).
	Machine string
	// MIGEnabled has the plugin put every MIG-capable GPU into MIG mode as it
	// starts, as an admin does on an inference node.
	MIGEnabled bool
	// Labels are the Node's labels (tier, capacity type...).
	Labels map[string]string
	// Kubeconfig is the node's credentials file (required).
	Kubeconfig string
	// PluginBinary is the tierra-kubelet-plugin executable (required).
	PluginBinary string
	// PluginArgs are extra flags for the plugin (e.g. -v=4).
	PluginArgs []string
	// Dir holds the node's files: sockets, checkpoints, CDI specs, the fake
	// machine's state and the plugin's log. Keep it short: unix socket paths
	// are limited to 108 bytes. Required.
	Dir string
	// Images maps container images to local executables: the containers
	// of a pod whose every image is here run as host processes (the MPS
	// daemon pods the plugin creates), the executable standing in for the
	// image's command[0]. Other pods are reported Running without running.
	Images map[string]string
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// MetricsAddress is where the plugin serves /metrics (host:port, e.g.
	// 127.0.0.1:0); port 0 is resolved to a free port once, at Start, so
	// the address (Node.MetricsURL) survives plugin restarts. Empty: the
	// plugin serves no metrics (its own default, :8080, would collide
	// between the nodes of one host).
	MetricsAddress string
}

func (o *Options) validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"name", o.Name}, {"kubeconfig", o.Kubeconfig}, {"plugin binary", o.PluginBinary}, {"dir", o.Dir},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	if !nvgpu.IsFake(o.Machine) {
		errs = append(errs, fmt.Errorf("machine: want %s<name> (one of %s), got %q",
			nvgpu.FakePrefix, strings.Join(nvgpu.FakeMachines(), ", "), o.Machine))
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.MetricsAddress != "" {
		addr, err := freeAddress(o.MetricsAddress)
		if err != nil {
			errs = append(errs, fmt.Errorf("metrics address: %w", err))
		}
		o.MetricsAddress = addr
	}
	return errors.Join(errs...)
}

// freeAddress resolves port 0 of addr to a port free now.
func freeAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// paths are the node's files under Options.Dir.
type paths struct {
	registry  string // the kubelet's plugins_registry
	pluginDir string // the plugin's data dir, with dra.sock
	cdi       string
	state     string // the plugin's checkpoint
	kubelet   string // the DRA manager's own checkpoint
	fakeState string // the fake machine's hardware
	faults    string // where InjectFault drops faults for the fake machine
	pluginLog string
	// fakeProcesses lists the fake GPU processes of the node's pods
	// (nvgpu.FakeProcessesEnv); fakeProc is the /proc the plugin reads
	// their cgroups from (--proc-root).
	fakeProcesses string
	fakeProc      string
}

func newPaths(dir string) paths {
	return paths{
		registry:  filepath.Join(dir, "registry"),
		pluginDir: filepath.Join(dir, "plugin"),
		cdi:       filepath.Join(dir, "cdi"),
		state:     filepath.Join(dir, "state"),
		kubelet:   filepath.Join(dir, "kubelet"),
		fakeState: filepath.Join(dir, "fake-machine.json"),
		faults:    filepath.Join(dir, "faults"),
		pluginLog: filepath.Join(dir, "plugin.log"),

		fakeProcesses: filepath.Join(dir, "gpu-processes.json"),
		fakeProc:      filepath.Join(dir, "proc"),
	}
}

func (p paths) create() error {
	for _, d := range []string{p.registry, p.pluginDir, p.cdi, p.state, p.kubelet, p.faults, p.fakeProc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}
