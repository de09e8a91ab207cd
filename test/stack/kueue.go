package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// KueueVersion is the Kueue the Makefile builds (make kueue,
// hack/tools/kueue.sh): its controller manager binary and, in the module
// cache, the CRDs and webhook manifests of the same release.
const KueueVersion = "v0.17.0"

// KueueNamespace is where Kueue keeps its Secret, ConfigMap and events.
const KueueNamespace = "kueue-system"

// Files of the repository Kueue's stack applies, relative to its root.
const (
	// KueueConfigFile is the admin's part of Kueue's Configuration, as the
	// ConfigMap Kueue's install mounts.
	KueueConfigFile = "demo/queues/kueue-config.yaml"
	// KueueQueuesFile holds the ResourceFlavor, the tiers' ClusterQueues
	// and the tenants' LocalQueues.
	KueueQueuesFile = "demo/queues/kueue-queues.yaml"
	kueueConfigKey  = "controller_manager_config.yaml"
)

// kueueConversionCRDs are the CRDs Kueue serves conversion for, the ones its
// kustomization patches with a conversion webhook and its certificate
// rotator injects the CA into (it waits until it has done all five).
var kueueConversionCRDs = map[string]bool{
	"localqueues.kueue.x-k8s.io": true, "clusterqueues.kueue.x-k8s.io": true, "cohorts.kueue.x-k8s.io": true,
	"workloads.kueue.x-k8s.io": true, "multikueueclusters.kueue.x-k8s.io": true,
}

// kueuePodWebhooks are the webhooks Kueue's kustomization keeps out of
// kube-system and its own namespace.
var kueuePodWebhooks = map[string]bool{
	"mpod.kb.io": true, "mdeployment.kb.io": true, "mstatefulset.kb.io": true,
	"vpod.kb.io": true, "vdeployment.kb.io": true, "vstatefulset.kb.io": true,
}

// KueueBinary is the built controller manager (hack/tools/kueue.sh).
func KueueBinary() (string, error) {
	dir := os.Getenv("TIERRA_CLUSTER_BIN")
	if dir == "" {
		root, err := cluster.RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "_output", "bin")
	}
	bin := filepath.Join(dir, "kueue-"+KueueVersion)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s not built (run make kueue): %w", bin, err)
	}
	return bin, nil
}

// KueueModuleDir is Kueue's module in the module cache, which the build
// downloaded: the CRDs and webhook manifests of the release are read there,
// never copied into the repository.
func KueueModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "sigs.k8s.io", "kueue@"+KueueVersion)
	if _, err := os.Stat(filepath.Join(dir, "config", "components", "crd", "bases")); err != nil {
		return "", fmt.Errorf("kueue %s not in the module cache (run make kueue): %w", KueueVersion, err)
	}
	return dir, nil
}

// StartKueue runs Kueue's controller manager against cluster c the way its
// release manifests install it, with what a pod would get from the cluster
// done on loopback instead: its CRDs and webhook configurations from the
// module, pointed at https://127.0.0.1:<port>; the webhook's CA and serving
// certificate generated here and put where Kueue's own certificate
// management finds and keeps them (its Secret and its cert dir); and
// KueueConfigFile's Configuration plus loopback ports. It returns once
// Kueue reports ready (its webhook server serving) and the apiserver has
// called its webhooks for the queues of KueueQueuesFile, which it applies.
func StartKueue(ctx context.Context, c *cluster.Cluster, a *manifests.Applier) error {
	bin, err := KueueBinary()
	if err != nil {
		return err
	}
	mod, err := KueueModuleDir(ctx)
	if err != nil {
		return err
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	webhookPort, err := freePort()
	if err != nil {
		return err
	}
	healthPort, err := freePort()
	if err != nil {
		return err
	}
	tls, err := newKueueTLS()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.StateDir(), "kueue")
	if err := tls.writeCertDir(filepath.Join(dir, "certs")); err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(webhookPort)
	if err := installKueue(ctx, a, mod, tls, addr); err != nil {
		return err
	}
	cfg, err := kueueConfig(ctx, a, root, dir, webhookPort, healthPort)
	if err != nil {
		return err
	}
	if err := c.Run("kueue", bin, "--config="+cfg, "--kubeconfig="+c.Kubeconfig()); err != nil {
		return fmt.Errorf("start kueue: %w", err)
	}
	if err := waitKueueReady(ctx, healthPort); err != nil {
		return fmt.Errorf("kueue not ready (see %s): %w", c.LogFile("kueue"), err)
	}
	// The queues go through Kueue's defaulting and validating webhooks:
	// applied, they prove the apiserver reaches them over TLS.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return a.ApplyFiles(ctx, filepath.Join(root, KueueQueuesFile)) == nil, nil
	})
	if err != nil {
		applyErr := a.ApplyFiles(ctx, filepath.Join(root, KueueQueuesFile))
		return fmt.Errorf("apply %s through kueue's webhooks (see %s): %w", KueueQueuesFile, c.LogFile("kueue"), applyErr)
	}
	return nil
}

