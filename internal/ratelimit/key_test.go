package ratelimit_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func TestKeySpec(t *testing.T) {
	alice := &identity.Identity{Subject: "alice", Issuer: "https://idp", Method: identity.MethodJWT, ClientID: "web",
		CredentialID: "jti-1", Claims: map[string]any{"tenant": "acme", "plan": "gold", "level": float64(3), "groups": []any{"a"}}}
	bob := &identity.Identity{Subject: "alice", Issuer: "https://other", Method: identity.MethodJWT, ClientID: "web"}
	for _, tc := range []struct {
		spec     string
		id       *identity.Identity
		want     string
		complete bool
	}{
		{"subject", alice, "https://idp\x00alice", true},
		{"consumer", alice, "https://idp\x00alice", true},
		{"subject", bob, "https://other\x00alice", true}, // same sub, another issuer: another caller
		{"client_id", alice, "web", true},
		{"credential", alice, "jti-1", true},
		{"claim:tenant", alice, "acme", true},
		{"claim:level", alice, "3", true},
		{"claim:groups", alice, "\x00", false}, // a list is not a key
		{"claim:tenant", bob, "\x00", false},
		{"ip", alice, "203.0.113.9", true},
		{"route", alice, "orders", true},
		{"client_id+ip", alice, "3:web11:203.0.113.9", true},
		{"claim:tenant+route", alice, "4:acme6:orders", true},
		{"subject", identity.Anonymous, "\x00", false},
		{"subject+ip", identity.Anonymous, "1:\x0011:203.0.113.9", false},
		{"client_id", nil, "\x00", false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			k, err := ratelimit.ParseKeySpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, complete := k.Key(tc.id, "orders", "203.0.113.9")
			if got != tc.want || complete != tc.complete {
				t.Fatalf("Key = %q, %v; want %q, %v", got, complete, tc.want, tc.complete)
			}
		})
	}
}

func TestParseKeySpecRefuses(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"", "empty"},
		{"user", "unknown part"},
		{"claim:", "claim name"},
		{"claim:a b", "claim name"},
		{"ip+ip", "twice"},
		{"subject+consumer", "twice"},
		{"ip+route+subject+client_id+credential", "at most 4"},
		{strings.Repeat("x", 300), "bytes"},
		{"ip+", "unknown part"},
	} {
		if _, err := ratelimit.ParseKeySpec(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeySpec(%q) = %v, want an error with %q", tc.spec, err, tc.want)
		}
	}
}

func FuzzParseKeySpec(f *testing.F) {
	for _, s := range []string{"subject", "client_id+ip", "claim:tenant+route", "claim:a.b-c_d", "ip+", "+", "claim:\x00"} {
		f.Add(s, "sub", "203.0.113.9")
	}
	f.Fuzz(func(t *testing.T, spec, sub, ip string) {
		k, err := ratelimit.ParseKeySpec(spec)
		if err != nil {
			return
		}
		if len(spec) > 256 {
			t.Fatalf("a spec of %d bytes parsed", len(spec))
		}
		again, err := ratelimit.ParseKeySpec(k.String())
		if err != nil || again.String() != k.String() {
			t.Fatalf("%q → %q does not parse back: %v", spec, k.String(), err)
		}
		id := &identity.Identity{Subject: sub, Method: identity.MethodJWT, Claims: map[string]any{"tenant": sub}}
		k1, c1 := k.Key(id, "r", ip)
		k2, c2 := k.Key(id, "r", ip)
		if k1 != k2 || c1 != c2 || k1 == "" {
			t.Fatalf("Key not deterministic or empty: %q %q", k1, k2)
		}
	})
}

func BenchmarkKey(b *testing.B) {
	id := &identity.Identity{Subject: "alice", Issuer: "https://idp", Method: identity.MethodJWT, ClientID: "web"}
	for _, spec := range []string{"client_id", "subject", "client_id+ip"} {
		k, err := ratelimit.ParseKeySpec(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.Key(id, "orders", "203.0.113.9")
			}
		})
	}
}
