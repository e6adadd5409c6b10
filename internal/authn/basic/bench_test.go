package basic

import (
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
