package sharing

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SupervisorArgs are the flags of the supervisor for a daemon (parsed by
// the mps-daemon command into SuperviseOptions); probe adds --probe.
func SupervisorArgs(d Daemon, controlCommand string, probe bool) []string {
	args := []string{
		"--gpu=" + d.GPUUUID,
		"--dir=" + d.Dir,
		"--control-command=" + controlCommand,
	}
	if probe {
		return append(args, "--probe")
	}
	if d.Limits.ActiveThreadPercentage > 0 {
		args = append(args, "--active-thread-percentage="+strconv.Itoa(int(d.Limits.ActiveThreadPercentage)))
	}
	if d.Limits.PinnedDeviceMemoryMiB > 0 {
		args = append(args, "--pinned-device-memory-mib="+strconv.FormatInt(d.Limits.PinnedDeviceMemoryMiB, 10))
	}
	return args
}

// deployment is the daemon of one GPU: one pod, never two at once
// (Recreate: two daemons on one pipe directory would fight), pinned to the
// node without the scheduler, tolerating every taint (a GPU being
// re-tiered still serves its claims).
func (p *PodDaemons) deployment(d Daemon) *appsv1.Deployment {
	name := DaemonName(p.opts.Node, d.GPUUUID)
	labels := map[string]string{
		"app.kubernetes.io/name": "tierra", LabelComponent: ComponentMPS,
		LabelMPSNode: hash(p.opts.Node), LabelMPSDaemon: name,
	}
	meta := metav1.ObjectMeta{
		Name: name, Namespace: p.opts.Namespace, Labels: labels,
		Annotations: map[string]string{AnnotationMPSGPU: d.GPUUUID, AnnotationMPSNode: p.opts.Node, AnnotationMPSLimit: d.Limits.String()},
	}
	if p.opts.NodeUID != "" {
		meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: p.opts.Node, UID: types.UID(p.opts.NodeUID)}}
	}
	return &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelMPSDaemon: name}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: meta.Annotations},
				Spec:       p.podSpec(d),
			},
		},
	}
}

func (p *PodDaemons) podSpec(d Daemon) corev1.PodSpec {
	probe := func(failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: append(append([]string{}, p.opts.SupervisorCommand...), SupervisorArgs(d, p.opts.ControlCommand, true)...)}},
			PeriodSeconds: 5, TimeoutSeconds: 5, FailureThreshold: failures,
		}
	}
	hostDir := corev1.HostPathDirectoryOrCreate
	env := append([]corev1.EnvVar{
		// The NVIDIA container toolkit injects this GPU and the MPS
		// binaries (compute) and nvidia-smi (utility).
		{Name: "NVIDIA_VISIBLE_DEVICES", Value: d.GPUUUID},
		{Name: "NVIDIA_DRIVER_CAPABILITIES", Value: "compute,utility"},
	}, p.opts.Env...)
	spec := corev1.PodSpec{
		NodeName:                      p.opts.Node,
		Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		PriorityClassName:             p.opts.PriorityClassName,
		AutomountServiceAccountToken:  ptrTo(false),
		TerminationGracePeriodSeconds: ptrTo[int64](30),
		Containers: []corev1.Container{{
			Name:    "mps-control-daemon",
			Image:   p.opts.Image,
			Command: p.opts.SupervisorCommand,
			Args:    SupervisorArgs(d, p.opts.ControlCommand, false),
			Env:     env,
			// The daemon starts one MPS server per client user and needs
			// the GPU's device nodes.
			SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true), RunAsUser: ptrTo[int64](0)},
			ReadinessProbe:  probe(1),
			LivenessProbe:   probe(6),
			VolumeMounts: []corev1.VolumeMount{
				// At its host path, so that the flags name the same
				// directory inside and outside the pod.
				{Name: "mps", MountPath: d.Dir},
				{Name: "shm", MountPath: MPSContainerShmDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "mps", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: d.Dir, Type: &hostDir}}},
			{Name: "shm", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: d.ShmDir(), Type: &hostDir}}},
		},
	}
	if p.opts.RuntimeClassName != "" {
		spec.RuntimeClassName = ptrTo(p.opts.RuntimeClassName)
	}
	return spec
}
