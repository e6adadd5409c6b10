package introspect

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

func testIntrospector(t testing.TB, now time.Time) *Introspector {
	t.Helper()
	pc := config.IdentityProvider{
		Name: "p", Issuer: "https://as.example", Audiences: []string{"api"},
		MaxTokenLifetime: config.Duration(24 * time.Hour), MaxTokenSize: 16384,
		Introspection: &config.ProviderIntrospection{Endpoint: "https://as.example/introspect", ClientID: "gw", ClientSecret: "s",
			ClientAuth: "client_secret_basic", Timeout: config.Duration(time.Second), CacheTTL: config.Duration(time.Minute),
			NegativeCacheTTL: config.Duration(10 * time.Second), CacheSize: 100, MaxConcurrent: 1, RateLimit: 1},
	}
	in, err := NewIntrospector(pc, Deps{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestParseResponse: only a JSON object with a boolean active is an
// answer; anything else is a failure to ask, never an acceptance.
func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		active bool
		err    bool
	}{
		{"active", `{"active":true,"sub":"u"}`, true, false},
		{"inactive", `{"active":false}`, false, false},
		{"inactive with claims", `{"active":false,"sub":"u"}`, false, false},
		{"active as a string", `{"active":"true"}`, false, true},
		{"active missing", `{"sub":"u"}`, false, true},
		{"null", `null`, false, true},
		{"array", `[{"active":true}]`, false, true},
		{"trailing data", `{"active":true} {"active":false}`, false, true},
		{"not JSON", `active=true`, false, true},
		{"empty", ``, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := parseResponse([]byte(tc.body))
			if (err != nil) != tc.err || (claims != nil) != tc.active {
				t.Fatalf("claims %v, err %v", claims, err)
			}
		})
	}
}

