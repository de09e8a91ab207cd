package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func jsonIndent(dst *bytes.Buffer, src []byte) error { return json.Indent(dst, src, "", "  ") }

// BenchmarkPut shows that recording a claim costs the same with 1 or 1,000
// other claims held: each claim is its own file.
func BenchmarkPut(b *testing.B) {
	for _, held := range []int{1, 1000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			s, _ := openStore(b, b.TempDir(), testBoot)
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
		})
	}
}
