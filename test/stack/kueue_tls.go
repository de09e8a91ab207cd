package stack

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Names Kueue's internal certificate management derives from its
// Configuration (pkg/util/cert): the rotator keeps the serving certificate
// in kueueWebhookSecret and checks it for the Service's DNS name, and the
// CA for kueueCAName.
const (
	kueueWebhookService = "kueue-webhook-service"
	kueueWebhookSecret  = "kueue-webhook-server-cert"
	kueueCAName         = "kueue-ca"
)

// kueueTLS is the webhook's CA and serving certificate, PEM-encoded. The
// serving certificate names both what Kueue's rotator verifies (the
// Service's DNS name) and what the apiserver dials (127.0.0.1), so the
// rotator keeps it instead of replacing it with one for the Service only.
type kueueTLS struct {
	caCert, caKey, cert, key []byte
}

// newKueueTLS generates an RSA CA and serving certificate (the rotator
// parses the CA key as PKCS#1) valid for a year, past the rotator's 90-day
// look-ahead.
func newKueueTLS() (kueueTLS, error) {
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return kueueTLS{}, fmt.Errorf("kueue webhook CA key: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: kueueCAName, Organization: []string{"tierra-test"}},
		DNSNames:              []string{kueueCAName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return kueueTLS{}, fmt.Errorf("kueue webhook CA: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return kueueTLS{}, fmt.Errorf("kueue webhook key: %w", err)
	}
	dns := kueueWebhookService + "." + KueueNamespace + ".svc"
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: dns},
		DNSNames:     []string{dns},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parsedCA, err := x509.ParseCertificate(caDER)
	if err != nil {
		return kueueTLS{}, fmt.Errorf("kueue webhook CA: %w", err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, parsedCA, &key.PublicKey, caKey)
	if err != nil {
		return kueueTLS{}, fmt.Errorf("kueue webhook certificate: %w", err)
	}
	return kueueTLS{
		caCert: pemBlock("CERTIFICATE", caDER),
		caKey:  pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(caKey)),
		cert:   pemBlock("CERTIFICATE", leafDER),
		key:    pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)),
	}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeCertDir writes the serving pair where Kueue's webhook server reads
// it (webhook.certDir), as the Secret's volume would be in a pod.
func (k kueueTLS) writeCertDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kueue cert dir: %w", err)
	}
	for name, data := range map[string][]byte{"tls.crt": k.cert, "tls.key": k.key, "ca.crt": k.caCert} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("kueue cert dir: %w", err)
		}
	}
	return nil
}

// secret is the Secret Kueue's rotator reads and keeps: the CA with its key
// and the serving pair.
func (k kueueTLS) secret() *unstructured.Unstructured {
	b64 := base64.StdEncoding.EncodeToString
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": kueueWebhookSecret, "namespace": KueueNamespace},
		"data": map[string]any{
			"ca.crt": b64(k.caCert), "ca.key": b64(k.caKey), "tls.crt": b64(k.cert), "tls.key": b64(k.key),
		},
	}}
}

// clientConfig points a webhook (or a CRD's conversion webhook) at Kueue's
// webhook server on loopback instead of its in-cluster Service.
func (k kueueTLS) clientConfig(addr, path string) map[string]any {
	return map[string]any{
		"url":      "https://" + addr + path,
		"caBundle": base64.StdEncoding.EncodeToString(k.caCert),
	}
}
