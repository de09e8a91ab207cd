package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// readyTimeout bounds the wait for each component.
const readyTimeout = 90 * time.Second

// waitHealthy polls url until it answers 200, p exits, or the timeout.
func waitHealthy(ctx context.Context, p *process, url, token, logFile string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{
		Timeout: 2 * time.Second,
		// Health polling only: the scheduler and controller manager serve
		// self-signed certificates nothing else needs to trust.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}
	var last string
	for {
		if p.exited() {
			return fmt.Errorf("%s exited during startup; log %s ends:\n%s", p.Name, logFile, tail(logFile, 15))
		}
		last = probe(ctx, client, url, token)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s (%s); log %s ends:\n%s: %w",
				p.Name, url, last, logFile, tail(logFile, 15), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probe returns "" when url answers 200, else what it answered.
func probe(ctx context.Context, client *http.Client, url, token string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
}

// waitDefaultServiceAccount waits for the controller manager to create the
// "default" ServiceAccount (~6 s after it starts); pods are refused until then.
func waitDefaultServiceAccount(ctx context.Context, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			return fmt.Errorf("get default ServiceAccount: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("default ServiceAccount never appeared: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
