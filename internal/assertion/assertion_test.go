package assertion

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/identity"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func staticRing(t testing.TB, alg string) (*KeyRing, *Key) {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyRing(RingConfig{Static: []*Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

// verify checks token against the ring's JWKS as a backend would: the
// algorithm list, the kid from the published set, iss, aud and exp.
func verify(t *testing.T, ring *KeyRing, token string, alg jose.SignatureAlgorithm, aud string, now time.Time) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	doc, err := ring.JWKS(now)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d published keys", tok.Headers[0].KeyID, len(keys))
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: "https://gw.example", AnyAudience: jwt.Audience{aud}, Time: now}, 0); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return all
}

func TestMintClaims(t *testing.T) {
	exp := t0.Add(time.Hour)
	for _, tc := range []struct {
		name string
		id   *identity.Identity
		want map[string]any
	}{
		{"jwt with scopes, roles, groups",
			&identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp.example", Provider: "corp",
				ClientID: "web", Scopes: []string{"read", "write"}, Roles: []string{"admin"}, Groups: []string{"ops", "a\"b"}, ExpiresAt: exp},
			map[string]any{"sub": "alice", "idp_iss": "https://idp.example", "idp": "corp", "auth_methods": []any{"jwt"},
				"client_id": "web", "scope": "read write", "roles": []any{"admin"}, "groups": []any{"ops", "a\"b"}}},
		{"api key names its consumer",
			&identity.Identity{Method: identity.MethodAPIKey, Subject: "c_1", Issuer: "gatehouse", Provider: "api_keys", ClientID: "shop",
				Claims: map[string]any{"consumer_name": "shop"}},
			map[string]any{"sub": "c_1", "idp_iss": "gatehouse", "idp": "api_keys", "auth_methods": []any{"api_key"},
				"client_id": "shop", "consumer": "shop"}},
		{"DPoP-bound token carries cnf.jkt",
			&identity.Identity{Method: identity.MethodJWT, Subject: "bob", Issuer: "https://idp.example", KeyBinding: identity.KeyBinding{Kind: "jkt", Value: "J1"}},
			map[string]any{"sub": "bob", "idp_iss": "https://idp.example", "auth_methods": []any{"jwt"}, "cnf": map[string]any{"jkt": "J1"}}},
		{"certificate-bound token carries cnf.x5t#S256",
			&identity.Identity{Method: identity.MethodJWT, Subject: "svc", KeyBinding: identity.KeyBinding{Kind: "x5t#S256", Value: "T1"}},
			map[string]any{"sub": "svc", "auth_methods": []any{"jwt"}, "cnf": map[string]any{"x5t#S256": "T1"}}},
		{"an invalid binding is not passed on",
			&identity.Identity{Method: identity.MethodJWT, Subject: "svc", KeyBinding: identity.KeyBinding{Kind: identity.KeyBindingInvalid, Value: "x"}},
			map[string]any{"sub": "svc", "auth_methods": []any{"jwt"}}},
		{"mtls: the certificate is the binding",
			&identity.Identity{Method: identity.MethodMTLS, Subject: "CN=svc", CertThumbprint: "C1"},
			map[string]any{"sub": "CN=svc", "auth_methods": []any{"mtls"}, "cnf": map[string]any{"x5t#S256": "C1"}}},
		{"composite: every credential, the primary's claims",
			identity.Compose([]*identity.Identity{
				{Method: identity.MethodMTLS, Subject: "CN=svc", Issuer: "CN=CA", CertThumbprint: "C1"},
				{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp.example", ClientID: "web", Scopes: []string{"read"},
					KeyBinding: identity.KeyBinding{Kind: "x5t#S256", Value: "C1"}, ExpiresAt: exp},
			}, 1),
			map[string]any{"sub": "alice", "idp_iss": "https://idp.example", "client_id": "web", "scope": "read",
				"auth_methods": []any{"mtls", "jwt"}, "cnf": map[string]any{"x5t#S256": "C1"},
				"credentials": []any{
					map[string]any{"method": "mtls", "sub": "CN=svc", "idp_iss": "CN=CA", "cnf": map[string]any{"x5t#S256": "C1"}},
					map[string]any{"method": "jwt", "sub": "alice", "idp_iss": "https://idp.example", "client_id": "web", "cnf": map[string]any{"x5t#S256": "C1"}},
				}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, alg := range []string{ES256, EdDSA} {
				ring, _ := staticRing(t, alg)
				m, err := NewMinter(MinterConfig{Ring: ring, Issuer: "https://gw.example", Lifetime: time.Minute, Now: func() time.Time { return t0 }})
				if err != nil {
					t.Fatal(err)
				}
				tok, err := m.Mint(tc.id, "https://orders.internal")
				if err != nil {
					t.Fatal(err)
				}
				got := verify(t, ring, tok, jose.SignatureAlgorithm(alg), "https://orders.internal", t0)
				if got["iat"] != float64(t0.Unix()) || got["nbf"] != float64(t0.Unix()) || got["exp"] != float64(t0.Add(time.Minute).Unix()) {
					t.Errorf("%s: iat/nbf/exp %v %v %v", alg, got["iat"], got["nbf"], got["exp"])
				}
				if jti, _ := got["jti"].(string); len(jti) != 22 {
					t.Errorf("%s: jti %q", alg, got["jti"])
				}
				for _, k := range []string{"iss", "aud", "iat", "nbf", "exp", "jti"} {
					delete(got, k)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: claims\n got %v\nwant %v", alg, got, tc.want)
				}
			}
		})
	}
}

