package stack

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/test/cluster"
)

// SchedulerName is the second scheduler's name, which pods opt into.
const SchedulerName = "tierra-scheduler"

// SchedulerBinary is the built tierra-scheduler (hack/tools/build.sh).
func SchedulerBinary() (string, error) {
	dir := os.Getenv("TIERRA_CLUSTER_BIN")
	if dir == "" {
		root, err := cluster.RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "_output", "bin")
	}
	bin := filepath.Join(dir, "tierra-scheduler")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s not built (run %s): %w", bin, cluster.BuildCommand, err)
	}
	return bin, nil
}

// SchedulerConfig is tierra-scheduler's KubeSchedulerConfiguration: one
// profile, schedulerName tierra-scheduler, that scores with TierraYield in
// place of the resource-spreading scorers (NodeResourcesFit's
// LeastAllocated, BalancedAllocation, ImageLocality), over every feasible
// node as the simulation does. JSON is YAML.
func SchedulerConfig(kubeconfig string, typical []score.Typical) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion":               "kubescheduler.config.k8s.io/v1",
		"kind":                     "KubeSchedulerConfiguration",
		"clientConnection":         map[string]any{"kubeconfig": kubeconfig, "qps": 200, "burst": 400},
		"leaderElection":           map[string]any{"leaderElect": false},
		"percentageOfNodesToScore": 100,
		"profiles": []any{map[string]any{
			"schedulerName": SchedulerName,
			"plugins": map[string]any{
				// multiPoint: PreScore and Score.
				"multiPoint": map[string]any{"enabled": []any{map[string]any{"name": "TierraYield", "weight": 5}}},
				"score": map[string]any{"disabled": []any{
					map[string]any{"name": "NodeResourcesFit"},
					map[string]any{"name": "NodeResourcesBalancedAllocation"},
					map[string]any{"name": "ImageLocality"},
				}},
			},
			"pluginConfig": []any{map[string]any{
				"name": "TierraYield",
				"args": map[string]any{"scorer": score.Frag, "typicalPods": typical},
			}},
		}},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode scheduler config: %w", err)
	}
	return data, nil
}

// StartTierraScheduler runs tierra-scheduler as a second scheduler beside
// the cluster's kube-scheduler and waits until it is healthy; typical nil
// means the plugin's default target workload.
func StartTierraScheduler(ctx context.Context, c *cluster.Cluster, typical []score.Typical) error {
	bin, err := SchedulerBinary()
	if err != nil {
		return err
	}
	cfg, err := SchedulerConfig(c.Kubeconfig(), typical)
	if err != nil {
		return err
	}
	path := filepath.Join(c.StateDir(), "tierra-scheduler.yaml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		return fmt.Errorf("write scheduler config: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	kc := c.Kubeconfig()
	if err := c.Run(SchedulerName, bin, "--config="+path, "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc); err != nil {
		return fmt.Errorf("start %s: %w", SchedulerName, err)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health check of a self-signed server
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/healthz"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("%s not healthy (see %s): %w", SchedulerName, c.LogFile(SchedulerName), err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
