package dpop

import (
	"strings"
	"testing"
	"time"
)

func TestNonces(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	old := []byte("the old secret, at least 32 bytes long")
	n, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret, old}, Lifetime: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	oldOnly, err := NewNonces(NonceConfig{Secrets: [][]byte{old}, Lifetime: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	issued := n.Next()
	if len(issued) != nonceLen || strings.ContainsAny(issued, `"\ ,`) {
		t.Fatalf("nonce %q: not %d NQCHARs", issued, nonceLen)
	}
	fromOld := oldOnly.Next()
	for _, c := range []struct {
		name  string
		at    time.Duration
		nonce string
		valid bool
	}{
		{"same slot", 0, issued, true},
		{"next slot", time.Minute, issued, true},
		{"two slots later", 2 * time.Minute, issued, false},
		{"earlier slot (clock went back)", -time.Minute, issued, false},
		{"rotated-out secret still accepted", 0, fromOld, true},
		{"tampered MAC", 0, issued[:nonceLen-1] + flip(issued[nonceLen-1]), false},
		{"tampered slot", 0, flip(issued[0]) + issued[1:], false},
		{"too short", 0, issued[:nonceLen-1], false},
		{"empty", 0, "", false},
		{"not base64url", 0, strings.Repeat("*", nonceLen), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			now = t0.Add(c.at)
			defer func() { now = t0 }()
			if got := n.Valid(c.nonce); got != c.valid {
				t.Errorf("Valid(%q) = %v, want %v", c.nonce, got, c.valid)
			}
		})
	}
	// A verifier with only the new secret refuses the old secret's nonces.
	newOnly, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret}, Lifetime: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if newOnly.Valid(fromOld) {
		t.Error("a nonce of a secret not configured is accepted")
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestNewNoncesRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  NonceConfig
	}{
		{"no secret", NonceConfig{}},
		{"short secret", NonceConfig{Secrets: [][]byte{[]byte("short")}}},
		{"short second secret", NonceConfig{Secrets: [][]byte{testSecret, []byte("short")}}},
		{"short lifetime", NonceConfig{Secrets: [][]byte{testSecret}, Lifetime: time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewNonces(c.cfg); err == nil {
				t.Fatal("NewNonces accepted it")
			}
		})
	}
}

// TestRenewNonce: a successful response carries the next nonce only when
// the proof's nonce is from the previous slot (RFC 9449 section 8.2).
func TestRenewNonce(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	n, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret}, Lifetime: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Config{Nonces: n, Now: clock})
	issued := n.Next()
	proof := es256(t, with("nonce", issued))
	if got := v.RenewNonce(proof); got != "" {
		t.Fatalf("a nonce of the current slot renewed: %q", got)
	}
	now = t0.Add(time.Minute) // the nonce's last slot
	got := v.RenewNonce(proof)
	if got == "" || got == issued || !n.Valid(got) {
		t.Fatalf("renewal %q (issued %q)", got, issued)
	}
	if v.RenewNonce(es256(t, with("nonce", nil))) != "" || v.RenewNonce("not.a-proof") != "" {
		t.Fatal("renewal without a nonce")
	}
	if newVerifier(t, Config{Now: clock}).RenewNonce(proof) != "" {
		t.Fatal("renewal with nonces off")
	}
}
