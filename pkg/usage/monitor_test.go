package usage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

type fakeSource struct {
	procs  []nvgpu.ProcessUse
	err    error
	sinces []time.Time
}

func (s *fakeSource) ProcessUse(_ context.Context, since time.Time) ([]nvgpu.ProcessUse, error) {
	s.sinces = append(s.sinces, since)
	return s.procs, s.err
}

type claimList []usage.Claim

func (l claimList) PreparedClaims() []usage.Claim { return l }

type posted struct {
	pod, reason, msg string
	warning          bool
}

type sink struct{ events []posted }

func (s *sink) PodEvent(_ context.Context, _ usage.Claim, p usage.Pod, warning bool, reason, msg string) {
	s.events = append(s.events, posted{p.Name, reason, msg, warning})
}

func TestMonitorPostsEachChangeOnce(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	clk := clocktesting.NewFakePassiveClock(t0)
	tr, err := usage.NewTracker(usage.TrackerOptions{Clock: clk, Sizes: h200Sizes})
	require.NoError(t, err)
	c := claim("c", []usage.Pod{pod, {UID: "uid-b", Name: "b"}}, usage.WholeGPU(gpu0))
	c.CostPerHour = 3.5
	src := &fakeSource{procs: []nvgpu.ProcessUse{proc(1, gpu0, 3, 11)}}
	events := &sink{}
	m, err := usage.NewMonitor(usage.MonitorOptions{Processes: src, Pods: pidMap{1: "uid-a"}, Claims: claimList{c},
		Tracker: tr, Events: events, Interval: 10 * time.Minute})
	require.NoError(t, err)

	for at := time.Duration(0); at <= 3*time.Hour; at += 10 * time.Minute {
		clk.SetTime(t0.Add(at))
		require.NoError(t, m.Poll(ctx))
	}
	assert.Equal(t, t0.Add(-10*time.Minute), src.sinces[0], "the first reading looks one interval back")
	assert.Equal(t, t0, src.sinces[1], "then since the previous reading")
	idle := "GPU idle for 2h; the claim claim-c holds 1 H200"
	oversized := "claim claim-c holds 1 H200: peak 11 GiB / 3% SM: inference 1g.18gb would fit, $0.44/h instead of $3.50/h"
	assert.Equal(t, []posted{
		{"a", usage.ReasonIdle, idle, true}, {"b", usage.ReasonIdle, idle, true},
		{"a", usage.ReasonOversized, oversized, false}, {"b", usage.ReasonOversized, oversized, false},
	}, events.events)

	src.err = errors.New("NVML: Unknown Error")
	assert.ErrorContains(t, m.Poll(ctx), "Unknown Error")
	_, err = usage.NewMonitor(usage.MonitorOptions{Processes: src})
	assert.ErrorContains(t, err, "required")
}
