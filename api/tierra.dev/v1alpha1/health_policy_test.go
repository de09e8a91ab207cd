package v1alpha1

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDefaultXIDTable(t *testing.T) {
	var nilPolicy *HealthPolicy
	for _, code := range []uint64{13, 31, 43, 45, 68, 109} {
		assert.Equal(t, HealthIgnore, nilPolicy.XIDAction(code), "application XID %d is recorded only", code)
	}
	for _, code := range []uint64{48, 63, 64, 74, 79, 92, 94, 95, 119, 120} {
		assert.Equal(t, HealthNoSchedule, nilPolicy.XIDAction(code), "fatal XID %d", code)
	}
	assert.Equal(t, HealthNoSchedule, nilPolicy.XIDAction(1000), "an unlisted XID is taken for a hardware fault")
	assert.Equal(t, HealthNoSchedule, nilPolicy.XIDAction(1<<40), "a code out of int32 range")
	assert.Equal(t, HealthIgnore, (&HealthPolicy{OtherXIDs: HealthIgnore}).XIDAction(1000), "otherXIDs: Ignore restores record-only")
	assert.Equal(t, HealthNoSchedule, (&HealthPolicy{OtherXIDs: HealthIgnore}).XIDAction(79), "otherXIDs does not touch the table")
	assert.Equal(t, HealthNoSchedule, nilPolicy.DoubleBitECCAction())
	assert.Equal(t, HealthNoSchedule, nilPolicy.GPULostAction())
	quiet, maxQuiet, window := nilPolicy.Timing()
	assert.Equal(t, []time.Duration{5 * time.Minute, time.Hour, time.Hour}, []time.Duration{quiet, maxQuiet, window})
	DefaultXIDActions()[79] = HealthIgnore
	assert.Equal(t, HealthNoSchedule, nilPolicy.XIDAction(79), "DefaultXIDActions returns a copy")
}

func TestHealthPolicyOverrides(t *testing.T) {
	h := &HealthPolicy{
		XIDs:      []XIDAction{{Code: 79, Action: HealthNoExecute}, {Code: 13, Action: HealthNoSchedule}, {Code: 999, Action: HealthNoSchedule}},
		OtherXIDs: HealthNoSchedule, DoubleBitECC: HealthIgnore, GPULost: HealthNoExecute,
		QuietPeriod: &metav1.Duration{Duration: 2 * time.Second}, MaxQuietPeriod: &metav1.Duration{Duration: time.Minute},
		FlapWindow: &metav1.Duration{Duration: 0},
	}
	assert.Equal(t, HealthNoExecute, h.XIDAction(79))
	assert.Equal(t, HealthNoSchedule, h.XIDAction(13))
	assert.Equal(t, HealthNoSchedule, h.XIDAction(999))
	assert.Equal(t, HealthNoSchedule, h.XIDAction(94), "unlisted codes keep the default table")
	assert.Equal(t, HealthNoSchedule, h.XIDAction(500), "otherXIDs")
	assert.Equal(t, HealthIgnore, h.DoubleBitECCAction())
	assert.Equal(t, HealthNoExecute, h.GPULostAction())
	quiet, maxQuiet, window := h.Timing()
	assert.Equal(t, []time.Duration{2 * time.Second, time.Minute, 0}, []time.Duration{quiet, maxQuiet, window})
	assert.Empty(t, h.Validate(field.NewPath("spec", "health")))
}

func TestHealthPolicyValidate(t *testing.T) {
	d := func(v time.Duration) *metav1.Duration { return &metav1.Duration{Duration: v} }
	tests := map[string]struct {
		health   *HealthPolicy
		wantErrs []string
	}{
		"unset": {},
		"empty": {health: &HealthPolicy{}},
		"bad code, duplicate, bad and missing action": {
			health: &HealthPolicy{XIDs: []XIDAction{{Code: 0, Action: "Taint"}, {Code: 79, Action: HealthNoSchedule}, {Code: 79}}},
			wantErrs: []string{
				`spec.health.xids[0].code: Invalid value: 0: must be between 1 and 65535`,
				`spec.health.xids[0].action: Unsupported value: "Taint": supported values: "Ignore", "NoSchedule", "NoExecute"`,
				`spec.health.xids[2].code: Duplicate value: 79`,
				`spec.health.xids[2].action: Required value: one of "Ignore", "NoSchedule", "NoExecute"`,
			},
		},
		"bad actions": {
			health: &HealthPolicy{OtherXIDs: "Evict", DoubleBitECC: "noschedule", GPULost: "Drain"},
			wantErrs: []string{
				`spec.health.otherXIDs: Unsupported value: "Evict": supported values: "Ignore", "NoSchedule", "NoExecute"`,
				`spec.health.doubleBitECC: Unsupported value: "noschedule": supported values: "Ignore", "NoSchedule", "NoExecute"`,
				`spec.health.gpuLost: Unsupported value: "Drain": supported values: "Ignore", "NoSchedule", "NoExecute"`,
			},
		},
		"quiet period too short": {
			health:   &HealthPolicy{QuietPeriod: d(500 * time.Millisecond)},
			wantErrs: []string{`spec.health.quietPeriod: Invalid value: "500ms": must be at least 1s`},
		},
		"quiet period over the default cap": {
			health:   &HealthPolicy{QuietPeriod: d(2 * time.Hour)},
			wantErrs: []string{`spec.health.quietPeriod: Invalid value: "2h0m0s": must not exceed maxQuietPeriod (1h0m0s)`},
		},
		"cap under the default quiet period, negative window": {
			health: &HealthPolicy{MaxQuietPeriod: d(time.Minute), FlapWindow: d(-time.Second)},
			wantErrs: []string{
				`spec.health.quietPeriod: Invalid value: "5m0s": must not exceed maxQuietPeriod (1m0s)`,
				`spec.health.flapWindow: Invalid value: "-1s": must not be negative`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := DefaultTierPolicy()
			p.Spec.Health = tc.health
			assert.Equal(t, tc.wantErrs, errStrings(p.Validate()))
		})
	}
}