// installKueue applies Kueue's namespace, its certificate Secret, its CRDs
// (the five with conversion pointed at addr/convert, as its kustomization
// patches them for its Service) and its webhook configurations, named and
// scoped as its kustomization names them, pointed at addr.
func installKueue(ctx context.Context, a *manifests.Applier, mod string, tls kueueTLS, addr string) error {
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": KueueNamespace},
	}}
	if err := a.Apply(ctx, ns, tls.secret()); err != nil {
		return fmt.Errorf("install kueue's namespace and certificate: %w", err)
	}
	crds, err := manifests.Read(filepath.Join(mod, "config", "components", "crd", "bases"))
	if err != nil {
		return fmt.Errorf("kueue CRDs: %w", err)
	}
	for _, crd := range crds {
		if !kueueConversionCRDs[crd.GetName()] {
			continue
		}
		conversion := map[string]any{
			"strategy": "Webhook",
			"webhook": map[string]any{
				"clientConfig":             tls.clientConfig(addr, "/convert"),
				"conversionReviewVersions": []any{"v1"},
			},
		}
		if err := unstructured.SetNestedMap(crd.Object, conversion, "spec", "conversion"); err != nil {
			return fmt.Errorf("kueue CRD %s: %w", crd.GetName(), err)
		}
	}
	if err := a.Apply(ctx, crds...); err != nil {
		return fmt.Errorf("install kueue's CRDs: %w", err)
	}
	hooks, err := manifests.Read(filepath.Join(mod, "config", "components", "webhook", "manifests.yaml"))
	if err != nil {
		return fmt.Errorf("kueue webhooks: %w", err)
	}
	for _, h := range hooks {
		if err := loopbackWebhooks(h, tls, addr); err != nil {
			return err
		}
	}
	if err := a.Apply(ctx, hooks...); err != nil {
		return fmt.Errorf("install kueue's webhook configurations: %w", err)
	}
	return nil
}

// loopbackWebhooks renames a webhook configuration as Kueue's
// kustomization does (prefix kueue-, the name its rotator updates), points
// every webhook at addr plus the path of its Service reference, and scopes
// the pod-level webhooks out of kube-system and kueue-system.
func loopbackWebhooks(cfg *unstructured.Unstructured, tls kueueTLS, addr string) error {
	cfg.SetName("kueue-" + cfg.GetName())
	hooks, _, err := unstructured.NestedSlice(cfg.Object, "webhooks")
	if err != nil {
		return fmt.Errorf("kueue webhook configuration %s: %w", cfg.GetName(), err)
	}
	for i := range hooks {
		h := hooks[i].(map[string]any)
		path, _, err := unstructured.NestedString(h, "clientConfig", "service", "path")
		if err != nil || path == "" {
			return fmt.Errorf("kueue webhook %v: no service path in its clientConfig: %w", h["name"], err)
		}
		h["clientConfig"] = tls.clientConfig(addr, path)
		if name, _ := h["name"].(string); kueuePodWebhooks[name] {
			h["namespaceSelector"] = map[string]any{"matchExpressions": []any{map[string]any{
				"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": []any{"kube-system", KueueNamespace},
			}}}
		}
	}
	if err := unstructured.SetNestedSlice(cfg.Object, hooks, "webhooks"); err != nil {
		return fmt.Errorf("kueue webhook configuration %s: %w", cfg.GetName(), err)
	}
	return nil
}

// kueueConfig applies KueueConfigFile's ConfigMap (what an admin's cluster
// holds) and writes its Configuration to dir with what the local control
// plane needs on top: loopback ports for the webhook and health probes, the
// cert dir, no metrics server, no leader election, internal certificate
// management on (it keeps the Secret installKueue wrote) and the
// visibility server off (it would need an APIService and a port of its
// own). It returns the file's path.
func kueueConfig(ctx context.Context, a *manifests.Applier, root, dir string, webhookPort, healthPort int) (string, error) {
	objs, err := manifests.Read(filepath.Join(root, KueueConfigFile))
	if err != nil {
		return "", err
	}
	if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" {
		return "", fmt.Errorf("%s: want one ConfigMap", KueueConfigFile)
	}
	if err := a.Apply(ctx, objs[0]); err != nil {
		return "", fmt.Errorf("apply %s: %w", KueueConfigFile, err)
	}
	data, _, err := unstructured.NestedString(objs[0].Object, "data", kueueConfigKey)
	if err != nil || data == "" {
		return "", fmt.Errorf("%s: no data.%s: %w", KueueConfigFile, kueueConfigKey, err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", KueueConfigFile, err)
	}
	cfg["namespace"] = KueueNamespace
	cfg["health"] = map[string]any{"healthProbeBindAddress": "127.0.0.1:" + strconv.Itoa(healthPort)}
	cfg["metrics"] = map[string]any{"bindAddress": "0"}
	cfg["webhook"] = map[string]any{"host": "127.0.0.1", "port": webhookPort, "certDir": filepath.Join(dir, "certs")}
	cfg["leaderElection"] = map[string]any{"leaderElect": false}
	cfg["internalCertManagement"] = map[string]any{
		"enable": true, "webhookServiceName": kueueWebhookService, "webhookSecretName": kueueWebhookSecret,
	}
	gates, _ := cfg["featureGates"].(map[string]any)
	if gates == nil {
		gates = map[string]any{}
	}
	gates["VisibilityOnDemand"] = false
	cfg["featureGates"] = gates
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode kueue configuration: %w", err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write kueue configuration: %w", err)
	}
	return path, nil
}

// waitKueueReady polls Kueue's readyz, which passes once its certificates
// are in place and its webhook server answers TLS.
func waitKueueReady(ctx context.Context, healthPort int) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(healthPort) + "/readyz"
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}
