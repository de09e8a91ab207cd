package nodesim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// probePeriod is how often a running container's readiness probe runs.
const probePeriod = 300 * time.Millisecond

// containers runs, as host processes, the containers of the pods whose
// every image Options.Images maps to a local executable (the MPS daemon
// pods the plugin creates): the executable stands in for the image's
// command[0], with the container's args and literal env. They are restarted
// when they exit, their readiness probe decides the pod's Ready condition,
// and they outlive plugin restarts, as containers do.
type containers struct {
	images   map[string]string
	dir      string
	progress io.Writer

	mu   sync.Mutex
	pods map[types.UID]*podProcs
}

type podProcs struct {
	procs  []*supervisor
	cancel context.CancelFunc
	probes sync.WaitGroup
}

func newContainers(images map[string]string, dir string, progress io.Writer) *containers {
	return &containers{images: images, dir: dir, progress: progress, pods: map[types.UID]*podProcs{}}
}

// handles reports whether the pod's containers run here as processes.
func (c *containers) handles(pod *corev1.Pod) bool {
	if len(c.images) == 0 || len(pod.Spec.Containers) == 0 {
		return false
	}
	for _, ctr := range pod.Spec.Containers {
		if _, ok := c.images[ctr.Image]; !ok {
			return false
		}
	}
	return true
}

// command is how a container's command line (or probe) runs here.
func (c *containers) command(ctr *corev1.Container, argv []string) *exec.Cmd {
	exe := c.images[ctr.Image]
	args := argv
	if len(argv) > 0 {
		args = argv[1:]
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = os.Environ()
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	return cmd
}

// start runs the pod's containers and probes them; setReady is told each
// change of their readiness.
func (c *containers) start(ctx context.Context, pod *corev1.Pod, setReady func(context.Context, bool) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pod.UID]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &podProcs{cancel: cancel}
	for i := range pod.Spec.Containers {
		ctr := &pod.Spec.Containers[i]
		argv := append(append([]string{}, ctr.Command...), ctr.Args...)
		log := filepath.Join(c.dir, fmt.Sprintf("%s_%s_%s.log", pod.Namespace, pod.Name, ctr.Name))
		s := newSupervisor("container "+pod.Name+"/"+ctr.Name, func() *exec.Cmd { return c.command(ctr, argv) }, log, c.progress)
		if err := s.start(ctx); err != nil {
			cancel()
			stopAll(p.procs)
			return err
		}
		p.procs = append(p.procs, s)
	}
	p.probes.Add(1)
	go func() { defer p.probes.Done(); c.probe(ctx, pod, setReady) }()
	c.pods[pod.UID] = p
	return nil
}

// probe runs the containers' readiness probes until ctx ends; a container
// without one is ready once started.
func (c *containers) probe(ctx context.Context, pod *corev1.Pod, setReady func(context.Context, bool) error) {
	known, reported := false, false
	tick := time.NewTicker(probePeriod)
	defer tick.Stop()
	for {
		ready := true
		for i := range pod.Spec.Containers {
			ctr := &pod.Spec.Containers[i]
			if p := ctr.ReadinessProbe; p != nil && p.Exec != nil && !c.probeOnce(ctx, ctr, p) {
				ready = false
			}
		}
		if !known || ready != reported {
			if err := setReady(ctx, ready); err != nil {
				klog.FromContext(ctx).V(2).Info("Report container readiness", "pod", klog.KObj(pod), "err", err)
			} else {
				known, reported = true, ready
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *containers) probeOnce(ctx context.Context, ctr *corev1.Container, p *corev1.Probe) bool {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := c.command(ctr, p.Exec.Command)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return false
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err == nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}

// stop ends the pod's containers (SIGTERM, SIGKILL after 10 s), as the
// kubelet does before it removes a deleted pod.
func (c *containers) stop(uid types.UID) {
	c.mu.Lock()
	p := c.pods[uid]
	delete(c.pods, uid)
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	p.probes.Wait()
	stopAll(p.procs)
}

// stopAll ends every pod's containers (the node stops).
func (c *containers) stopAll() {
	c.mu.Lock()
	var uids []types.UID
	for uid := range c.pods {
		uids = append(uids, uid)
	}
	c.mu.Unlock()
	for _, uid := range uids {
		c.stop(uid)
	}
}

func stopAll(procs []*supervisor) {
	for _, s := range procs {
		_ = s.stop()
	}
}

// RunPods plays a kubelet without DRA for the pods bound to node: those
// whose every image is in images run as host processes (as in
// Options.Images), the others are only reported Running; deleted pods are
// stopped and removed. The crash test runs its MPS daemon pods so. Call the
// returned stop to end them all.
func RunPods(ctx context.Context, client kubernetes.Interface, node string, images map[string]string, dir string, log io.Writer) (stop func(), err error) {
	// A recorder without a channel drops the events.
	w := newPodWorker(client, node, nil, &record.FakeRecorder{}, newContainers(images, dir, log))
	if err := w.start(ctx); err != nil {
		return nil, err
	}
	return w.stop, nil
}
