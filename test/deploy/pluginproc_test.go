package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tierra-gpu/tierra/test/stack"
)

// hostDirs maps the DaemonSet's host paths (as mounted in the container)
// to a test node's directories: both plugin pods of a node share them, as
// they share the node's /var/lib/kubelet, /var/run/cdi and state dir.
type hostDirs map[string]string

// newHostDirs makes a directory for each hostPath mount of the plugin
// container. Short paths: unix sockets live in some of them.
func newHostDirs(t *testing.T, ds *appsv1.DaemonSet) hostDirs {
	t.Helper()
	hostPaths := map[string]string{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	dirs := hostDirs{}
	for _, m := range ds.Spec.Template.Spec.Containers[0].VolumeMounts {
		// The plugin writes its host dirs at the host's paths (the kubelet
		// and CDI read them there); a read-only one, like the host's /proc
		// at /host/proc, may sit anywhere.
		if !m.ReadOnly {
			require.Equal(t, hostPaths[m.Name], m.MountPath, "the plugin sees host path %s at the same path", m.Name)
		}
		d, err := os.MkdirTemp("", "td")
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		dirs[m.MountPath] = d
	}
	return dirs
}

// local maps a path in the container to the test node's directory.
func (h hostDirs) local(path string) string {
	mounts := make([]string, 0, len(h))
	for m := range h {
		mounts = append(mounts, m)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		if path == m || strings.HasPrefix(path, m+"/") {
			return h[m] + strings.TrimPrefix(path, m)
		}
	}
	return path
}

// pluginProc is one plugin pod of the DaemonSet run as a process.
type pluginProc struct {
	pod    *corev1.Pod
	env    []string
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

// startPlugin runs the plugin binary as the DaemonSet's container would
// run in pod: the container's args and env, the downward API filled from
// the pod, host paths mapped to dirs, and the service account token bound
// to the pod (in a kubeconfig, in place of the in-cluster config). extra
// env entries win.
func (s *suite) startPlugin(t *testing.T, bin string, ds *appsv1.DaemonSet, dirs hostDirs, pod *corev1.Pod, extra ...string) *pluginProc {
	t.Helper()
	c := ds.Spec.Template.Spec.Containers[0]
	env := os.Environ()
	for _, e := range c.Env {
		v := dirs.local(e.Value)
		if e.ValueFrom != nil {
			require.NotNil(t, e.ValueFrom.FieldRef, "env %s: only the downward API's fieldRef is supported here", e.Name)
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				v = pod.Spec.NodeName
			case "metadata.uid":
				v = string(pod.UID)
			default:
				t.Fatalf("env %s: unsupported fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	s.writeKubeconfig(t, kubeconfig, s.identityOf(t, pluginName, pod).token)
	env = append(env, "TIERRA_KUBECONFIG="+kubeconfig)
	// Each pod has its own network namespace, these processes share one:
	// the chart's metrics port on a port of their own.
	env = append(env, "TIERRA_METRICS_ADDRESS=127.0.0.1:0")
	env = append(env, extra...)

	log, err := os.Create(filepath.Join(dir, "plugin.log"))
	require.NoError(t, err)
	p := &pluginProc{pod: pod, env: env, log: log, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, c.Args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	go func(c *exec.Cmd) { p.exited <- c.Wait() }(p.cmd)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("plugin %s log, warnings and errors:\n%s\n... last lines:\n%s", pod.Name, problems(string(out), 40), tailLines(string(out), 20))
		}
		_ = log.Close()
	})
	return p
}

// ready runs the container's exec readiness probe in the pod's environment,
// as the kubelet would, and reports whether it passes.
func (p *pluginProc) ready(t *testing.T, c corev1.Container) bool {
	t.Helper()
	require.NotNil(t, c.ReadinessProbe, "the plugin has a readiness probe")
	require.NotNil(t, c.ReadinessProbe.Exec, "exec readiness probe")
	argv := c.ReadinessProbe.Exec.Command
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = p.env
	return cmd.Run() == nil
}

// stop ends the plugin with SIGTERM, as the kubelet does when the
// DaemonSet controller deletes the old pod, and requires a clean exit.
func (p *pluginProc) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.exited:
		p.cmd = nil
		require.NoError(t, err, "plugin %s exit (log %s)", p.pod.Name, p.log.Name())
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("plugin %s did not stop on SIGTERM", p.pod.Name)
	}
}

// kill ends a plugin still running (cleanup).
func (p *pluginProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// writeKubeconfig writes a kubeconfig for the control plane with a token.
func (s *suite) writeKubeconfig(t *testing.T, path, token string) {
	t.Helper()
	cluster := &clientcmdapi.Cluster{Server: s.cfg.Host, CertificateAuthority: s.cfg.CAFile,
		CertificateAuthorityData: s.cfg.CAData, InsecureSkipTLSVerify: s.cfg.Insecure}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"local": cluster},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"plugin": {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{"plugin": {Cluster: "local", AuthInfo: "plugin"}},
		CurrentContext: "plugin",
	}
	require.NoError(t, clientcmd.WriteToFile(cfg, path))
}

// problems are the first n warning and error lines of a klog log.
func problems(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if (strings.HasPrefix(l, "W") || strings.HasPrefix(l, "E")) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildPlugin builds the kubelet plugin from the working tree.
func buildPlugin(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tierra-kubelet-plugin")
	require.NoError(t, stack.GoBuild(context.Background(), root, "./cmd/tierra-kubelet-plugin", bin))
	return bin
}
