// Command tierra-scheduler is kube-scheduler v1.37.1 with one more Score
// plugin, TierraYield: Tierra's fragmentation-aware node scorer (pkg/score,
// the scorer `tierra sim` measures). The upstream DynamicResources plugin
// still filters and allocates; TierraYield only ranks the feasible nodes.
//
// Run it like kube-scheduler, with a KubeSchedulerConfiguration whose
// profile enables TierraYield (see deployments/helm/tierra, scheduler.*).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/tierra-gpu/tierra/cmd/tierra-scheduler/yield"
)

func main() {
	cmd := app.NewSchedulerCommand(app.WithPlugin(yield.Name, yield.New))
	os.Exit(cli.Run(cmd))
}
