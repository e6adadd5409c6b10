package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

func b64url(v any) string {
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signWith signs claims with an arbitrary key and headers (an attacker's).
func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, headers map[string]any, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range headers {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileTokensThroughGateway sends attack tokens against a gateway
// trusting a real OpenID Provider. Each must get 401 and be audited with
// the right reason; none may reach the upstream.
func TestHostileTokensThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+
		providerYAML("idp", idp, "    max_token_lifetime: 1h\n    keys: {unknown_kid_interval: 50ms}\n")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)

	kid, signer, _ := idp.SigningKey()
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	good := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": idp.Issuer, "aud": idp.Audience, "sub": "mallory", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	valid := idp.Mint(t, map[string]any{"sub": "victim"})
	parts := strings.Split(valid, ".")
	attackerJWK := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}

	for _, tc := range []struct{ name, token, reason string }{
		{"alg none", b64url(map[string]any{"alg": "none", "kid": kid}) + "." + b64url(good(nil)) + ".", "algorithm_not_allowed"},
		{"HS256 keyed with the provider's RSA public key", signWith(t, jose.HS256, pubPEM, map[string]any{"kid": kid}, good(nil)), "algorithm_not_allowed"},
		{"tampered payload", parts[0] + "." + b64url(good(map[string]any{"sub": "admin"})) + "." + parts[2], "bad_signature"},
		{"stripped signature", parts[0] + "." + parts[1] + ".", "bad_signature"},
		{"unknown kid", signWith(t, jose.RS256, attacker, map[string]any{"kid": "no-such-kid"}, good(nil)), "unknown_kid"},
		{"kid with a path", signWith(t, jose.RS256, attacker, map[string]any{"kid": "../../../etc/passwd"}, good(nil)), "unknown_kid"},
		{"kid with SQL", signWith(t, jose.RS256, attacker, map[string]any{"kid": "' OR '1'='1"}, good(nil)), "unknown_kid"},
		{"jku to the attacker", signWith(t, jose.RS256, attacker, map[string]any{"kid": kid, "jku": "http://127.0.0.1:1/jwks"}, good(nil)), "forbidden_key_header"},
		{"x5u to the attacker", signWith(t, jose.RS256, attacker, map[string]any{"kid": kid, "x5u": "http://127.0.0.1:1/cert"}, good(nil)), "forbidden_key_header"},
		{"embedded attacker jwk", signWith(t, jose.RS256, attacker, map[string]any{"kid": kid, "jwk": attackerJWK}, good(nil)), "forbidden_key_header"},
		{"attacker key with the provider's kid", signWith(t, jose.RS256, attacker, map[string]any{"kid": kid}, good(nil)), "bad_signature"},
		{"expired", idp.Mint(t, good(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})), "token_expired"},
		{"not yet valid", idp.Mint(t, good(map[string]any{"nbf": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()})), "token_not_yet_valid"},
		{"lifetime over the maximum", idp.Mint(t, good(map[string]any{"exp": now.Add(48 * time.Hour).Unix()})), "token_lifetime_exceeded"},
		{"wrong audience", idp.Mint(t, good(map[string]any{"aud": "someone-else"})), "audience_mismatch"},
		{"wrong issuer", idp.Mint(t, good(map[string]any{"iss": "https://evil.example"})), "unknown_issuer"},
		{"unknown crit", idp.MintWithHeaders(t, good(nil), map[string]any{"crit": []string{"x-acme"}, "x-acme": true}), "unsupported_crit"},
		{"malformed base64", "eyJhbGciOiJSUzI1NiJ9.%%%.abc", "token_malformed"},
		{"oversized", strings.Repeat("A", 17<<10) + ".e30.c2ln", "token_too_large"},
		// Not JWS-shaped: offered to other methods whatever its size, and
		// refused as not a JWT when none claims it.
		{"oversized opaque", strings.Repeat("A", 17<<10), "token_unsupported"},
		{"JWE", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", "token_encrypted"},
		{"nested JWT", idp.MintWithHeaders(t, good(nil), map[string]any{"cty": "JWT"}), "token_nested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := bearer(t, tg.url+"/api/x", tc.token, nil)
			problemBody(t, res, body, 401, "unauthorized")
			mustContain(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
			evs := tg.auditEvents(t)
			last := evs[len(evs)-1]
			if last["reason"] != tc.reason || last["outcome"] != "deny" {
				t.Fatalf("audit %v, want reason %s", last, tc.reason)
			}
			if strings.Contains(tg.stderr.String(), tc.token) && len(tc.token) > 8 {
				t.Fatal("the token reached the audit log")
			}
		})
	}
}
