package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/stack"
)

// The demo's queue part: demo/queues (Kueue admits before kube-scheduler
// places; inference reclaims what dev borrowed) beside
// demo/scenarios/queues/device-plugin (device-plugin manifests unchanged).
const (
	migrationNS   = "migration"
	pluginJob     = "pretrain"
	queueWaitStep = 2 * time.Minute
)

// queuedJob is a Kueue-managed Job of demo/queues.
type queuedJob struct{ ns, name string }

var (
	trainingJobs = []queuedJob{{"research", "train-a"}, {"research", "train-b"}}
	borrower     = queuedJob{"research", "dev-sweep"}
	reclaimer    = queuedJob{"product", "chat-batch"}
)

// queues is the state the queue part reads its table from.
type queues struct {
	cs  kubernetes.Interface
	dyn dynamic.Interface
	a   *manifests.Applier
	dir string
}

func showQueues(ctx context.Context, c *cluster.Cluster, cs kubernetes.Interface, root string) error {
	q, err := newQueues(c, cs, root)
	if err != nil {
		return err
	}
	if slices.Contains(c.Running(), "kueue") {
		fmt.Println("kueue already running")
		if err := q.a.ApplyFiles(ctx, filepath.Join(root, stack.KueueQueuesFile)); err != nil {
			return err
		}
	} else {
		step("starting Kueue v0.17.0 (admission before placement) with a ClusterQueue per tier (" + stack.KueueQueuesFile + ")")
		if err := stack.StartKueue(ctx, c, q.a); err != nil {
			return err
		}
	}
	step("the device-plugin Job migration/pretrain finishes (the demo plays its container's exit 0): its 4 training GPUs return")
	if err := q.finish(ctx, migrationNS, pluginJob); err != nil {
		return err
	}
	step("two 4-GPU training Jobs against the training queue's quota of 4 (demo/queues/kueue-training.yaml)")
	if err := q.training(ctx); err != nil {
		return err
	}
	step("dev borrows inference's idle quota, then inference takes it back (kueue-dev-borrow.yaml, kueue-inference-reclaim.yaml)")
	if err := q.reclaim(ctx); err != nil {
		return err
	}
	return q.table(ctx)
}

func newQueues(c *cluster.Cluster, cs kubernetes.Interface, root string) (*queues, error) {
	a, err := applier(c)
	if err != nil {
		return nil, err
	}
	rest, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &queues{cs: cs, dyn: dyn, a: a, dir: filepath.Join(root, "demo", "queues")}, nil
}

// finish ends the job's running pods as their containers would.
func (q *queues) finish(ctx context.Context, ns, job string) error {
	pods, err := stack.JobPods(ctx, q.cs, ns, job)
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			if err := stack.FinishPod(ctx, q.cs, ns, p.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// training applies the two training Jobs and waits until one runs and the
// other waits for quota.
func (q *queues) training(ctx context.Context) error {
	if err := q.a.ApplyFiles(ctx, filepath.Join(q.dir, "kueue-training.yaml")); err != nil {
		return err
	}
	return q.waitStates(ctx, map[string]int{"running": 1, "queued": 1}, trainingJobs...)
}

// reclaim lets the dev Job borrow inference quota and run, then applies the
// inference Job that reclaims it. A second `make demo` finds the reclaim
// done and only checks the outcome.
func (q *queues) reclaim(ctx context.Context) error {
	if _, err := q.cs.BatchV1().Jobs(reclaimer.ns).Get(ctx, reclaimer.name, metav1.GetOptions{}); err != nil {
		if err := q.a.ApplyFiles(ctx, filepath.Join(q.dir, "kueue-dev-borrow.yaml")); err != nil {
			return err
		}
		if err := q.waitStates(ctx, map[string]int{"running": 1}, borrower); err != nil {
			return err
		}
		fmt.Println("research/dev-sweep runs on 2 inference slices borrowed from the inference queue")
	}
	if err := q.a.ApplyFiles(ctx, filepath.Join(q.dir, "kueue-inference-reclaim.yaml")); err != nil {
		return err
	}
	return q.waitStates(ctx, map[string]int{"running": 1, "preempted": 1}, borrower, reclaimer)
}

// waitStates waits until the jobs are in the states counted by want.
func (q *queues) waitStates(ctx context.Context, want map[string]int, jobs ...queuedJob) error {
	var got map[string]int
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, queueWaitStep, true, func(ctx context.Context) (bool, error) {
		got = map[string]int{}
		for _, j := range jobs {
			r, err := q.jobRow(ctx, j)
			if err != nil {
				return false, err
			}
			got[r.state]++
		}
		return maps.Equal(got, want), nil
	})
	if err == nil {
		return nil
	}
	var why []string
	for _, j := range jobs {
		why = append(why, j.ns+"/"+j.name+": "+stack.WorkloadSummary(ctx, q.dyn, j.ns, j.name))
	}
	return fmt.Errorf("queued jobs in states %v after %s, want %v (%s): %w", got, queueWaitStep, want, strings.Join(why, "; "), err)
}

// row is one line of the queue table.
type row struct{ name, queue, state, node, devices, why string }

// jobRow reads a Kueue-managed Job's state from its Workload and pods.
func (q *queues) jobRow(ctx context.Context, j queuedJob) (row, error) {
	r := row{name: j.ns + "/" + j.name, node: "-", devices: "0"}
	job, err := q.cs.BatchV1().Jobs(j.ns).Get(ctx, j.name, metav1.GetOptions{})
	if err != nil {
		return r, fmt.Errorf("get job %s: %w", r.name, err)
	}
	r.queue = job.Labels[stack.QueueLabel]
	wl, err := stack.JobWorkload(ctx, q.dyn, j.ns, j.name)
	if err != nil || wl == nil {
		r.state, r.why = "submitted", "no Workload yet"
		return r, err
	}
	pods, err := stack.JobPods(ctx, q.cs, j.ns, j.name)
	if err != nil {
		return r, err
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			cq, _, _ := unstructured.NestedString(wl.Object, "status", "admission", "clusterQueue")
			r.state, r.node, r.why = "running", p.Spec.NodeName, "admitted by ClusterQueue "+cq
			r.devices, err = q.podDevices(ctx, &p)
			return r, err
		}
	}
	if s, reason, msg := stack.WorkloadCondition(wl, "Preempted"); s == "True" {
		r.state, r.why = "preempted", reason+": "+msg
		return r, nil
	}
	if s, _, msg := stack.WorkloadCondition(wl, "QuotaReserved"); s != "True" && job.Spec.Suspend != nil && *job.Spec.Suspend {
		r.state, r.why = "queued", "suspended, no pod, no claim: "+msg
		return r, nil
	}
	r.state, r.why = "admitted", "pods starting"
	return r, nil
}

