package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func jsonIndent(dst *bytes.Buffer, src []byte) error { return json.Indent(dst, src, "", "  ") }

// BenchmarkPut shows that recording a claim costs the same with 1 or 1,000
// other claims held: each claim is its own file; and what fsync costs.
func BenchmarkPut(b *testing.B) {
	for _, d := range []Durability{SurviveHostCrash, SurviveProcessCrash} {
		for _, held := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/held=%d", d, held), func(b *testing.B) { benchPut(b, d, held) })
		}
	}
}

func benchPut(b *testing.B, d Durability, held int) {
	s, _, err := Open(context.Background(), Options{Dir: b.TempDir(), BootID: testBoot, Durability: d})
	require.NoError(b, err)
	for i := range held {
		require.NoError(b, s.Put(makeClaim(fmt.Sprintf("held-%04d", i))))
	}
	c := makeClaim("bench")
	phases := []Phase{PhasePrepareStarted, PhasePrepared}
	i := 0
	for b.Loop() {
		c.Phase = phases[i%2]
		i++
		if err := s.Put(c); err != nil {
			b.Fatal(err)
		}
	}
}
