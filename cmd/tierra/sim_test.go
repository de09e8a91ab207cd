package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSeeds(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []int64
		wantErr bool
	}{
		"range":          {in: "42-45", want: []int64{42, 43, 44, 45}},
		"list and range": {in: "1, 5-6", want: []int64{1, 5, 6}},
		"single":         {in: "42", want: []int64{42}},
		"reversed range": {in: "9-3", wantErr: true},
		"not a number":   {in: "x", wantErr: true},
		"empty":          {in: "", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseSeeds(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSimHelpNamesEveryFlag(t *testing.T) {
	cmd := newSimCommand()
	usage := cmd.UsageString()
	for _, flag := range []string{"--data", "--pods", "--scorers", "--seeds", "--max-load", "--output", "--plot", "--parallel", "--max-pods"} {
		assert.Contains(t, usage, flag)
	}
	assert.Contains(t, cmd.Long, "Weng et al.")
}
