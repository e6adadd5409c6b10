package testidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

func getJSON(t *testing.T, rawURL string, v any) http.Header {
	t.Helper()
	resp, err := httpClient.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", rawURL, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decoding: %v", rawURL, err)
	}
	return resp.Header
}

func fetchJWKS(t *testing.T, p *testidp.Provider) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, p.JWKSURI, &set)
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// verify checks token's signature against the served JWKS with go-jose and
// returns its claims.
func verify(t *testing.T, p *testidp.Provider, token string, alg jose.SignatureAlgorithm) (jose.Header, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	hdr := tok.Headers[0]
	set := fetchJWKS(t, p)
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in JWKS", hdr.KeyID, len(keys))
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return hdr, claims
}

func TestDiscovery(t *testing.T) {
	p := testidp.Start(t)
	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") {
		t.Fatalf("issuer %q not on 127.0.0.1", p.Issuer)
	}
	var doc struct {
		Issuer           string   `json:"issuer"`
		JWKSURI          string   `json:"jwks_uri"`
		TokenEndpoint    string   `json:"token_endpoint"`
		Introspection    string   `json:"introspection_endpoint"`
		GrantTypes       []string `json:"grant_types_supported"`
		SigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
		TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	getJSON(t, p.Issuer+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != p.Issuer {
		t.Errorf("issuer = %q, want %q", doc.Issuer, p.Issuer)
	}
	if doc.JWKSURI != p.JWKSURI || doc.TokenEndpoint != p.TokenURL || doc.Introspection != p.IntrospectionURL {
		t.Errorf("endpoints = %q %q %q, want %q %q %q", doc.JWKSURI, doc.TokenEndpoint, doc.Introspection,
			p.JWKSURI, p.TokenURL, p.IntrospectionURL)
	}
	if !slices.Contains(doc.GrantTypes, "client_credentials") {
		t.Errorf("grant_types_supported = %v, want client_credentials", doc.GrantTypes)
	}
	if !slices.Contains(doc.SigningAlgs, "RS256") {
		t.Errorf("signing algs = %v, want RS256", doc.SigningAlgs)
	}
}

func TestClientCredentialsTokenVerifies(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			p := testidp.Start(t, testidp.WithAlgorithm(alg))
			token := p.ClientCredentialsToken(t, "read", "write")
			hdr, claims := verify(t, p, token, alg)
			kid, _, gotAlg := p.SigningKey()
			if hdr.KeyID != kid || gotAlg != alg || hdr.Algorithm != string(alg) {
				t.Errorf("header kid=%q alg=%q, want kid=%q alg=%q", hdr.KeyID, hdr.Algorithm, kid, alg)
			}
			if claims["iss"] != p.Issuer || claims["sub"] != p.ClientID || claims["client_id"] != p.ClientID {
				t.Errorf("claims = %v", claims)
			}
			if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != p.Audience {
				t.Errorf("aud = %v, want [%q]", claims["aud"], p.Audience)
			}
			if claims["scope"] != "read write" {
				t.Errorf("scope = %v, want \"read write\"", claims["scope"])
			}
			exp, _ := claims["exp"].(float64)
			if d := time.Until(time.Unix(int64(exp), 0)); d < 4*time.Minute || d > 6*time.Minute {
				t.Errorf("exp in %s, want about 5m", d)
			}
		})
	}
}

func TestWrongClientSecretRefused(t *testing.T) {
	p := testidp.Start(t)
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.ClientID, "wrong")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 400 or 401", resp.StatusCode)
	}
}

