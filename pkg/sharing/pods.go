package sharing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Labels and annotations of the MPS daemon Deployments.
const (
	LabelComponent     = "app.kubernetes.io/component"
	ComponentMPS       = "mps-control-daemon"
	LabelMPSNode       = "gpu.tierra.dev/mps-node"
	LabelMPSDaemon     = "gpu.tierra.dev/mps-daemon"
	AnnotationMPSGPU   = "gpu.tierra.dev/gpu-uuid"
	AnnotationMPSNode  = "gpu.tierra.dev/node"
	AnnotationMPSLimit = "gpu.tierra.dev/mps-limits"
)

// DefaultDaemonReadyTimeout bounds how long Start waits for a daemon pod.
const DefaultDaemonReadyTimeout = 2 * time.Minute

// PodOptions configure PodDaemons.
type PodOptions struct {
	Client kubernetes.Interface
	// Namespace holds the Deployments (the plugin's own).
	Namespace string
	// Node is the node the daemons run on; NodeUID, when set, makes the
	// Node their owner, so they go with a deleted Node.
	Node    string
	NodeUID string
	// Image has the supervisor (Supervise); SupervisorCommand is how it is
	// invoked there (e.g. /usr/bin/tierra-kubelet-plugin mps-daemon).
	Image             string
	SupervisorCommand []string
	// ControlCommand is nvidia-cuda-mps-control as the daemon pod finds it.
	ControlCommand string
	// PriorityClassName of the daemon pods ("" for none).
	PriorityClassName string
	// RuntimeClassName injects the driver (e.g. "nvidia"); "" for none.
	RuntimeClassName string
	// Env is added to the daemon container (e.g. the fake machine's).
	Env []corev1.EnvVar
	// ReadyTimeout bounds Start; 0 means DefaultDaemonReadyTimeout.
	ReadyTimeout time.Duration
}

// PodDaemons runs each GPU's MPS control daemon in a Deployment of one pod
// pinned to the node: it outlives plugin restarts, rollouts and OOM kills,
// is restarted by the kubelet when its health check fails, and shares the
// GPU's pipe and shm directories with the clients through host paths.
type PodDaemons struct{ opts PodOptions }

var _ Daemons = (*PodDaemons)(nil)

// NewPodDaemons validates the options.
func NewPodDaemons(opts PodOptions) (*PodDaemons, error) {
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("client is required"))
	}
	for _, f := range []struct{ name, v string }{{"namespace", opts.Namespace}, {"node", opts.Node}, {"image", opts.Image}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	if len(opts.SupervisorCommand) == 0 {
		errs = append(errs, errors.New("supervisor command is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("MPS daemon pods: %w", err)
	}
	if opts.ControlCommand == "" {
		opts.ControlCommand = DefaultMPSControlCommand
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultDaemonReadyTimeout
	}
	return &PodDaemons{opts: opts}, nil
}

// DaemonName is the Deployment of a node's GPU: a hash, as node names and
// UUIDs together exceed a DNS label.
func DaemonName(node, gpuUUID string) string {
	return "tierra-mps-" + hash(node+"/"+gpuUUID)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// Start implements Daemons: creates the Deployment (or keeps the one with
// the same limits a crashed plugin left) and waits until its pod is ready.
func (p *PodDaemons) Start(ctx context.Context, d Daemon) error {
	want := p.deployment(d)
	deps := p.opts.Client.AppsV1().Deployments(p.opts.Namespace)
	_, err := deps.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = p.replaceIfChanged(ctx, d, want)
	}
	if err != nil {
		return fmt.Errorf("create MPS daemon %s/%s: %w", p.opts.Namespace, want.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Waiting for the MPS daemon pod", "deployment", klog.KObj(want), "gpu", d.GPUUUID)
	return p.waitReady(ctx, want.Name)
}

// replaceIfChanged deletes a leftover Deployment of other limits (the new
// one is created after it is gone) and keeps one of the same limits.
func (p *PodDaemons) replaceIfChanged(ctx context.Context, d Daemon, want *appsv1.Deployment) error {
	cur, err := p.opts.Client.AppsV1().Deployments(p.opts.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cur.Annotations[AnnotationMPSLimit] == want.Annotations[AnnotationMPSLimit] && cur.DeletionTimestamp == nil {
		return nil
	}
	if err := p.Stop(ctx, d); err != nil {
		return err
	}
	_, err = p.opts.Client.AppsV1().Deployments(p.opts.Namespace).Create(ctx, want, metav1.CreateOptions{})
	return err
}

func (p *PodDaemons) waitReady(ctx context.Context, name string) error {
	var last *appsv1.Deployment
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, p.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		dep, err := p.opts.Client.AppsV1().Deployments(p.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = dep
		return dep.Status.ObservedGeneration >= dep.Generation && dep.Status.ReadyReplicas >= 1, nil
	})
	if err != nil {
		return fmt.Errorf("MPS daemon %s/%s not ready: %w%s", p.opts.Namespace, name, err, p.podProblem(context.WithoutCancel(ctx), last))
	}
	return nil
}

// podProblem says why the daemon's pod is not ready, for the error.
func (p *PodDaemons) podProblem(ctx context.Context, dep *appsv1.Deployment) string {
	if dep == nil {
		return ""
	}
	pods, err := p.opts.Client.CoreV1().Pods(p.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{LabelMPSDaemon: dep.Labels[LabelMPSDaemon]}.String()})
	if err != nil || len(pods.Items) == 0 {
		return " (no pod yet)"
	}
	pod := pods.Items[0]
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return fmt.Sprintf(" (pod %s: %s: %s)", pod.Name, w.Reason, w.Message)
		}
	}
	return fmt.Sprintf(" (pod %s is %s)", pod.Name, pod.Status.Phase)
}

// Stop implements Daemons: deletes the Deployment with its pods (the
// supervisor quits the daemon on SIGTERM) and waits until they are gone.
func (p *PodDaemons) Stop(ctx context.Context, d Daemon) error {
	name := DaemonName(p.opts.Node, d.GPUUUID)
	deps := p.opts.Client.AppsV1().Deployments(p.opts.Namespace)
	err := deps.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationForeground)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete MPS daemon %s/%s: %w", p.opts.Namespace, name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, p.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := deps.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("MPS daemon %s/%s not gone: %w", p.opts.Namespace, name, err)
	}
	return nil
}

// List implements Daemons: the node's daemon Deployments.
func (p *PodDaemons) List(ctx context.Context) ([]string, error) {
	list, err := p.opts.Client.AppsV1().Deployments(p.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{LabelComponent: ComponentMPS, LabelMPSNode: hash(p.opts.Node)}.String()})
	if err != nil {
		return nil, fmt.Errorf("list MPS daemons in %s: %w", p.opts.Namespace, err)
	}
	var gpus []string
	for _, dep := range list.Items {
		if gpu := dep.Annotations[AnnotationMPSGPU]; gpu != "" {
			gpus = append(gpus, gpu)
		}
	}
	return gpus, nil
}

func ptrTo[T any](v T) *T { return &v }
