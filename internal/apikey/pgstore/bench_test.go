package pgstore

import (
	"context"
	"testing"
)

// BenchmarkLookupKey measures the hot-path lookup against the real server:
// one round trip over a cached prepared statement (run with -benchmem).
func BenchmarkLookupKey(b *testing.B) {
	s, _ := openStore(b, Options{})
	c := newConsumer(b, s)
	hashes := make([][]byte, 64)
	for i := range hashes {
		hashes[i] = newKey(b, s, c.ID).Hash
	}
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := s.LookupKey(ctx, hashes[i%len(hashes)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, _, err := s.LookupKey(ctx, hashes[i%len(hashes)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