func TestMintNeverOutlivesTheCredential(t *testing.T) {
	ring, _ := staticRing(t, ES256)
	m, _ := NewMinter(MinterConfig{Ring: ring, Issuer: "https://gw.example", Lifetime: time.Minute, Now: func() time.Time { return t0 }})
	for _, tc := range []struct {
		name    string
		expires time.Time
		wantExp time.Time
		wantErr error
	}{
		{"no expiry: the lifetime", time.Time{}, t0.Add(time.Minute), nil},
		{"later expiry: the lifetime", t0.Add(time.Hour), t0.Add(time.Minute), nil},
		{"sooner expiry: the credential's", t0.Add(10 * time.Second), t0.Add(10 * time.Second), nil},
		{"expired credential: refused", t0, time.Time{}, ErrExpiredCredential},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := m.Mint(&identity.Identity{Method: identity.MethodJWT, Subject: "a", ExpiresAt: tc.expires}, "aud")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			c := verify(t, ring, tok, jose.ES256, "aud", t0)
			if c["exp"] != float64(tc.wantExp.Unix()) {
				t.Fatalf("exp %v, want %v", c["exp"], tc.wantExp.Unix())
			}
		})
	}
	if _, err := m.Mint(identity.Anonymous, "aud"); err == nil {
		t.Fatal("minted for the anonymous identity")
	}
}

