package dpop

import (
	"context"
	"strconv"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify measures what DPoP adds to a request: a full proof check
// and the replay cache, per algorithm. Each iteration verifies a distinct
// proof (proofs are signed before the timer starts), as a real client's
// jtis are distinct; the cache is large enough to hold them all.
func BenchmarkVerify(b *testing.B) {
	keys(b)
	for _, bc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
	}{
		{"ES256", jose.ES256, ecKey},
		{"EdDSA", jose.EdDSA, edKey},
		{"PS256", jose.PS256, rsaKey},
	} {
		b.Run(bc.name, func(b *testing.B) {
			distinct := min(b.N, 512)
			proofs := make([]string, distinct)
			for i := range proofs {
				proofs[i] = sign(b, proofSpec{alg: bc.alg, key: bc.key, claims: with("jti", "jti-"+strconv.Itoa(i))})
			}
			u := mustURL(b, testURL)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%distinct == 0 {
					// A fresh cache per round of proofs: the same proof
					// again would be a replay.
					b.StopTimer()
					v := newVerifier(b, Config{Replay: NewMemoryReplayCache(2*distinct, fixedClock)})
					benchVerifier = v
					b.StartTimer()
				}
				if _, err := benchVerifier.Verify(ctx, proofs[i%distinct], testMethod, u, testToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("refused/alg_none", func(b *testing.B) {
		v := newVerifier(b, Config{})
		proof := rawProof(`{"typ":"dpop+jwt","alg":"none","jwk":`+jwkJSON(b, &ecKey.PublicKey)+`}`, `{"jti":"x"}`, nil)
		u := mustURL(b, testURL)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := v.Verify(context.Background(), proof, testMethod, u, testToken); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

var benchVerifier *Verifier

// BenchmarkReplayCache measures the in-memory cache alone.
func BenchmarkReplayCache(b *testing.B) {
	c := NewMemoryReplayCache(1<<16, fixedClock)
	ks := make([]ReplayKey, 1<<15)
	for i := range ks {
		ks[i] = replayKey("jkt", strconv.Itoa(i))
	}
	until := t0.Add(DefaultMaxAge)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = c.SeenBefore(ctx, ks[i%len(ks)], until)
	}
}
