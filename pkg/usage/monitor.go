package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// Event reasons the Monitor posts on a claim's pods.
const (
	ReasonIdle      = "GPUIdle"
	ReasonOversized = "GPUOversized"
)

// EventSink posts an Event on a pod of a claim (the plugin's event
// recorder); warning is the Event type: Warning or Normal.
type EventSink interface {
	PodEvent(ctx context.Context, claim Claim, pod Pod, warning bool, reason, message string)
}

// MonitorOptions configure NewMonitor. Processes, Pods, Claims and Tracker
// are required.
type MonitorOptions struct {
	Processes ProcessSource
	Pods      PodMapper
	Claims    ClaimLister
	Tracker   *Tracker
	// Events receives one Warning per claim that becomes idle and one
	// Normal per claim that becomes oversized; nil posts none.
	Events EventSink
	// Interval between readings in Run; 0 means one minute.
	Interval time.Duration
}

// Monitor feeds the Tracker from NVML, /proc and the prepared claims.
type Monitor struct {
	opts MonitorOptions
	last time.Time
}

// NewMonitor validates the options.
func NewMonitor(opts MonitorOptions) (*Monitor, error) {
	if opts.Processes == nil || opts.Pods == nil || opts.Claims == nil || opts.Tracker == nil {
		return nil, errors.New("usage monitor: Processes, Pods, Claims and Tracker are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	return &Monitor{opts: opts}, nil
}

// Poll takes one reading (SM samples since the previous one, or one
// interval back on the first) and posts the events of what changed.
func (m *Monitor) Poll(ctx context.Context) error {
	now := m.opts.Tracker.opts.Clock.Now()
	since := m.last
	if since.IsZero() {
		since = now.Add(-m.opts.Interval)
	}
	a, claims, err := Read(ctx, m.opts.Processes, m.opts.Pods, m.opts.Claims, since)
	if err != nil {
		return err
	}
	m.last = now
	logger := klog.FromContext(ctx)
	if a.MapErrors > 0 {
		logger.V(2).Info("Some GPU processes could not be mapped to pods", "count", a.MapErrors)
	}
	ch := m.opts.Tracker.Observe(claims, a)
	for _, r := range ch.BecameIdle {
		logger.Info("Claim is idle", "claim", klog.KRef(r.Claim.Namespace, r.Claim.Name), "idleFor", r.IdleFor)
		m.post(ctx, r, true, ReasonIdle, IdleMessage(r))
	}
	for _, r := range ch.BecameOversized {
		logger.Info("Claim could use a smaller device", "claim", klog.KRef(r.Claim.Namespace, r.Claim.Name),
			"suggestion", r.Suggestion.Text)
		m.post(ctx, r, false, ReasonOversized, OversizedMessage(r))
	}
	return nil
}

func (m *Monitor) post(ctx context.Context, r ClaimReport, warning bool, reason, msg string) {
	if m.opts.Events == nil {
		return
	}
	for _, p := range r.Claim.Pods {
		m.opts.Events.PodEvent(ctx, r.Claim, p, warning, reason, msg)
	}
}

// Run polls every Interval until ctx ends; a failed reading is logged and
// retried at the next tick.
func (m *Monitor) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		if err := m.Poll(ctx); err != nil {
			logger.Error(fmt.Errorf("usage monitor: %w", err), "Reading GPU use")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
