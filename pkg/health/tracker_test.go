package health_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

const gpu0, gpu1 = "GPU-0", "GPU-1"

var start = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func newTracker(policy *v1alpha1.HealthPolicy) (*health.Tracker, *testingclock.FakeClock) {
	clk := testingclock.NewFakeClock(start)
	return health.NewTracker(clk, policy), clk
}

func whole(gpu string) health.Device { return health.Device{GPU: gpu} }

func mig(gpu string, s, n int) health.Device {
	return health.Device{GPU: gpu, Placement: &inventory.MIGPlacement{Start: s, Size: n}}
}

func keys(taints []resourceapi.DeviceTaint) []string {
	var out []string
	for _, t := range taints {
		out = append(out, t.Key+"="+t.Value+":"+string(t.Effect))
	}
	return out
}

func TestClassificationDecidesTheTaint(t *testing.T) {
	tests := map[string]struct {
		policy *v1alpha1.HealthPolicy
		ev     health.Event
		want   []string
	}{
		"fatal XID":       {ev: health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79}, want: []string{"gpu.tierra.dev/xid=79:NoSchedule"}},
		"application XID": {ev: health.Event{GPU: gpu0, Kind: health.KindXID, XID: 13}},
		"unlisted XID":    {ev: health.Event{GPU: gpu0, Kind: health.KindXID, XID: 999}, want: []string{"gpu.tierra.dev/xid=999:NoSchedule"}},
		"policy ignores unlisted XIDs": {
			policy: &v1alpha1.HealthPolicy{OtherXIDs: v1alpha1.HealthIgnore},
			ev:     health.Event{GPU: gpu0, Kind: health.KindXID, XID: 999},
		},
		"double-bit ECC": {ev: health.Event{GPU: gpu0, Kind: health.KindDoubleBitECC}, want: []string{"gpu.tierra.dev/ecc=DoubleBit:NoSchedule"}},
		"lost GPU":       {ev: health.Event{GPU: gpu0, Kind: health.KindGPULost}, want: []string{"gpu.tierra.dev/gpu-lost=Lost:NoSchedule"}},
		"policy makes an XID NoExecute": {
			policy: &v1alpha1.HealthPolicy{XIDs: []v1alpha1.XIDAction{{Code: 79, Action: v1alpha1.HealthNoExecute}}},
			ev:     health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79}, want: []string{"gpu.tierra.dev/xid=79:NoExecute"},
		},
		"policy ignores ECC": {
			policy: &v1alpha1.HealthPolicy{DoubleBitECC: v1alpha1.HealthIgnore},
			ev:     health.Event{GPU: gpu0, Kind: health.KindDoubleBitECC},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr, _ := newTracker(tc.policy)
			action, changed := tr.Observe(tc.ev)
			assert.Equal(t, len(tc.want) > 0, changed)
			assert.Equal(t, len(tc.want) > 0, action != v1alpha1.HealthIgnore)
			assert.Equal(t, tc.want, keys(tr.Taints(whole(gpu0))))
			assert.Empty(t, tr.Taints(whole(gpu1)), "another GPU is not concerned")
			require.Len(t, tr.Records(gpu0), 1, "every event is recorded")
			assert.Equal(t, action, tr.Records(gpu0)[0].Action)
		})
	}
}

func TestGPUFaultTaintsEveryDeviceAndMIGFaultOnlyOverlapping(t *testing.T) {
	tr, clk := newTracker(nil)
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 94, Placement: &inventory.MIGPlacement{Start: 4, Size: 2}})
	assert.Equal(t, []string{"gpu.tierra.dev/xid=94:NoSchedule"}, keys(tr.Taints(mig(gpu0, 4, 1))))
	assert.Equal(t, []string{"gpu.tierra.dev/xid=94:NoSchedule"}, keys(tr.Taints(mig(gpu0, 0, 8))), "the 7g placement overlaps")
	assert.Equal(t, []string{"gpu.tierra.dev/xid=94:NoSchedule"}, keys(tr.Taints(mig(gpu0, 4, 4))))
	assert.Empty(t, tr.Taints(mig(gpu0, 0, 4)), "disjoint placement")
	assert.Empty(t, tr.Taints(mig(gpu0, 6, 2)), "disjoint placement")
	healthy, _ := tr.Health(mig(gpu0, 0, 4))
	assert.True(t, healthy)
	healthy, reason := tr.Health(mig(gpu0, 5, 1))
	assert.False(t, healthy)
	assert.Contains(t, reason, "xid=94")

	clk.Step(time.Second)
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 48})
	for _, d := range []health.Device{whole(gpu0), mig(gpu0, 0, 4), mig(gpu0, 6, 2)} {
		assert.Equal(t, []string{"gpu.tierra.dev/xid=48:NoSchedule"}, keys(tr.Taints(d)), "a GPU fault taints every device")
	}
	assert.Equal(t, []string{"gpu.tierra.dev/xid=48:NoSchedule"}, keys(tr.Taints(mig(gpu0, 4, 1))),
		"the value is the latest XID that concerns the device")
	taint := tr.Taints(mig(gpu0, 4, 1))[0]
	assert.Equal(t, metav1.NewTime(start), *taint.TimeAdded, "added when the key first concerned the device")
}

