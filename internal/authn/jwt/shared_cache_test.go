package jwt

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// sharedProvider is provider a of the cache fixture with its own key
// source (a reload re-reads keys into a new source) and the given cache.
func sharedProvider(cache *TokenCache, tweak func(*Provider)) Provider {
	k := keys()
	p := Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, ClockSkew: 30 * time.Second,
		Keys:       &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaA, "rsa")}},
		Algorithms: []jose.SignatureAlgorithm{jose.RS256}, Cache: cache}
	if tweak != nil {
		tweak(&p)
	}
	return p
}

// TestSharedCacheSurvivesNewVerifier: a verifier built again (a reload)
// with the same provider settings and the same cache answers a token the
// previous one verified from the cache: no miss.
func TestSharedCacheSurvivesNewVerifier(t *testing.T) {
	cache := NewTokenCache(0)
	token := sign(t, jose.RS256, keys().rsaA, "rsa", claims(issA, nil))
	ctx := context.Background()
	var misses int
	opts := VerifierOptions{Now: func() time.Time { return testNow }, OnCacheLookup: func(hit bool) {
		if !hit {
			misses++
		}
	}}
	old := must(NewVerifierWithOptions([]Provider{sharedProvider(cache, nil)}, opts))
	first := must(old.Verify(ctx, token))
	if misses != 1 || cache.Len() != 1 {
		t.Fatalf("first verification: misses=%d entries=%d", misses, cache.Len())
	}
	// Another provider list order, another key source object, same settings.
	other := Provider{Name: "b", Issuer: issB, Audiences: []string{aud}, Keys: &fakeKeys{}}
	next := must(NewVerifierWithOptions([]Provider{other, sharedProvider(cache, nil)}, opts))
	if again := must(next.Verify(ctx, token)); again != first {
		t.Fatal("the new verifier did not answer from the shared cache")
	}
	if misses != 1 {
		t.Fatalf("a new verifier over the same cache missed: %d misses", misses)
	}
	// The new verifier's keys decide: a key gone from its source stops the
	// cached token at once.
	gone := must(NewVerifierWithOptions([]Provider{sharedProvider(cache, func(p *Provider) {
		p.Keys = &fakeKeys{keys: []jose.JSONWebKey{pub(keys().rsaB, "rsa")}}
	})}, opts))
	if _, err := gone.Verify(ctx, token); err == nil {
		t.Fatal("a cached token was served after its key left the new key source")
	}
}

// TestSharedCacheRefusesOtherSettings: every setting that changes a
// decision or the identity changes CacheKey, and a cache bound to the old
// settings is refused, so a cached identity is never served under changed
// settings.
func TestSharedCacheRefusesOtherSettings(t *testing.T) {
	base := must(CacheKey(sharedProvider(nil, nil)))
	for _, tc := range []struct {
		name  string
		tweak func(*Provider)
	}{
		{"name", func(p *Provider) { p.Name = "a2" }},
		{"issuer", func(p *Provider) { p.Issuer = issA + "/" }},
		{"audiences", func(p *Provider) { p.Audiences = []string{aud, "other"} }},
		{"audience claim", func(p *Provider) { p.AudienceClaim = "client_id" }},
		{"algorithms", func(p *Provider) { p.Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256} }},
		{"clock skew", func(p *Provider) { p.ClockSkew = time.Minute }},
		{"max lifetime", func(p *Provider) { p.MaxLifetime = time.Hour }},
		{"required type", func(p *Provider) { p.RequiredType = "at+jwt" }},
		{"required claims", func(p *Provider) { p.RequiredClaims = []string{"jti"} }},
		{"claim values", func(p *Provider) { p.ClaimValues = map[string][]string{"tid": {"t1"}} }},
		{"max token size", func(p *Provider) { p.MaxTokenBytes = 4096 }},
		{"subject claim", func(p *Provider) { p.Mapping.Subject = "oid" }},
		{"client id claim", func(p *Provider) { p.Mapping.ClientID = "appid" }},
		{"scopes claims", func(p *Provider) { p.Mapping.Scopes = []string{"scp"} }},
		{"roles claim", func(p *Provider) { p.Mapping.Roles = "roles" }},
		{"groups claim", func(p *Provider) { p.Mapping.Groups = "groups" }},
		{"claim copies", func(p *Provider) { p.Mapping.Claims = map[string]string{"email": "email"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := must(CacheKey(sharedProvider(nil, tc.tweak)))
			if changed == base {
				t.Fatal("the setting does not change CacheKey")
			}
			cache := NewTokenCache(0)
			must(NewVerifier([]Provider{sharedProvider(cache, nil)}, nil))
			if _, err := NewVerifier([]Provider{sharedProvider(cache, tc.tweak)}, nil); err == nil {
				t.Fatal("a cache bound to other settings was accepted")
			}
		})
	}
	// Keys and the cache itself are not settings.
	same := must(CacheKey(sharedProvider(NewTokenCache(3), func(p *Provider) { p.Keys = &fakeKeys{} })))
	if same != base {
		t.Fatal("the key source or the cache changed CacheKey")
	}
}

// TestCacheKeyCoversSettings: a field added to the compiled provider must
// be considered for settingsFingerprint (then update this count).
func TestCacheKeyCoversSettings(t *testing.T) {
	// Not hashed: index, keys, cache and fingerprint; and the token
	// binding settings dpop, dpopMode and certRequired, which only decide
	// the per-request checks the authenticator runs after the cache (hits
	// included, with the current provider's settings), so a change to them
	// needs no new verification. The 17 others are hashed.
	if n := reflect.TypeFor[provider]().NumField(); n != 24 {
		t.Fatalf("provider has %d fields: decide whether the new one belongs in settingsFingerprint", n)
	}
}
