package stack

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/test/manifests"
)

// The serving certificate passes both checks it meets: Kueue's rotator
// verifies it for the Service's DNS name past a 90-day look-ahead (else it
// replaces it with one the apiserver cannot verify on 127.0.0.1), and the
// apiserver verifies it for 127.0.0.1. The CA key is PKCS#1, which the
// rotator parses.
func TestKueueTLSServesServiceNameAndLoopback(t *testing.T) {
	k, err := newKueueTLS()
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(k.caCert))
	block, _ := pem.Decode(k.cert)
	require.NotNil(t, block)
	leaf, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	lookahead := time.Now().Add(90 * 24 * time.Hour)
	for _, name := range []string{kueueWebhookService + "." + KueueNamespace + ".svc", "127.0.0.1"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: lookahead})
		assert.NoError(t, err, name)
	}
	caBlock, _ := pem.Decode(k.caCert)
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	require.NoError(t, err)
	_, err = ca.Verify(x509.VerifyOptions{DNSName: kueueCAName, Roots: pool, CurrentTime: lookahead})
	assert.NoError(t, err, "the rotator checks the CA for its own name")
	keyBlock, _ := pem.Decode(k.caKey)
	_, err = x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	assert.NoError(t, err)
	_, err = tls.X509KeyPair(k.cert, k.key)
	assert.NoError(t, err)
}

// Every webhook of Kueue's release manifests points at loopback with the
// path of its Service reference, under the configuration names Kueue's
// rotator updates; the pod-level ones skip kube-system and kueue-system.
func TestKueueWebhooksOnLoopback(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	mod, err := KueueModuleDir(ctx)
	if err != nil {
		t.Skipf("Kueue's module is not in the module cache (make kueue downloads it): %v", err)
	}
	k, err := newKueueTLS()
	require.NoError(t, err)
	cfgs, err := manifests.Read(filepath.Join(mod, "config", "components", "webhook", "manifests.yaml"))
	require.NoError(t, err)
	var names []string
	for _, c := range cfgs {
		require.NoError(t, loopbackWebhooks(c, k, "127.0.0.1:9443"))
		names = append(names, c.GetName())
		hooks, _, err := unstructured.NestedSlice(c.Object, "webhooks")
		require.NoError(t, err)
		require.NotEmpty(t, hooks)
		for _, h := range hooks {
			m := h.(map[string]any)
			url, _, _ := unstructured.NestedString(m, "clientConfig", "url")
			assert.True(t, strings.HasPrefix(url, "https://127.0.0.1:9443/"), "%v: %s", m["name"], url)
			_, hasService, _ := unstructured.NestedMap(m, "clientConfig", "service")
			assert.False(t, hasService, "%v", m["name"])
			_, scoped, _ := unstructured.NestedMap(m, "namespaceSelector")
			assert.Equal(t, kueuePodWebhooks[m["name"].(string)], scoped, "%v namespaceSelector", m["name"])
		}
	}
	assert.ElementsMatch(t, []string{"kueue-mutating-webhook-configuration", "kueue-validating-webhook-configuration"}, names)
}