// podDevices counts the devices allocated to the pod's claims, the
// scheduler's claim for extended resources included.
func (q *queues) podDevices(ctx context.Context, p *corev1.Pod) (string, error) {
	var names []string
	for _, s := range p.Status.ResourceClaimStatuses {
		if s.ResourceClaimName != nil {
			names = append(names, *s.ResourceClaimName)
		}
	}
	if e := p.Status.ExtendedResourceClaimStatus; e != nil {
		names = append(names, e.ResourceClaimName)
	}
	n, class := 0, ""
	for _, name := range names {
		claim, err := q.cs.ResourceV1().ResourceClaims(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get claim %s/%s: %w", p.Namespace, name, err)
		}
		if claim.Status.Allocation == nil {
			continue
		}
		n += len(claim.Status.Allocation.Devices.Results)
		for _, req := range claim.Spec.Devices.Requests {
			if req.Exactly != nil {
				class = req.Exactly.DeviceClassName
			}
		}
	}
	if class == "" {
		return fmt.Sprint(n), nil
	}
	return fmt.Sprintf("%d %s", n, class), nil
}

// pluginRows are the device-plugin-style pods of demo/scenarios/queues.
func (q *queues) pluginRows(ctx context.Context) ([]row, error) {
	pods, err := q.cs.CoreV1().Pods(migrationNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", migrationNS, err)
	}
	var rows []row
	for i := range pods.Items {
		p := &pods.Items[i]
		r := row{name: p.Namespace + "/" + p.Name, queue: "(none)", node: p.Spec.NodeName,
			state: strings.ToLower(string(p.Status.Phase)), why: "limits " + limits(p)}
		if p.Status.Phase == corev1.PodSucceeded {
			// Its claim is released and gone with the pod's completion.
			r.devices, r.why = "0", r.why+"; done, its GPUs given back"
		} else if r.devices, err = q.podDevices(ctx, p); err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// limits names the pod's extended-resource limits, e.g. "nvidia.com/gpu: 4".
func limits(p *corev1.Pod) string {
	var out []string
	for _, c := range p.Spec.Containers {
		for name, v := range c.Resources.Limits {
			if strings.Contains(string(name), "/") {
				out = append(out, fmt.Sprintf("%s: %s", name, v.String()))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func (q *queues) table(ctx context.Context) error {
	var rows []row
	for _, j := range append(slices.Clone(trainingJobs), borrower, reclaimer) {
		r, err := q.jobRow(ctx, j)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	plugin, err := q.pluginRows(ctx)
	if err != nil {
		return err
	}
	fmt.Println("\nqueues, preemption and device-plugin manifests (demo/queues, demo/scenarios/queues):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB/POD\tQUEUE\tSTATE\tNODE\tDEVICES\tWHY")
	for _, r := range append(rows, plugin...) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.queue, r.state, r.node, r.devices, r.why)
	}
	return tw.Flush()
}