func TestMintCache(t *testing.T) {
	ring, _ := staticRing(t, ES256)
	clk := &clock{t: t0}
	m, err := NewMinter(MinterConfig{Ring: ring, Issuer: "https://gw.example", Lifetime: time.Minute, CacheFor: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	alice := &identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Scopes: []string{"read"}}
	first, _ := m.Mint(alice, "a")
	type step struct {
		name   string
		at     time.Duration
		id     *identity.Identity
		aud    string
		reused bool
	}
	for _, s := range []step{
		{"same identity, same audience: reused", time.Second, alice, "a", true},
		{"an equal identity value (another token of the same caller): reused", 2 * time.Second,
			&identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Scopes: []string{"read"}}, "a", true},
		{"other audience: not shared", 3 * time.Second, alice, "b", false},
		{"other subject: not shared", 3 * time.Second, &identity.Identity{Method: identity.MethodJWT, Subject: "alicf", Issuer: "https://idp", Scopes: []string{"read"}}, "a", false},
		{"more scopes: not shared", 3 * time.Second, &identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Scopes: []string{"read", "write"}}, "a", false},
		{"other issuer: not shared", 3 * time.Second, &identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp2", Scopes: []string{"read"}}, "a", false},
		{"bound: not shared with unbound", 3 * time.Second, &identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Scopes: []string{"read"}, KeyBinding: identity.KeyBinding{Kind: "jkt", Value: "k"}}, "a", false},
		{"a credential expiring before the cached assertion: not reused", 4 * time.Second,
			&identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Scopes: []string{"read"}, ExpiresAt: t0.Add(20 * time.Second)}, "a", false},
		{"past the cache time: re-minted", 31 * time.Second, alice, "a", false},
	} {
		t.Run(s.name, func(t *testing.T) {
			clk.Set(t0.Add(s.at))
			tok, err := m.Mint(s.id, s.aud)
			if err != nil {
				t.Fatal(err)
			}
			if (tok == first) != s.reused {
				t.Fatalf("reused %v, want %v", tok == first, s.reused)
			}
			c := verify(t, ring, tok, jose.ES256, s.aud, clk.Now())
			if c["sub"] != s.id.Subject {
				t.Fatalf("sub %v, want %v", c["sub"], s.id.Subject)
			}
		})
	}
}

func TestMintCacheIsBounded(t *testing.T) {
	ring, _ := staticRing(t, EdDSA)
	m, _ := NewMinter(MinterConfig{Ring: ring, Issuer: "https://gw.example", Lifetime: time.Minute, CacheFor: 30 * time.Second, MaxEntries: 8,
		Now: func() time.Time { return t0 }})
	for i := range 100 {
		if _, err := m.Mint(&identity.Identity{Method: identity.MethodJWT, Subject: strings.Repeat("x", i+1)}, "a"); err != nil {
			t.Fatal(err)
		}
		if m.Len() > 8 {
			t.Fatalf("cache holds %d entries, bound 8", m.Len())
		}
	}
}

