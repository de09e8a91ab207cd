package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

func TestErrorReason(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("prepare claim ns/c: %w", err) }
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "ns")
	tests := map[string]struct {
		err  error
		want string
	}{
		"none":                {err: nil, want: ""},
		"tier not allowed":    {err: wrap(fmt.Errorf("device gpu-0 is of tier training: %w", prepare.ErrTierNotAllowed)), want: metrics.ReasonTenancy},
		"cross tenant":        {err: wrap(tenancy.ErrCrossTenant), want: metrics.ReasonTenancy},
		"GPU busy":            {err: wrap(tenancy.ErrGPUBusy), want: metrics.ReasonTenancy},
		"invalid config":      {err: wrap(fmt.Errorf("%w: unknown field", prepare.ErrInvalidConfig)), want: metrics.ReasonConfig},
		"not allocated":       {err: wrap(prepare.ErrNotAllocated), want: metrics.ReasonConfig},
		"unknown device":      {err: wrap(prepare.ErrUnknownDevice), want: metrics.ReasonConfig},
		"foreign device":      {err: wrap(prepare.ErrForeignDevice), want: metrics.ReasonConfig},
		"MPS limits differ":   {err: wrap(markReason(sharing.ErrMPSLimitsDiffer, metrics.ReasonHardware)), want: metrics.ReasonConfig},
		"checkpoint write":    {err: wrap(markReason(errors.New("no space left on device"), metrics.ReasonCheckpoint)), want: metrics.ReasonCheckpoint},
		"checkpoint corrupt":  {err: wrap(checkpoint.ErrCorrupt), want: metrics.ReasonCheckpoint},
		"invalid record":      {err: wrap(checkpoint.ErrInvalidClaim), want: metrics.ReasonCheckpoint},
		"GPU lost":            {err: wrap(nvgpu.ErrGPULost), want: metrics.ReasonHardware},
		"placement overlap":   {err: wrap(fmt.Errorf("create MIG instance: %w", nvgpu.ErrPlacementOverlap)), want: metrics.ReasonHardware},
		"marked hardware":     {err: wrap(markReason(errors.New("NVML: unknown error"), metrics.ReasonHardware)), want: metrics.ReasonHardware},
		"marked API":          {err: wrap(markReason(&url.Error{Op: "Get", Err: errors.New("refused")}, metrics.ReasonAPI)), want: metrics.ReasonAPI},
		"API status":          {err: wrap(notFound), want: metrics.ReasonAPI},
		"tenancy beats marks": {err: wrap(markReason(tenancy.ErrCrossTenant, metrics.ReasonCheckpoint)), want: metrics.ReasonTenancy},
		"cancelled":           {err: wrap(context.Canceled), want: metrics.ReasonOther},
		"CDI spec":            {err: wrap(errors.New("write CDI spec: permission denied")), want: metrics.ReasonOther},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, ErrorReason(tc.err))
		})
	}
}

func TestMarkReasonKeepsTheMessageAndTheChain(t *testing.T) {
	err := markReason(fmt.Errorf("destroy: %w", nvgpu.ErrNotFound), metrics.ReasonHardware)
	assert.Equal(t, "destroy: not found", err.Error())
	assert.ErrorIs(t, err, nvgpu.ErrNotFound)
	assert.NoError(t, markReason(nil, metrics.ReasonHardware))
}
