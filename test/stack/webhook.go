package stack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	certutil "k8s.io/client-go/util/cert"

	"github.com/tierra-gpu/tierra/pkg/webhook"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// claimWebhook is where tierra-controller serves the claim webhook on
// loopback: a port and a certificate for 127.0.0.1, kept in the cluster's
// state dir so that Install and ControllerArgs agree, also across the
// processes of `make demo` and its reruns.
type claimWebhook struct {
	addr, certDir string
	ca            []byte
}

func loadClaimWebhook(c *cluster.Cluster) (claimWebhook, error) {
	dir := filepath.Join(c.StateDir(), "webhook")
	w := claimWebhook{certDir: dir}
	crt, errCrt := os.ReadFile(filepath.Join(dir, "tls.crt"))
	addr, errAddr := os.ReadFile(filepath.Join(dir, "addr"))
	if errCrt == nil && errAddr == nil {
		w.ca, w.addr = crt, strings.TrimSpace(string(addr))
		return w, nil
	}
	if !errors.Is(errCrt, fs.ErrNotExist) && errCrt != nil {
		return w, fmt.Errorf("claim webhook certificate: %w", errCrt)
	}
	crt, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return w, fmt.Errorf("claim webhook certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return w, fmt.Errorf("claim webhook port: %w", err)
	}
	w.addr, w.ca = ln.Addr().String(), crt
	_ = ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return w, fmt.Errorf("claim webhook: %w", err)
	}
	for name, data := range map[string][]byte{"tls.crt": crt, "tls.key": key, "addr": []byte(w.addr + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return w, fmt.Errorf("claim webhook: %w", err)
		}
	}
	return w, nil
}

// installClaimWebhook applies the chart's ValidatingWebhookConfiguration,
// rendered by the real Helm, pointed at the loopback controller instead of
// the in-cluster Service.
func installClaimWebhook(ctx context.Context, a *manifests.Applier, c *cluster.Cluster, root string) error {
	w, err := loadClaimWebhook(c)
	if err != nil {
		return err
	}
	helm := filepath.Join(root, "_output", "tools", "helm-"+HelmVersion)
	out, err := exec.CommandContext(ctx, helm, "template", "tierra", filepath.Join(root, "deployments/helm/tierra"),
		"--kube-version", "v1.37.1", "--show-only", "templates/webhook.yaml").Output()
	if err != nil {
		return fmt.Errorf("helm template the claim webhook: %w", err)
	}
	objs, err := manifests.Decode(out)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() != "ValidatingWebhookConfiguration" {
			continue
		}
		hooks, _, err := unstructured.NestedSlice(o.Object, "webhooks")
		if err != nil {
			return fmt.Errorf("claim webhook configuration: %w", err)
		}
		for i := range hooks {
			hooks[i].(map[string]any)["clientConfig"] = map[string]any{
				"url":      "https://" + w.addr + webhook.Path,
				"caBundle": base64.StdEncoding.EncodeToString(w.ca),
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
			return fmt.Errorf("claim webhook configuration: %w", err)
		}
		if err := a.Apply(ctx, o); err != nil {
			return fmt.Errorf("install the claim webhook: %w", err)
		}
		return nil
	}
	return errors.New("the chart renders no ValidatingWebhookConfiguration in templates/webhook.yaml")
}

// webhookArgs are the controller's flags that serve the claim webhook.
func webhookArgs(c *cluster.Cluster) []string {
	w, err := loadClaimWebhook(c)
	if err != nil {
		// Install already created it or failed on the same error.
		return nil
	}
	return []string{"--webhook-addr=" + w.addr, "--webhook-cert-dir=" + w.certDir}
}
