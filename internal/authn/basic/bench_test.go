package basic

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerifyArgon2idDefault is one argon2id verification at
// DefaultParams: what an uncached request (and an unknown user) costs.
// docs/basic-auth.md quotes it.
func BenchmarkVerifyArgon2idDefault(b *testing.B) {
	h, err := ParseHash(testHash())
	if err != nil {
		b.Fatal(err)
	}
	pw := []byte("s3cret")
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(pw) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkVerifyBcrypt10 is one bcrypt verification at cost 10 (an
// imported hash).
func BenchmarkVerifyBcrypt10(b *testing.B) {
	h, err := ParseHash(testBcrypt())
	if err != nil {
		b.Fatal(err)
	}
	pw := []byte("legacy-pass")
	for b.Loop() {
		if !h.Verify(pw) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkAuthenticateCacheHit is a request whose pair was verified
// within cache_ttl: header parsing, the HMAC and a map lookup.
func BenchmarkAuthenticateCacheHit(b *testing.B) {
	a, _, _ := newAuth(b, writeUsers(b, b.TempDir(), "alice:"+testHash()+"\n"), time.Hour)
	r := basicReq("alice", "s3cret")
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyArgon2idParams is the cost of other parameter sets an
// operator may choose (gatehouse users hash --memory/--iterations/
// --parallelism), for the table in docs/basic-auth.md.
func BenchmarkVerifyArgon2idParams(b *testing.B) {
	for _, p := range []Params{
		{MemoryKiB: 19 * 1024, Iterations: 2, Lanes: 1},
		{MemoryKiB: 46 * 1024, Iterations: 1, Lanes: 1},
		{MemoryKiB: 64 * 1024, Iterations: 3, Lanes: 4},
	} {
		s, err := HashPassword([]byte("pw"), p)
		if err != nil {
			b.Fatal(err)
		}
		h, _ := ParseHash(s)
		b.Run(fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Lanes), func(b *testing.B) {
			for b.Loop() {
				h.Verify([]byte("pw"))
			}
		})
	}
}