func TestTaintClearsAfterQuietPeriodOnceAnswering(t *testing.T) {
	quiet := 10 * time.Second
	tr, clk := newTracker(&v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: quiet}})
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindGPULost})
	assert.Equal(t, []string{gpu0}, tr.Faulty())
	_, ok := tr.NextExpiry()
	assert.False(t, ok, "a GPU that does not answer never clears")
	clk.Step(time.Hour)
	assert.Empty(t, tr.Expire())
	healthy, reason := tr.Health(whole(gpu0))
	assert.False(t, healthy)
	assert.Equal(t, "GPU does not answer NVML", reason)

	assert.True(t, tr.SetAnswering(gpu0, true), "back")
	assert.False(t, tr.SetAnswering(gpu0, true), "already back")
	at, ok := tr.NextExpiry()
	require.True(t, ok)
	assert.Equal(t, clk.Now().Add(quiet), at, "the quiet period starts when it answers again")
	clk.Step(quiet - time.Millisecond)
	assert.Empty(t, tr.Expire())
	assert.NotEmpty(t, tr.Taints(whole(gpu0)))
	clk.Step(time.Millisecond)
	assert.Equal(t, []string{gpu0}, tr.Expire())
	assert.Empty(t, tr.Taints(whole(gpu0)))
	healthy, _ = tr.Health(whole(gpu0))
	assert.True(t, healthy)
	assert.Empty(t, tr.Faulty())
}

func TestNewFatalEventRestartsQuietPeriod(t *testing.T) {
	quiet := 10 * time.Second
	tr, clk := newTracker(&v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: quiet}, FlapWindow: &metav1.Duration{}})
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	clk.Step(8 * time.Second)
	_, changed := tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	assert.False(t, changed, "the same taint again changes nothing published")
	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 13})
	clk.Step(8 * time.Second)
	assert.Empty(t, tr.Expire(), "16s after the first, 8s after the second fatal event")
	clk.Step(2 * time.Second)
	assert.Equal(t, []string{gpu0}, tr.Expire(), "an ignored XID does not restart it; no damping with a zero window")

	tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
	tr.SetAnswering(gpu0, false)
	clk.Step(time.Minute)
	assert.Empty(t, tr.Expire(), "not answering holds the taint")
	tr.SetAnswering(gpu0, true)
	clk.Step(quiet)
	assert.Equal(t, []string{gpu0}, tr.Expire())
}

func TestFlappingGPUStaysTaintedLonger(t *testing.T) {
	tr, clk := newTracker(&v1alpha1.HealthPolicy{QuietPeriod: &metav1.Duration{Duration: 10 * time.Second},
		MaxQuietPeriod: &metav1.Duration{Duration: 35 * time.Second}, FlapWindow: &metav1.Duration{Duration: 5 * time.Minute}})
	clearsAfter := func() time.Duration {
		t.Helper()
		tr.Observe(health.Event{GPU: gpu0, Kind: health.KindXID, XID: 79})
		at, ok := tr.NextExpiry()
		require.True(t, ok)
		d := at.Sub(clk.Now())
		clk.Step(d)
		require.Equal(t, []string{gpu0}, tr.Expire())
		return d
	}
	assert.Equal(t, 10*time.Second, clearsAfter())
	assert.Equal(t, 20*time.Second, clearsAfter(), "second fault within the window: doubled")
	assert.Equal(t, 35*time.Second, clearsAfter(), "capped")
	clk.Step(5 * time.Minute)
	assert.Equal(t, 10*time.Second, clearsAfter(), "faults out of the window no longer count")
}

func TestRecordsKeepTheLatest(t *testing.T) {
	tr, clk := newTracker(nil)
	for i := range 20 {
		clk.Step(time.Second)
		tr.Observe(health.Event{GPU: gpu1, Kind: health.KindXID, XID: uint64(100 + i)})
	}
	recs := tr.Records(gpu1)
	require.Len(t, recs, 16)
	assert.EqualValues(t, 104, recs[0].XID)
	assert.EqualValues(t, 119, recs[15].XID)
	assert.Equal(t, v1alpha1.HealthNoSchedule, recs[15].Action)
	assert.Nil(t, tr.Records(gpu0))
}
