package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePrice(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    MicroDollars
		wantErr bool
	}{
		"whole":        {in: "3", want: 3_000_000},
		"cents":        {in: "2.75", want: 2_750_000},
		"six decimals": {in: "0.000001", want: 1},
		"zero":         {in: "0", want: 0},
		"seven":        {in: "0.0000001", wantErr: true},
		"negative":     {in: "-1", wantErr: true},
		"empty":        {in: "", wantErr: true},
		"dot only":     {in: "1.", wantErr: true},
		"letters":      {in: "1.5USD", wantErr: true},
		"too large":    {in: "99999999999", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePrice(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "price")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMicroDollarsString(t *testing.T) {
	assert.Equal(t, "2.75", MicroDollars(2_750_000).String())
	assert.Equal(t, "3", MicroDollars(3_000_000).String())
	assert.Equal(t, "0.000001", MicroDollars(1).String())
}

func TestMicroDollarsDollars(t *testing.T) {
	assert.InDelta(t, 2.75, MicroDollars(2_750_000).Dollars(), 1e-12)
	assert.InDelta(t, 0.000001, MicroDollars(1).Dollars(), 1e-12)
	assert.Zero(t, MicroDollars(0).Dollars())
}
