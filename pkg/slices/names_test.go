package slices

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMIGDeviceName(t *testing.T) {
	tests := map[string]struct {
		index, start int
		profile      string
		want         string
	}{
		"plain":           {index: 0, start: 4, profile: "3g.71gb", want: "gpu-0-3g-71gb-4"},
		"media extension": {index: 7, start: 6, profile: "1g.18gb+me", want: "gpu-7-1g-18gb-me-6"},
		"odd characters":  {index: 1, start: 0, profile: "1G.24GB_gfx", want: "gpu-1-1g-24gb-gfx-0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, migDeviceName(tc.index, tc.profile, tc.start))
		})
	}
}
