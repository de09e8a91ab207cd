package crash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/kubernetes"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"

	"github.com/tierra-gpu/tierra/pkg/failpoint"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// node is one run's plugin: its directories and, while it runs, its process.
type node struct {
	name                       string
	bin, mpsCmd, smiCmd        string
	kubeconfig, policyFile     string
	dir, stateDir, cdiDir      string
	dataDir, regDir, fakeState string
	smiDir                     string // the nvidia-smi stand-in's time-slices
	log                        *os.File
	mpsPods                    bool // MPS daemons in pods (modeMPSPod)
	cs                         kubernetes.Interface

	cmd    *exec.Cmd
	exited chan error
	conn   *grpc.ClientConn
	dra    drapb.DRAPluginClient
}

// start runs the plugin, with the fail point armed unless it is "", and
// waits until it serves the kubelet's socket.
func (n *node) start(t *testing.T, fp string) {
	t.Helper()
	sock := filepath.Join(n.dataDir, "dra.sock")
	// A killed plugin leaves its socket behind; wait for the new one.
	require.NoError(t, removeIfExists(sock))
	n.cmd = exec.Command(n.bin, "--node-name="+n.name, "--machine=fake:dgxh200",
		"--state-dir="+n.stateDir, "--cdi-dir="+n.cdiDir, "--plugin-data-dir="+n.dataDir,
		"--registrar-dir="+n.regDir, "--kubeconfig="+n.kubeconfig, "--tier-policy-file="+n.policyFile,
		"--sharing-runner=exec", "--mps-control-command="+n.mpsCmd, "--nvidia-smi-command="+n.smiCmd, "-v=2")
	if n.mpsPods {
		n.cmd.Args = append(n.cmd.Args, "--mps-daemon-image="+daemonImage, "--namespace="+daemonNamespace)
	}
	n.cmd.Env = append(os.Environ(), nvgpu.FakeStateEnv+"="+n.fakeState, failpoint.Env+"="+fp, smiDirEnv+"="+n.smiDir)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, n.cmd.Start())
	n.exited = make(chan error, 1)
	go func(c *exec.Cmd) { n.exited <- c.Wait() }(n.cmd)
	// Served once the socket exists: the plugin rolls back and sweeps
	// before it listens, and prepares while it still publishes its
	// ResourceSlices (which takes a second), as the kubelet may.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-n.exited:
			t.Fatalf("plugin exited while starting: %v (log %s)", err, n.log.Name())
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "plugin socket %s never appeared (log %s)", sock, n.log.Name())
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	n.conn, n.dra = conn, drapb.NewDRAPluginClient(conn)
}

// waitKilled waits for the process to die of SIGKILL: the fail point hit.
func (n *node) waitKilled(t *testing.T, fp string) {
	t.Helper()
	select {
	case err := <-n.exited:
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "fail point %s", fp)
		ws := exit.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "fail point %s: plugin ended with %v, not SIGKILL", fp, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("fail point %s was never hit", fp)
	}
	n.closeConn()
}

// stop ends a running plugin with SIGTERM, as a rolling update would.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.closeConn()
	if n.cmd == nil || n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		require.NoError(t, err, "plugin stop (log %s)", n.log.Name())
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		t.Fatalf("plugin did not stop on SIGTERM")
	}
	n.cmd = nil
}

func (n *node) closeConn() {
	if n.conn != nil {
		_ = n.conn.Close()
		n.conn = nil
	}
}

func (n *node) prepare(ctx context.Context, c claimRef) (*drapb.NodePrepareResourceResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// WaitForReady covers the instant between the socket's bind and listen;
	// a call in flight still fails when a fail point kills the plugin.
	resp, err := n.dra.NodePrepareResources(ctx, &drapb.NodePrepareResourcesRequest{Claims: []*drapb.Claim{c.pb()}}, grpc.WaitForReady(true))
	if err != nil {
		return nil, err
	}
	res := resp.Claims[c.uid]
	if res == nil {
		return nil, fmt.Errorf("no result for claim %s", c.uid)
	}
	if res.Error != "" {
		return nil, errors.New(res.Error)
	}
	return res, nil
}

func (n *node) unprepare(ctx context.Context, c claimRef) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := n.dra.NodeUnprepareResources(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: []*drapb.Claim{c.pb()}}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if res := resp.Claims[c.uid]; res != nil && res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

type claimRef struct{ namespace, name, uid string }

func (c claimRef) pb() *drapb.Claim {
	return &drapb.Claim{Namespace: c.namespace, Name: c.name, Uid: c.uid}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
