package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/test/cluster"
)

// report prints pod -> class -> tier -> node -> devices -> cost per hour
// from the claims as the scheduler allocated them, then the yield per node
// and per tier as tierra-controller reports it on the TierPolicy.
func report(ctx context.Context, c *cluster.Cluster, cs kubernetes.Interface, specs []plan.NodeSpec) error {
	var nodes []string
	for _, s := range specs {
		nodes = append(nodes, s.Name)
	}
	published, err := cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list ResourceSlices: %w", err)
	}
	var claims []*resourceapi.ResourceClaim
	for _, ns := range demoNamespaces {
		list, err := cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list ResourceClaims: %w", err)
		}
		for i := range list.Items {
			claim := list.Items[i].DeepCopy()
			// A template's claim is named after its pod: show the pod.
			if owner := metav1.GetControllerOf(claim); owner != nil && owner.Kind == "Pod" {
				claim.Name = owner.Name
			}
			claims = append(claims, claim)
		}
	}
	var objs []*resourceapi.ResourceSlice
	for i := range published.Items {
		objs = append(objs, &published.Items[i])
	}
	res := plan.Observe(nodes, objs, claims)
	res.RowHeading = "POD"
	fmt.Println()
	if err := plan.WriteTable(os.Stdout, res); err != nil {
		return err
	}
	return tierYield(ctx, c)
}

// tierYield prints the TierPolicy's status per tier, as tierra-controller
// wrote it.
func tierYield(ctx context.Context, c *cluster.Cluster) error {
	rest, err := c.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return err
	}
	var policy *v1alpha1.TierPolicy
	// The controller batches status writes: give it a moment to count the
	// allocations the table above shows.
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(v1alpha1.TierPolicyResource).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("read TierPolicy status: %w", err)
		}
		if policy, err = v1alpha1.TierPolicyFromUnstructured(u); err != nil {
			return false, err
		}
		allocated := int64(0)
		for _, t := range policy.Status.Tiers {
			allocated += t.AllocatedMilliGPUs
		}
		return allocated > 0, nil
	})
	if err != nil {
		return err
	}
	fmt.Println("\nTierPolicy default, status from tierra-controller:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tGPUS\tDEVICES PUBLISHED\tDEVICES ALLOCATED\tALLOCATED (GPU-EQUIV.)\tYIELD")
	for _, t := range policy.Status.Tiers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3g\t%d%%\n", t.Name, t.GPUs, t.DevicesPublished, t.DevicesAllocated,
			float64(t.AllocatedMilliGPUs)/1000, t.YieldPercent)
	}
	return tw.Flush()
}

// showSchedulers says which scheduler placed the demo's pods, from the
// Scheduled events the schedulers wrote.
func showSchedulers(ctx context.Context, cs kubernetes.Interface) error {
	by := map[string]int{}
	total := 0
	for _, ns := range demoNamespaces {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Scheduled"})
		if err != nil {
			return fmt.Errorf("list Scheduled events: %w", err)
		}
		for _, e := range events.Items {
			by[e.ReportingController+e.Source.Component]++
			total++
		}
	}
	fmt.Printf("\npods placed, by scheduler (their Scheduled events): ")
	for name, n := range by {
		fmt.Printf("%s %d/%d  ", name, n, total)
	}
	fmt.Println()
	return nil
}