func TestIntrospection(t *testing.T) {
	p := testidp.Start(t)
	token := p.ClientCredentialsToken(t, "read")
	introspect := func(tok string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, p.IntrospectionURL,
			strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(p.ClientID, p.ClientSecret)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := introspect(token); got["active"] != true || got["scope"] != "read" || got["sub"] != p.ClientID {
		t.Errorf("introspection of issued token = %v", got)
	}
	if got := introspect(p.Mint(t, nil)); got["active"] != false {
		t.Errorf("introspection of minted token = %v, want inactive", got)
	}
}

func TestRotation(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	first, _, _ := p.SigningKey()
	if got := kids(fetchJWKS(t, p)); !slices.Equal(got, []string{first}) {
		t.Fatalf("kids = %v, want [%s]", got, first)
	}
	p.RotateKey(t)
	second, _, _ := p.SigningKey()
	if second == first {
		t.Fatal("RotateKey kept the kid")
	}
	if got := kids(fetchJWKS(t, p)); !slices.Equal(got, []string{first, second}) {
		t.Fatalf("after rotation kids = %v, want [%s %s]", got, first, second)
	}
	hdr, _ := verify(t, p, p.ClientCredentialsToken(t), jose.ES256)
	if hdr.KeyID != second {
		t.Errorf("token kid %q, want the new %q", hdr.KeyID, second)
	}
	p.RetireOldKeys()
	if got := kids(fetchJWKS(t, p)); !slices.Equal(got, []string{second}) {
		t.Fatalf("after retirement kids = %v, want [%s]", got, second)
	}
}

func TestMint(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.EdDSA))
	token := p.Mint(t, map[string]any{"sub": "alice", "roles": []string{"admin"}, "jti": nil})
	hdr, claims := verify(t, p, token, jose.EdDSA)
	if hdr.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", hdr.ExtraHeaders["typ"])
	}
	if claims["sub"] != "alice" || claims["iss"] != p.Issuer || claims["aud"] != p.Audience {
		t.Errorf("claims = %v", claims)
	}
	if _, ok := claims["jti"]; ok {
		t.Errorf("jti not removed: %v", claims)
	}
	if _, ok := claims["exp"]; !ok {
		t.Errorf("no exp: %v", claims)
	}

	token = p.MintWithHeaders(t, nil, map[string]any{"jku": "https://evil.example/keys", "typ": "JWT", "kid": "other"})
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.KeyID != "other" || h.ExtraHeaders["jku"] != "https://evil.example/keys" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("headers = %+v", h)
	}

	token = p.MintWithHeaders(t, nil, map[string]any{"kid": nil, "typ": nil})
	tok, err = jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if h := tok.Headers[0]; h.KeyID != "" || h.ExtraHeaders["typ"] != nil {
		t.Errorf("kid/typ not removed: %+v", h)
	}
}

func TestStopRestartAndCounters(t *testing.T) {
	p := testidp.Start(t)
	p.SetJWKSCacheControl("max-age=60")
	if h := getJSON(t, p.JWKSURI, &jose.JSONWebKeySet{}); h.Get("Cache-Control") != "max-age=60" {
		t.Errorf("Cache-Control = %q", h.Get("Cache-Control"))
	}
	if p.JWKSHits() != 1 {
		t.Errorf("JWKSHits = %d, want 1", p.JWKSHits())
	}
	kid, _, _ := p.SigningKey()

	p.Stop()
	p.Stop() // idempotent
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.JWKSURI, nil)
	_, err := httpClient.Do(req)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET after Stop: %v, want connection refused", err)
	}

	p.Restart(t)
	if got := kids(fetchJWKS(t, p)); !slices.Equal(got, []string{kid}) {
		t.Errorf("after restart kids = %v, want [%s]", got, kid)
	}
	verify(t, p, p.ClientCredentialsToken(t), jose.RS256)
	if p.JWKSHits() < 3 {
		t.Errorf("JWKSHits = %d, want >= 3", p.JWKSHits())
	}
}

func TestParallelProviders(t *testing.T) {
	// No shared global state: two providers side by side keep their own
	// clients and keys.
	a, b := testidp.Start(t), testidp.Start(t)
	if a.Issuer == b.Issuer || a.ClientSecret == b.ClientSecret {
		t.Fatal("providers share issuer or secret")
	}
	verify(t, a, a.ClientCredentialsToken(t), jose.RS256)
	verify(t, b, b.ClientCredentialsToken(t), jose.RS256)
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	p := testidp.Start(t)
	p.ClientCredentialsToken(t)
	fetchJWKS(t, p)
	p.Stop()
	p.Restart(t)
	fetchJWKS(t, p)
	p.Stop()
	httpClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Stop, %d before Start", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
