package seal

import (
	"fmt"
	"testing"
)

// BenchmarkSealOpen: sealing and opening one message, as a worker's
// Results or an executor's Run of the given size.
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			ex, wk := pair(b, [][]byte{key(1)}, [][]byte{key(1)})
			plain := make([]byte, size)
			const subj = "aplex.default.w.web-3-4711-9f2c1a"
			var buf []byte
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = ex.Seal(buf[:0], subj, wk.Epoch(), plain)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := wk.Open(subj, buf, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
