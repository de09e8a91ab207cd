package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Options configure Serve.
type Options struct {
	// Addr is the listen address, e.g. ":9443".
	Addr string
	// CertDir holds tls.crt and tls.key (a kubernetes.io/tls Secret
	// mounted as a volume). They are re-read when they change, so a rotated
	// certificate is served without a restart.
	CertDir string
	Classes ClassGetter
}

// Serve serves the webhook over TLS until ctx is done, then shuts down.
// ready, when not nil, is closed once it listens.
func Serve(ctx context.Context, opts Options, ready chan<- struct{}) error {
	logger := klog.LoggerWithName(klog.FromContext(ctx), "webhook")
	certs := &certLoader{dir: opts.CertDir}
	if _, err := certs.get(nil); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler{Classes: opts.Classes})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return klog.NewContext(context.Background(), logger) },
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("webhook: listen on %s: %w", opts.Addr, err)
	}
	logger.Info("Serving the claim validation webhook", "addr", ln.Addr().String(), "path", Path)
	if ready != nil {
		close(ready)
	}
	errCh := make(chan error, 1)
	go func() { errCh <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errCh:
		return fmt.Errorf("webhook: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook: shut down: %w", err)
	}
	return nil
}

// certLoader serves dir/tls.crt + dir/tls.key, reloading them when either
// file's modification time changes.
type certLoader struct {
	dir string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

func (c *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	crt, key := filepath.Join(c.dir, "tls.crt"), filepath.Join(c.dir, "tls.key")
	mod, err := newest(crt, key)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && mod.Equal(c.modTime) {
		return c.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	c.cert, c.modTime = &pair, mod
	return c.cert, nil
}

func newest(paths ...string) (time.Time, error) {
	var t time.Time
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return time.Time{}, err
		}
		if st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t, nil
}
