package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tierra-gpu/tierra/test/cluster"
)

// PrometheusVersion is the Prometheus `make prometheus`
// (hack/tools/prometheus.sh) unpacks from Debian's package.
const PrometheusVersion = "2.42.0"

// ScrapeInterval is how often the test Prometheus scrapes and evaluates
// rules: short, so tests see a change within seconds.
const ScrapeInterval = time.Second

// PrometheusTool returns the path of prometheus or promtool as
// hack/tools/prometheus.sh unpacks them (under $TIERRA_TOOLS, default
// _output/tools); a missing one says how to get it.
func PrometheusTool(name string) (string, error) {
	dir := os.Getenv("TIERRA_TOOLS")
	if dir == "" {
		root, err := cluster.RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "_output", "tools")
	}
	bin := filepath.Join(dir, "prometheus-"+PrometheusVersion, "usr", "bin", name)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s %s not found (run make prometheus): %w", name, PrometheusVersion, err)
	}
	return bin, nil
}

// Target is one scrape job: its name and the host:port addresses whose
// /metrics it scrapes.
type Target struct {
	Job   string
	Addrs []string
}

// PrometheusOptions configure StartPrometheusWith.
type PrometheusOptions struct {
	// Dir holds the config, the TSDB and the log (prometheus.log).
	Dir     string
	Targets []Target
	// RuleFiles are loaded and evaluated every ScrapeInterval.
	RuleFiles []string
}

// Prometheus is a prometheus server this process started on loopback.
type Prometheus struct {
	// URL is the server's base URL (http://127.0.0.1:<port>).
	URL  string
	api  promv1.API
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// StartPrometheus starts a Prometheus that scrapes the targets every
// ScrapeInterval, its state in dir, and returns once it is ready.
func StartPrometheus(ctx context.Context, dir string, targets ...Target) (*Prometheus, error) {
	return StartPrometheusWith(ctx, PrometheusOptions{Dir: dir, Targets: targets})
}

// StartPrometheusWith starts a Prometheus on a free loopback port with its
// own config and --storage.tsdb.path under opts.Dir, tied to this process
// (it dies with it), and waits until /-/ready answers.
func StartPrometheusWith(ctx context.Context, opts PrometheusOptions) (*Prometheus, error) {
	bin, err := PrometheusTool("prometheus")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(opts.Dir, "prometheus.yml")
	if err := writePrometheusConfig(cfg, opts); err != nil {
		return nil, err
	}
	// The free port can be taken between the probe and the bind: try again.
	var errs []error
	for range 3 {
		p, err := startPrometheus(ctx, bin, cfg, opts.Dir)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// writePrometheusConfig writes the scrape config: one job per target and
// the rule files. JSON is YAML.
func writePrometheusConfig(path string, opts PrometheusOptions) error {
	interval := model.Duration(ScrapeInterval).String()
	var jobs []any
	for _, t := range opts.Targets {
		jobs = append(jobs, map[string]any{
			"job_name":       t.Job,
			"scrape_timeout": interval,
			"static_configs": []any{map[string]any{"targets": t.Addrs}},
		})
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": interval, "evaluation_interval": interval},
		"scrape_configs": jobs,
		"rule_files":     opts.RuleFiles,
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func startPrometheus(ctx context.Context, bin, cfg, dir string) (*Prometheus, error) {
	port, err := FreeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := &Prometheus{URL: "http://" + addr, done: make(chan struct{}), log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, prometheusArgs(cfg, dir, addr)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := cluster.StartTiedToParent(p.cmd); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	client, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		return nil, errors.Join(err, p.Stop())
	}
	p.api = promv1.NewAPI(client)
	if err := p.waitReady(ctx); err != nil {
		return nil, errors.Join(err, p.Stop())
	}
	return p, nil
}

// FreeLoopbackPort returns a TCP port free on 127.0.0.1 now; something
// else can take it before the caller binds it.
func FreeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /-/ready until it answers 200, or fails with the log's
// tail once prometheus exits.
func (p *Prometheus) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, errors.New("prometheus exited")
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("prometheus at %s never got ready: %w; its log:\n%s", p.URL, err, p.LogTail())
	}
	return nil
}

// Query evaluates an instant PromQL query now; a scalar answer comes back
// as a vector of one sample without labels.
func (p *Prometheus) Query(ctx context.Context, promql string) (model.Vector, error) {
	v, _, err := p.api.Query(ctx, promql, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	switch v := v.(type) {
	case model.Vector:
		return v, nil
	case *model.Scalar:
		return model.Vector{{Value: v.Value, Timestamp: v.Timestamp}}, nil
	default:
		return nil, fmt.Errorf("query %q: a %s, not a vector", promql, v.Type())
	}
}

// WaitFor evaluates promql every ScrapeInterval until cond accepts the
// answer, and returns it. On timeout the error holds the last answer and
// every target's health and last scrape error.
func (p *Prometheus) WaitFor(ctx context.Context, promql string, timeout time.Duration, cond func(model.Vector) bool) (model.Vector, error) {
	var last model.Vector
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, ScrapeInterval, timeout, true, func(ctx context.Context) (bool, error) {
		last, lastErr = p.Query(ctx, promql)
		return lastErr == nil && cond(last), nil
	})
	if err != nil {
		return last, fmt.Errorf("%q: no answer passed within %s (last: %v, error: %v); targets: %s", promql, timeout, last, lastErr, p.TargetHealth(ctx))
	}
	return last, nil
}

// TargetHealth describes every scrape target: job, URL, health and last
// error; for failure messages.
func (p *Prometheus) TargetHealth(ctx context.Context) string {
	res, err := p.api.Targets(ctx)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, t := range res.Active {
		s := fmt.Sprintf("%s %s %s", t.ScrapePool, t.ScrapeURL, t.Health)
		if t.LastError != "" {
			s += ": " + t.LastError
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// LogTail is the end of prometheus's log.
func (p *Prometheus) LogTail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// Stop ends the prometheus this handle started (SIGTERM, SIGKILL after 10
// s) and waits until it is gone. Safe to repeat.
func (p *Prometheus) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop prometheus: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill prometheus: %w", err)
	}
	<-p.done
	return nil
}