func TestMinterConfig(t *testing.T) {
	ring, _ := staticRing(t, ES256)
	for _, tc := range []struct {
		name string
		cfg  MinterConfig
	}{
		{"no ring", MinterConfig{Issuer: "i", Lifetime: time.Minute}},
		{"no issuer", MinterConfig{Ring: ring, Lifetime: time.Minute}},
		{"cache as long as the lifetime", MinterConfig{Ring: ring, Issuer: "i", Lifetime: time.Minute, CacheFor: time.Minute}},
	} {
		if _, err := NewMinter(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestRotationTimeline follows generated keys through their schedule with
// an injected clock: published before they sign (pre-publish), signing,
// retired but still published, removed.
func TestRotationTimeline(t *testing.T) {
	const (
		rotation   = 24 * time.Hour
		prePublish = time.Hour
		retain     = 10 * time.Minute
		refresh    = time.Minute
	)
	sealer, err := NewSealer([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	store := &MemoryStore{}
	ring, err := NewKeyRing(RingConfig{Store: store, Sealer: sealer, Algorithm: ES256, RotationInterval: rotation,
		PrePublish: prePublish, Retain: retain, RefreshInterval: refresh, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if ring.Ready() == nil {
		t.Fatal("ready before the first refresh")
	}
	refreshAt := func(at time.Time) {
		t.Helper()
		clk.Set(at)
		if err := ring.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	published := func() []string {
		var ids []string
		for _, k := range ring.Published(clk.Now()) {
			ids = append(ids, k.ID)
		}
		return ids
	}
	signing := func() string {
		k, err := ring.Signing(clk.Now())
		if err != nil {
			return ""
		}
		return k.ID
	}

	// First start: nothing to overlap with, the first key signs at once;
	// its successor is published already, to sign when it stops.
	refreshAt(t0)
	if err := ring.Ready(); err != nil {
		t.Fatal(err)
	}
	pub := published()
	if len(pub) != 2 {
		t.Fatalf("after the first refresh: %d keys published, want 2 (signing + next)", len(pub))
	}
	k1 := signing()
	k2 := pub[1]
	if k1 != pub[0] || k1 == k2 {
		t.Fatalf("signing %s, published %v", k1, pub)
	}

	// Just before the rotation: k1 signs, k2 published only.
	refreshAt(t0.Add(rotation - time.Second))
	if signing() != k1 || len(published()) != 2 {
		t.Fatalf("before rotation: signing %s, published %v", signing(), published())
	}
	// At the rotation: k2 signs, and coverage fell to a rotation ahead:
	// k3 is generated, published a rotation (at least pre_publish) before
	// it signs.
	refreshAt(t0.Add(rotation))
	pub = published()
	if len(pub) != 3 {
		t.Fatalf("at rotation: published %v, want k1, k2, k3", pub)
	}
	k3 := pub[2]
	for _, k := range ring.Published(clk.Now()) {
		if k.ID == k3 && k.SignFrom.Sub(k.PublishAt) < prePublish {
			t.Fatalf("k3 published %s before it signs, want at least %s", k.SignFrom.Sub(k.PublishAt), prePublish)
		}
		if k.ID == k3 && k.signs(clk.Now()) {
			t.Fatal("k3 signs as soon as it is published")
		}
	}

	// k1 retired but still published.
	if signing() != k2 {
		t.Fatal("at rotation: k2 does not sign")
	}
	if !contains(published(), k1) {
		t.Fatal("k1 removed as soon as it stopped signing")
	}
	// Still published until its assertions have expired.
	clk.Set(t0.Add(rotation + retain - time.Second))
	if !contains(published(), k1) {
		t.Fatal("k1 removed before its retention ended")
	}
	// Then gone: from the JWKS at once, from the store at the next refresh.
	refreshAt(t0.Add(rotation + retain))
	if contains(published(), k1) {
		t.Fatal("k1 still published after its retention")
	}
	stored, _ := store.UpdateAssertionKeys(context.Background(), func([]StoredKey) ([]StoredKey, []string, error) { return nil, nil, nil })
	for _, s := range stored {
		if s.ID == k1 {
			t.Fatal("k1 still in the store after its removal time")
		}
		if len(s.Sealed) == 0 || strings.Contains(string(s.Sealed), "PRIVATE") {
			t.Fatal("a stored key is not sealed")
		}
	}
	// Store unreachable for longer than StaleAfter: not ready, but the
	// keys loaded keep signing.
	clk.Set(t0.Add(rotation + retain + prePublish))
	if ring.Ready() == nil {
		t.Fatal("ready with keys not read for pre_publish")
	}
	if signing() != k2 {
		t.Fatal("the loaded keys stopped signing while the store was unreachable")
	}
}

// TestReplicasAgree: two rings over one store (two replicas) publish the
// same keys and sign with the same one, even when both generate at once.
func TestReplicasAgree(t *testing.T) {
	sealer, _ := NewSealer([]byte(strings.Repeat("s", 32)))
	clk := &clock{t: t0}
	store := &MemoryStore{}
	cfg := RingConfig{Store: store, Sealer: sealer, Algorithm: EdDSA, RotationInterval: 24 * time.Hour,
		PrePublish: time.Hour, Retain: 5 * time.Minute, Now: clk.Now}
	a, _ := NewKeyRing(cfg)
	b, _ := NewKeyRing(cfg)
	var wg sync.WaitGroup
	for _, r := range []*KeyRing{a, b} {
		wg.Go(func() {
			if err := r.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_ = a.Refresh(context.Background())
	ja, _ := a.JWKS(clk.Now())
	jb, _ := b.JWKS(clk.Now())
	if string(ja) != string(jb) {
		t.Fatalf("replicas publish different keys:\n%s\n%s", ja, jb)
	}
	ka, _ := a.Signing(clk.Now())
	kb, _ := b.Signing(clk.Now())
	if ka.ID != kb.ID {
		t.Fatal("replicas sign with different keys")
	}
	// A replica with another seal secret publishes nothing it cannot open
	// and signs with nothing: it fails closed.
	other, _ := NewSealer([]byte(strings.Repeat("t", 32)))
	cfg.Sealer = other
	c, _ := NewKeyRing(cfg)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, k := range c.Published(clk.Now()) {
		if k.ID == ka.ID {
			t.Fatal("a key sealed under another secret was opened")
		}
	}
}

func TestStaticRing(t *testing.T) {
	k1, _ := GenerateKey(ES256)
	k2, _ := GenerateKey(EdDSA)
	pemBytes, err := MarshalKeyPEM(k2)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyPEM(pemBytes)
	if err != nil || back.ID != k2.ID {
		t.Fatalf("PEM round trip: %v", err)
	}
	r, err := NewKeyRing(RingConfig{Static: []*Key{k1, back}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Fatal(err)
	}
	s, _ := r.Signing(time.Now())
	if s.ID != k1.ID {
		t.Fatal("the first file does not sign")
	}
	doc, _ := r.JWKS(time.Now())
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(doc, &set)
	if len(set.Keys) != 2 || set.Keys[1].KeyID != k2.ID || !set.Keys[0].IsPublic() || set.Keys[1].Algorithm != EdDSA {
		t.Fatalf("JWKS %s", doc)
	}
	if strings.Contains(string(doc), `"d"`) {
		t.Fatal("the JWKS holds a private key")
	}
}

func TestThumbprintKid(t *testing.T) {
	k, _ := GenerateKey(ES256)
	// RFC 7638: the kid is the SHA-256 thumbprint of the public key
	// alone (alg, use and kid do not enter it), base64url.
	jwk := jose.JSONWebKey{Key: k.private.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); k.ID != want || len(k.ID) != 43 {
		t.Fatalf("kid %q, want %q", k.ID, want)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func benchMinter(b *testing.B, cacheFor time.Duration) (*Minter, *identity.Identity) {
	ring, _ := staticRing(b, ES256)
	m, err := NewMinter(MinterConfig{Ring: ring, Issuer: "https://gateway.example.com", Lifetime: time.Minute, CacheFor: cacheFor})
	if err != nil {
		b.Fatal(err)
	}
	return m, &identity.Identity{Method: identity.MethodJWT, Subject: "248289761001", Issuer: "https://idp.example.com", Provider: "corp",
		ClientID: "s6BhdRkqt3", Scopes: []string{"orders:read", "orders:write"}, Roles: []string{"admin"}, Groups: []string{"ops"},
		KeyBinding: identity.KeyBinding{Kind: "jkt", Value: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
}

// BenchmarkMint is an uncached mint (ES256): claims, a jti, a signature.
func BenchmarkMint(b *testing.B) {
	m, id := benchMinter(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Mint(id, "https://orders.internal"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintCached is a cache hit: the claims are built and looked up.
func BenchmarkMintCached(b *testing.B) {
	m, id := benchMinter(b, 30*time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Mint(id, "https://orders.internal"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRingStartClose: the refresh loop reads the store at once, and Close
// stops it (no goroutine left behind).
func TestRingStartClose(t *testing.T) {
	sealer, _ := NewSealer([]byte(strings.Repeat("s", 32)))
	r, err := NewKeyRing(RingConfig{Store: &MemoryStore{}, Sealer: sealer, Algorithm: ES256, RotationInterval: time.Hour,
		PrePublish: time.Minute, Retain: time.Minute, RefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	deadline := time.Now().Add(5 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("not ready after Start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Close()
	select {
	case <-r.done:
	default:
		t.Fatal("the refresh loop still runs after Close")
	}
	r.Close() // twice is fine
}
