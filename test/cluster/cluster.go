package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrAlreadyRunning reports that StateDir records a cluster with live processes.
var ErrAlreadyRunning = errors.New("a cluster is already running in this state dir")

// ErrNotRunning reports that StateDir records no cluster.
var ErrNotRunning = errors.New("no cluster recorded in this state dir")

const stateFile = "cluster.json"

// Cluster is a running (or recorded) local control plane.
type Cluster struct {
	Server    string     `json:"server"`
	Ports     ports      `json:"ports"`
	Processes []*process `json:"processes"`
	StartedAt time.Time  `json:"startedAt"`

	opts       Options
	pki        pki
	kubeconfig string
}

func newCluster(opts Options) *Cluster {
	return &Cluster{
		opts:       opts,
		pki:        newPKI(filepath.Join(opts.StateDir, "pki")),
		kubeconfig: filepath.Join(opts.StateDir, "kubeconfig"),
	}
}

// Start wipes opts.StateDir, generates credentials and starts etcd,
// kube-apiserver, kube-scheduler and kube-controller-manager on loopback. It
// returns once all four are healthy and the default ServiceAccount exists.
// On error nothing it started is left running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := CheckBinaries(opts.BinDir, opts.Kwok); err != nil {
		return nil, err
	}
	if old, err := Load(opts.StateDir); err == nil && len(old.Running()) > 0 {
		return nil, fmt.Errorf("%w: %s (kubeconfig %s)", ErrAlreadyRunning, opts.StateDir, old.Kubeconfig())
	}
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var c *Cluster
		if c, err = startOnce(ctx, opts); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
		if attempt < startAttempts {
			fmt.Fprintf(opts.Log, "a port was taken by another process between choosing and binding it; "+
				"starting again with new ports (attempt %d of %d)\n", attempt+1, startAttempts)
		}
	}
	return nil, err
}

// startAttempts bounds the restarts after a port was taken between choosing
// and binding it.
const startAttempts = 3

// startOnce starts the cluster in a fresh state dir with fresh ports.
func startOnce(ctx context.Context, opts Options) (*Cluster, error) {
	if err := os.RemoveAll(opts.StateDir); err != nil {
		return nil, fmt.Errorf("clean state dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	c := newCluster(opts)
	c.StartedAt = time.Now()
	if err := c.prepare(); err != nil {
		return nil, err
	}
	if err := c.startAll(ctx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Cluster) prepare() error {
	var err error
	if c.pki, err = writePKI(c.pki.dir()); err != nil {
		return err
	}
	if c.Ports, err = freePorts(); err != nil {
		return err
	}
	c.Server = loopbackURL("https", c.Ports.APIServer)
	return writeKubeconfig(c.kubeconfig, c.Server, c.pki)
}

func (c *Cluster) startAll(ctx context.Context) error {
	for _, comp := range c.components() {
		t0 := time.Now()
		fmt.Fprintf(c.opts.Log, "starting %s…\n", comp.name)
		logFile := filepath.Join(c.opts.StateDir, "logs", comp.name+".log")
		p, err := startProcess(comp.name, filepath.Join(c.opts.BinDir, comp.name), logFile, comp.args, c.opts.StopWithParent)
		if err != nil {
			return err
		}
		c.Processes = append(c.Processes, p)
		if err := c.save(); err != nil {
			return err
		}
		token := ""
		if comp.name == "kube-apiserver" {
			token = c.pki.Token
		}
		if err := waitHealthy(ctx, p, comp.health, token, logFile); err != nil {
			return err
		}
		fmt.Fprintf(c.opts.Log, "%s ready in %s (pid %d)\n", comp.name, time.Since(t0).Round(time.Millisecond), p.PID)
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := waitDefaultServiceAccount(ctx, cs); err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Log, "default ServiceAccount after %s; cluster up in %s\n",
		time.Since(t0).Round(time.Millisecond), time.Since(c.StartedAt).Round(time.Millisecond))
	return nil
}

// Load reads the cluster recorded in stateDir by Start. Its processes may or
// may not still run: see Running.
func Load(stateDir string) (*Cluster, error) {
	opts := Options{StateDir: stateDir, BinDir: os.TempDir()}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(opts.StateDir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, opts.StateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	c := newCluster(opts)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", stateFile, err)
	}
	token, err := readToken(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	c.pki.Token = token
	return c, nil
}

func readToken(kubeconfig string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", fmt.Errorf("load kubeconfig: %w", err)
	}
	if u := cfg.AuthInfos[adminUser]; u != nil {
		return u.Token, nil
	}
	return "", fmt.Errorf("kubeconfig %s has no user %s", kubeconfig, adminUser)
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.opts.StateDir, stateFile), data, 0o644); err != nil {
		return fmt.Errorf("write cluster state: %w", err)
	}
	return nil
}

// Stop stops every component, last started first: SIGTERM, then SIGKILL
// after a grace period. Stopping a stopped cluster is a no-op. The state
// dir's logs stay for inspection; its state file goes.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.Processes) - 1; i >= 0; i-- {
		if err := c.Processes[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		err := os.Remove(filepath.Join(c.opts.StateDir, stateFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cluster state: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Running returns the names of the components whose processes are alive.
func (c *Cluster) Running() []string {
	var names []string
	for _, p := range c.Processes {
		if p.alive() {
			names = append(names, p.Name)
		}
	}
	return names
}

// PIDs returns each component's process ID, alive or not.
func (c *Cluster) PIDs() map[string]int {
	pids := make(map[string]int, len(c.Processes))
	for _, p := range c.Processes {
		pids[p.Name] = p.PID
	}
	return pids
}

// Kubeconfig is the path of an admin (system:masters) kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// StateDir is where the cluster keeps its files; logs are under logs/.
func (c *Cluster) StateDir() string { return c.opts.StateDir }

// RESTConfig returns an admin client config.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// Clientset returns an admin clientset.
func (c *Cluster) Clientset() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create clientset: %w", err)
	}
	return cs, nil
}

// Run starts an extra process beside the control plane, such as a
// controller or a simulated node, with its output in logs/<name>.log. It is
// recorded in the state file, so Stop (and `tierra-cluster down`) stops it,
// before the control plane.
func (c *Cluster) Run(name, bin string, args ...string) error {
	logFile := filepath.Join(c.opts.StateDir, "logs", name+".log")
	p, err := startProcess(name, bin, logFile, args, c.opts.StopWithParent)
	if err != nil {
		return err
	}
	c.Processes = append(c.Processes, p)
	return c.save()
}

// LogFile is the log of a process Start or Run started.
func (c *Cluster) LogFile(name string) string {
	return filepath.Join(c.opts.StateDir, "logs", name+".log")
}