// TestAnswerChecks: what an active answer must also say.
func TestAnswerChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	in := testIntrospector(t, now)
	exp := strconv.FormatInt(now.Add(time.Minute).Unix(), 10)
	iat := strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)
	base := `"active":true,"sub":"u","aud":"api","iat":` + iat + `,"exp":` + exp
	for _, tc := range []struct {
		name   string
		body   string
		reason authn.Reason
	}{
		{"minimal", `{` + base + `}`, ""},
		{"with issuer and type", `{` + base + `,"iss":"https://as.example","token_type":"Bearer","token_use":"access_token"}`, ""},
		{"urn type", `{` + base + `,"token_type":"urn:ietf:params:oauth:token-type:access_token"}`, ""},
		{"other issuer", `{` + base + `,"iss":"https://evil.example"}`, authn.ReasonUnknownIssuer},
		{"issuer not a string", `{` + base + `,"iss":["https://as.example"]}`, authn.ReasonUnknownIssuer},
		{"refresh token", `{` + base + `,"token_type":"refresh_token"}`, authn.ReasonTyp},
		{"Hydra refresh token", `{` + base + `,"token_use":"refresh_token"}`, authn.ReasonTyp},
		{"DPoP-bound token as Bearer", `{` + base + `,"token_type":"DPoP"}`, authn.ReasonTyp},
		{"other audience", `{"active":true,"sub":"u","aud":["other"],"iat":` + iat + `,"exp":` + exp + `}`, authn.ReasonAudience},
		{"no audience", `{"active":true,"sub":"u","iat":` + iat + `,"exp":` + exp + `}`, authn.ReasonMissingClaim},
		{"no exp", `{"active":true,"sub":"u","aud":"api","iat":` + iat + `}`, authn.ReasonMissingClaim},
		{"expired", `{"active":true,"sub":"u","aud":"api","iat":` + iat + `,"exp":` + iat + `}`, authn.ReasonExpired},
		{"no subject", `{"active":true,"aud":"api","iat":` + iat + `,"exp":` + exp + `}`, authn.ReasonMissingClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := parseResponse([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			id, err := in.identity(claims, now)
			if tc.reason == "" {
				if err != nil || id.Method != identity.MethodIntrospection || id.Subject != "u" {
					t.Fatalf("%+v %v", id, err)
				}
				return
			}
			var f *authn.Failure
			if !errors.As(err, &f) || f.Reason != tc.reason || f.Method != identity.MethodIntrospection {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

// TestKeyBinding: cnf is kept as the credential's key binding.
func TestKeyBinding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	in := testIntrospector(t, now)
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	claims, _ := parseResponse([]byte(`{"active":true,"sub":"u","aud":"api","iat":1799999990,"exp":1800000060,"cnf":{"jkt":"` + jkt + `"}}`))
	id, err := in.identity(claims, now)
	if err != nil || id.KeyBinding != (identity.KeyBinding{Kind: "jkt", Value: jkt}) {
		t.Fatalf("%+v %v", id, err)
	}
}

// TestCacheBounds: entries never outlive exp or the TTL, and a full
// cache evicts the entry whose usefulness ends soonest.
func TestCacheBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := func(s string) *[32]byte { k := sha256.Sum256([]byte(s)); return &k }
	c := newCache(3, 0)
	c.putIdentity(key("short"), &identity.Identity{Subject: "short", ExpiresAt: now.Add(5 * time.Second)}, now, time.Minute)
	c.putIdentity(key("long"), &identity.Identity{Subject: "long", ExpiresAt: now.Add(time.Hour)}, now, time.Minute)
	c.putFailure(key("bad"), &authn.Failure{Reason: ReasonInactive}, now, 10*time.Second)
	c.putIdentity(key("expired"), &identity.Identity{Subject: "expired", ExpiresAt: now}, now, time.Minute)
	if c.len() != 3 || c.get(key("expired"), now) != nil {
		t.Fatal("an entry already past exp was stored")
	}
	if c.get(key("short"), now.Add(4*time.Second)) == nil || c.get(key("short"), now.Add(5*time.Second)) != nil {
		t.Fatal("the entry does not end at exp")
	}
	if c.get(key("long"), now.Add(59*time.Second)) == nil || c.get(key("long"), now.Add(time.Minute)) != nil {
		t.Fatal("the entry does not end at the TTL")
	}
	// Full: a new entry evicts "short" (ends soonest), not "long".
	c.putIdentity(key("new"), &identity.Identity{Subject: "new", ExpiresAt: now.Add(time.Hour)}, now, time.Minute)
	if c.len() != 3 || c.get(key("short"), now) != nil || c.get(key("long"), now) == nil || c.get(key("bad"), now) == nil {
		t.Fatal("wrong eviction")
	}
	// Later, expired entries go first.
	later := now.Add(30 * time.Second)
	c.putIdentity(key("newer"), &identity.Identity{Subject: "newer", ExpiresAt: later.Add(time.Hour)}, later, time.Minute)
	if c.get(key("bad"), later) != nil || c.get(key("long"), later) == nil || c.get(key("new"), later) == nil {
		t.Fatal("the expired negative entry was not evicted first")
	}
	// Replacing a key keeps one entry.
	c.putIdentity(key("newer"), &identity.Identity{Subject: "newer2", ExpiresAt: later.Add(time.Hour)}, later, time.Minute)
	if c.len() != 3 || c.get(key("newer"), later).id.Subject != "newer2" {
		t.Fatal("replace")
	}
}

// TestStaleBound: stale_if_error never reaches past exp.
func TestStaleBound(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sha256.Sum256([]byte("t"))
	c := newCache(10, time.Hour)
	c.putIdentity(&k, &identity.Identity{Subject: "u", ExpiresAt: now.Add(2 * time.Minute)}, now, time.Minute)
	if c.staleIdentity(&k, now.Add(119*time.Second)) == nil {
		t.Fatal("not served within stale bound")
	}
	if c.staleIdentity(&k, now.Add(2*time.Minute)) != nil {
		t.Fatal("served past exp")
	}
}

// FuzzParseResponse: any answer is either refused (error), inactive, or
// an object whose active is true; never a panic. The budget is the
// caller's 64 KiB read limit.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"active":true}`, `{"active":false}`, `{"active":"true"}`, `null`, `[]`, `{"active":true,"exp":1e400}`, `{"a":{"b":[1,2,{"c":null}]}}`} {
		f.Add([]byte(s))
	}
	now := time.Unix(1_800_000_000, 0)
	in := testIntrospector(f, now)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxResponseBytes {
			return
		}
		claims, err := parseResponse(body)
		if err != nil {
			if claims != nil {
				t.Fatal("claims with an error")
			}
			return
		}
		if claims == nil {
			return
		}
		if active, _ := claims["active"].(bool); !active {
			t.Fatal("claims of an inactive answer")
		}
		id, err := in.identity(claims, now)
		if (id == nil) == (err == nil) {
			t.Fatal("identity and error disagree")
		}
	})
}

// BenchmarkCachedIntrospection: a request whose token's answer is cached
// (the hot path: hash, map lookup).
func BenchmarkCachedIntrospection(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	in := testIntrospector(b, now)
	token := "ory_at_Yn8Lh0QpFzqk3JQ1aXcZlR0d3Z1X2R6bVhJx9fQ2kLm.8aQ3bZc"
	k := sha256.Sum256([]byte(token))
	in.cache.putIdentity(&k, &identity.Identity{Subject: "u", Method: identity.MethodIntrospection, ExpiresAt: now.Add(time.Hour)}, now, time.Hour)
	a := NewAuthenticator(in, 0, false)
	r := benchRequest(token)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if id, err := a.Authenticate(r); err != nil || id == nil {
			b.Fatal(err)
		}
	}
}

func benchRequest(token string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
