package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// nonceAt is a nonce issued at t0+offset with the test secret.
func nonceAt(t testing.TB, offset time.Duration) string {
	t.Helper()
	n, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret}, Lifetime: time.Minute, Now: func() time.Time { return t0.Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	return n.Next()
}

func TestVerifyTable(t *testing.T) {
	keys(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret}, Lifetime: time.Minute, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	ecJWK := jwkJSON(t, &ecKey.PublicKey)
	claimsJSON := `{"jti":"x1","htm":"POST","htu":"` + testURL + `","iat":1800000000,"ath":"` + AccessTokenHash(testToken) + `"}`

	type tc struct {
		name   string
		proof  func(t *testing.T) string
		method string // default testMethod
		url    string // default testURL
		token  *string
		nonce  bool // verifier requires nonces
		reason authn.Reason
		check  Check
		jkt    any // the key whose thumbprint a valid proof must give
	}
	noToken := ""
	signWith := func(alg jose.SignatureAlgorithm, key any, header map[string]any, claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string {
			return sign(t, proofSpec{alg: alg, key: key, header: header, claims: claims})
		}
	}
	es := func(claims map[string]any) func(t *testing.T) string {
		return signWith(jose.ES256, ecKey, nil, claims)
	}
	raw := func(header, claims string) func(t *testing.T) string {
		return func(*testing.T) string { return rawProof(header, claims, []byte("not a signature")) }
	}
	cases := []tc{
		// Valid proofs.
		{name: "valid ES256", proof: es(nil), jkt: &ecKey.PublicKey},
		{name: "valid ES384", proof: signWith(jose.ES384, ec384Key, nil, nil), jkt: &ec384Key.PublicKey},
		{name: "valid RS256", proof: signWith(jose.RS256, rsaKey, nil, nil), jkt: &rsaKey.PublicKey},
		{name: "valid PS256", proof: signWith(jose.PS256, rsaKey, nil, nil), jkt: &rsaKey.PublicKey},
		{name: "valid EdDSA", proof: signWith(jose.EdDSA, edKey, nil, nil), jkt: edKey.Public()},
		{name: "valid without token, ath ignored", proof: es(with("ath", nil)), token: &noToken, jkt: &ecKey.PublicKey},
		{name: "typ in upper case", proof: signWith(jose.ES256, ecKey, map[string]any{"typ": "DPoP+JWT"}, nil), jkt: &ecKey.PublicKey},
		{name: "iat at the edge of the past window", proof: es(with("iat", t0.Unix()-89)), jkt: &ecKey.PublicKey},
		{name: "iat within the skew ahead", proof: es(with("iat", t0.Unix()+29)), jkt: &ecKey.PublicKey},
		{name: "iat with a fraction", proof: es(with("iat", float64(t0.Unix())+0.5)), jkt: &ecKey.PublicKey},
		{name: "htu query and fragment ignored", proof: es(with("htu", testURL+"?a=1&b=2#frag")), url: testURL + "?c=3", jkt: &ecKey.PublicKey},
		{name: "htu case and default port normalized", proof: es(with("htu", "HTTPS://API.Example.COM:443/v1/things")), jkt: &ecKey.PublicKey},
		{name: "request URL with default port", proof: es(nil), url: "https://api.example.com:443/v1/things", jkt: &ecKey.PublicKey},
		{name: "htu percent-encoded unreserved", proof: es(with("htu", "https://api.example.com/%76%31/things")), jkt: &ecKey.PublicKey},
		{name: "htu percent-encoding hex case", proof: es(with("htu", "https://api.example.com/a%2fb")), url: "https://api.example.com/a%2Fb", jkt: &ecKey.PublicKey},
		{name: "htu dot segments", proof: es(with("htu", "https://api.example.com/v1/x/../things")), jkt: &ecKey.PublicKey},
		{name: "nonce current", nonce: true, proof: func(t *testing.T) string { return es(with("nonce", nonceAt(t, 0)))(t) }, jkt: &ecKey.PublicKey},
		{name: "nonce of the previous slot", nonce: true, proof: func(t *testing.T) string { return es(with("nonce", nonceAt(t, -time.Minute)))(t) }, jkt: &ecKey.PublicKey},

		// Missing, size, syntax.
		{name: "empty proof", proof: func(*testing.T) string { return "" }, reason: ReasonProofMissing, check: CheckMissing},
		{name: "oversized proof", proof: es(with("pad", strings.Repeat("x", DefaultMaxProofBytes))), reason: ReasonProofInvalid, check: CheckSize},
		{name: "two parts", proof: func(*testing.T) string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "JWE-like five parts", proof: func(*testing.T) string { return "a.b.c.d.e" }, reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "space inside", proof: func(t *testing.T) string { return " " + es(nil)(t) }, reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "padding", proof: func(t *testing.T) string { return es(nil)(t) + "==" }, reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "non-JSON header", proof: raw("not json", claimsJSON), reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "header is an array", proof: raw(`["dpop+jwt"]`, claimsJSON), reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "claims not an object", proof: func(t *testing.T) string {
			return sign(t, proofSpec{alg: jose.ES256, key: ecKey, payload: []byte(`["jti"]`)})
		}, reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "claims with trailing data", proof: func(t *testing.T) string {
			return sign(t, proofSpec{alg: jose.ES256, key: ecKey, payload: []byte(claimsJSON + `{}`)})
		}, reason: ReasonProofInvalid, check: CheckSyntax},

		// Header.
		{name: "typ missing", proof: signWith(jose.ES256, ecKey, map[string]any{"typ": nil}, nil), reason: ReasonProofInvalid, check: CheckTyp},
		{name: "typ JWT", proof: signWith(jose.ES256, ecKey, map[string]any{"typ": "JWT"}, nil), reason: ReasonProofInvalid, check: CheckTyp},
		{name: "typ at+jwt", proof: signWith(jose.ES256, ecKey, map[string]any{"typ": "at+jwt"}, nil), reason: ReasonProofInvalid, check: CheckTyp},
		{name: "alg none", proof: raw(`{"typ":"dpop+jwt","alg":"none","jwk":`+ecJWK+`}`, claimsJSON), reason: ReasonProofInvalid, check: CheckAlg},
		{name: "alg none, empty signature", proof: func(*testing.T) string {
			return rawProof(`{"typ":"dpop+jwt","alg":"none","jwk":`+ecJWK+`}`, claimsJSON, nil)
		}, reason: ReasonProofInvalid, check: CheckAlg},
		{name: "alg missing", proof: raw(`{"typ":"dpop+jwt","jwk":`+ecJWK+`}`, claimsJSON), reason: ReasonProofInvalid, check: CheckAlg},
		{name: "HS256 with an oct jwk", proof: signWith(jose.HS256, testSecret, map[string]any{"jwk": map[string]any{"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}}, nil), reason: ReasonProofInvalid, check: CheckAlg},
		{name: "alg not in the configured list", proof: func(t *testing.T) string {
			k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return sign(t, proofSpec{alg: jose.ES512, key: k})
		}, reason: ReasonProofInvalid, check: CheckAlg},
		{name: "crit header", proof: signWith(jose.ES256, ecKey, map[string]any{"crit": []string{"exp"}, "exp": 1}, nil), reason: ReasonProofInvalid, check: CheckCrit},
		{name: "jwk missing", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": nil}, nil), reason: ReasonProofInvalid, check: CheckJWKMissing},
		{name: "jwk null", proof: raw(`{"typ":"dpop+jwt","alg":"ES256","jwk":null}`, claimsJSON), reason: ReasonProofInvalid, check: CheckJWKMissing},
		{name: "private EC key in header", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": jose.JSONWebKey{Key: ecKey}}, nil), reason: ReasonProofInvalid, check: CheckJWKPrivate},
		{name: "private RSA key in header", proof: signWith(jose.RS256, rsaKey, map[string]any{"jwk": jose.JSONWebKey{Key: rsaKey}}, nil), reason: ReasonProofInvalid, check: CheckJWKPrivate},
		{name: "private Ed25519 key in header", proof: signWith(jose.EdDSA, edKey, map[string]any{"jwk": jose.JSONWebKey{Key: edKey}}, nil), reason: ReasonProofInvalid, check: CheckJWKPrivate},
		{name: "symmetric jwk with ES256", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, nil), reason: ReasonProofInvalid, check: CheckJWKPrivate},
		{name: "RSA jwk with ES256 (alg confusion)", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": jose.JSONWebKey{Key: &rsaKey.PublicKey}}, nil), reason: ReasonProofInvalid, check: CheckJWKUnfit},
		{name: "P-384 jwk with ES256", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": jose.JSONWebKey{Key: &ec384Key.PublicKey}}, nil), reason: ReasonProofInvalid, check: CheckJWKUnfit},
		{name: "RSA key of 1024 bits", proof: signWith(jose.RS256, rsaSmallKey, nil, nil), reason: ReasonProofInvalid, check: CheckJWKUnfit},
		{name: "jwk with use enc", proof: signWith(jose.ES256, ecKey, map[string]any{"jwk": jose.JSONWebKey{Key: &ecKey.PublicKey, Use: "enc"}}, nil), reason: ReasonProofInvalid, check: CheckJWKUnfit},
		{name: "signed by another key than jwk", proof: signWith(jose.ES256, other, map[string]any{"jwk": jose.JSONWebKey{Key: &ecKey.PublicKey}}, nil), reason: ReasonProofInvalid, check: CheckSignature},
		{name: "garbage signature", proof: raw(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK+`}`, claimsJSON), reason: ReasonProofInvalid, check: CheckSignature},

		// Claims.
		{name: "jti missing", proof: es(with("jti", nil)), reason: ReasonProofInvalid, check: CheckJTI},
		{name: "jti empty", proof: es(with("jti", "")), reason: ReasonProofInvalid, check: CheckJTI},
		{name: "jti too long", proof: es(with("jti", strings.Repeat("j", MaxJTIBytes+1))), reason: ReasonProofInvalid, check: CheckJTI},
		{name: "jti not a string", proof: es(with("jti", 42)), reason: ReasonProofInvalid, check: CheckSyntax},
		{name: "wrong htm", proof: es(with("htm", "GET")), reason: ReasonProofInvalid, check: CheckHTM},
		{name: "htm in lower case", proof: es(with("htm", "post")), reason: ReasonProofInvalid, check: CheckHTM},
		{name: "htm missing", proof: es(with("htm", nil)), reason: ReasonProofInvalid, check: CheckHTM},
		{name: "htu other host", proof: es(with("htu", "https://evil.example.com/v1/things")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu other path", proof: es(with("htu", "https://api.example.com/v1/other")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu path prefix", proof: es(with("htu", "https://api.example.com/v1")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu other scheme", proof: es(with("htu", "http://api.example.com/v1/things")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu other port", proof: es(with("htu", "https://api.example.com:8443/v1/things")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu encoded slash is not a slash", proof: es(with("htu", "https://api.example.com/v1%2Fthings")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu relative", proof: es(with("htu", "/v1/things")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu with userinfo", proof: es(with("htu", "https://user@api.example.com/v1/things")), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "htu missing", proof: es(with("htu", nil)), reason: ReasonProofInvalid, check: CheckHTU},
		{name: "iat stale", proof: es(with("iat", t0.Unix()-91)), reason: ReasonProofInvalid, check: CheckIATStale},
		{name: "iat in the future", proof: es(with("iat", t0.Unix()+31)), reason: ReasonProofInvalid, check: CheckIATFuture},
		{name: "iat missing", proof: es(with("iat", nil)), reason: ReasonProofInvalid, check: CheckIATMissing},
		{name: "iat as a string", proof: es(with("iat", "1800000000")), reason: ReasonProofInvalid, check: CheckIATMissing},
		{name: "iat negative", proof: es(with("iat", -1)), reason: ReasonProofInvalid, check: CheckIATMissing},
		{name: "ath mismatch", proof: es(with("ath", AccessTokenHash("another token"))), reason: ReasonProofInvalid, check: CheckATH},
		{name: "ath of the token, other token presented", proof: es(nil), token: ptr("eyJ.other.token"), reason: ReasonProofInvalid, check: CheckATH},
		{name: "ath missing with a token", proof: es(with("ath", nil)), reason: ReasonProofInvalid, check: CheckATHMissing},

		// Nonces.
		{name: "nonce missing", nonce: true, proof: es(nil), reason: ReasonNonceRequired, check: CheckNonceMissing},
		{name: "nonce wrong", nonce: true, proof: es(with("nonce", "not-a-nonce")), reason: ReasonNonceRequired, check: CheckNonceInvalid},
		{name: "nonce of an expired slot", nonce: true, proof: func(t *testing.T) string { return es(with("nonce", nonceAt(t, -2*time.Minute)))(t) }, reason: ReasonNonceRequired, check: CheckNonceInvalid},
		{name: "nonce of another secret", nonce: true, proof: func(t *testing.T) string {
			n, err := NewNonces(NonceConfig{Secrets: [][]byte{[]byte("another secret, also 32 bytes long")}, Lifetime: time.Minute, Now: fixedClock})
			if err != nil {
				t.Fatal(err)
			}
			return es(with("nonce", n.Next()))(t)
		}, reason: ReasonNonceRequired, check: CheckNonceInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{}
			if c.nonce {
				cfg.Nonces = nonces
			}
			v := newVerifier(t, cfg)
			method, u, token := testMethod, testURL, testToken
			if c.method != "" {
				method = c.method
			}
			if c.url != "" {
				u = c.url
			}
			if c.token != nil {
				token = *c.token
			}
			p, err := v.Verify(context.Background(), c.proof(t), method, mustURL(t, u), token)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				if want := thumbprint(t, c.jkt); p.JKT != want {
					t.Errorf("JKT = %q, want %q", p.JKT, want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify: %v, want *Error %s/%s", err, c.reason, c.check)
			}
			if e.Reason != c.reason || e.Check != c.check {
				t.Errorf("Verify: %s/%s (%v), want %s/%s", e.Reason, e.Check, e.Err, c.reason, c.check)
			}
			if p != (Proof{}) {
				t.Errorf("Proof = %+v with an error", p)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestVerifyReplay(t *testing.T) {
	keys(t)
	v := newVerifier(t, Config{})
	u := mustURL(t, testURL)
	proof := es256(t, nil)
	if _, err := v.Verify(context.Background(), proof, testMethod, u, testToken); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := v.Verify(context.Background(), proof, testMethod, u, testToken)
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonProofReplayed {
		t.Fatalf("second use: %v, want %s", err, ReasonProofReplayed)
	}
	// The same jti under another key is another proof.
	if _, err := v.Verify(context.Background(), sign(t, proofSpec{alg: jose.ES384, key: ec384Key}), testMethod, u, testToken); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
	// A new jti under the same key passes.
	if _, err := v.Verify(context.Background(), es256(t, with("jti", "another")), testMethod, u, testToken); err != nil {
		t.Fatalf("new jti: %v", err)
	}
}

// failingCache is a replay store that cannot answer.
type failingCache struct{}

func (failingCache) SeenBefore(context.Context, ReplayKey, time.Time) (bool, error) {
	return false, errors.New("store down")
}

func TestVerifyReplayStoreErrorFailsClosed(t *testing.T) {
	keys(t)
	for _, c := range []struct {
		name  string
		cache ReplayCache
	}{
		{"store error", failingCache{}},
		{"full memory cache", func() ReplayCache {
			c := NewMemoryReplayCache(1, fixedClock)
			if _, err := c.SeenBefore(context.Background(), ReplayKey{1}, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			return c
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, Config{Replay: c.cache})
			_, err := v.Verify(context.Background(), es256(t, nil), testMethod, mustURL(t, testURL), testToken)
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonReplayCheckUnavailable || !e.Unavailable {
				t.Fatalf("Verify: %v, want unavailable %s", err, ReasonReplayCheckUnavailable)
			}
			var ue *authn.UnavailableError
			if !errors.As(e.AuthnError(identity.MethodJWT), &ue) {
				t.Fatalf("AuthnError = %T, want *authn.UnavailableError", e.AuthnError(identity.MethodJWT))
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"none", Config{Algorithms: []string{"none"}}},
		{"HS256", Config{Algorithms: []string{"ES256", "HS256"}}},
		{"unknown", Config{Algorithms: []string{"ES257"}}},
		{"negative max age", Config{MaxAge: -time.Second}},
		{"negative skew", Config{ClockSkew: -time.Second}},
		{"tiny proof limit", Config{MaxProofBytes: 100}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestVerifierDefaults(t *testing.T) {
	v, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Algorithms(), " "); got != "ES256 ES384 PS256 RS256 EdDSA" {
		t.Errorf("Algorithms = %q", got)
	}
	if v.NoncesRequired() || v.NextNonce() != "" {
		t.Error("nonces without a configuration")
	}
	if v.maxAge != DefaultMaxAge || v.skew != DefaultClockSkew || v.maxBytes != DefaultMaxProofBytes || v.replay == nil {
		t.Errorf("defaults not applied: %+v", v)
	}
}

// TestVerifyConcurrent: one Verifier, many goroutines, each proof offered
// by two of them: every proof is accepted exactly once.
func TestVerifyConcurrent(t *testing.T) {
	keys(t)
	v := newVerifier(t, Config{})
	u := mustURL(t, testURL)
	const n = 32
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = sign(t, proofSpec{alg: jose.EdDSA, key: edKey, claims: with("jti", "c"+string(rune('A'+i)))})
	}
	accepted := make(chan string, 2*n)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range proofs {
				if (i+g)%2 == 0 {
					continue
				}
				if _, err := v.Verify(context.Background(), proofs[i], testMethod, u, testToken); err == nil {
					accepted <- proofs[i]
				} else if e, ok := err.(*Error); !ok || e.Reason != ReasonProofReplayed {
					t.Errorf("Verify: %v", err)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(accepted)
	seen := map[string]int{}
	for p := range accepted {
		seen[p]++
	}
	for i, p := range proofs {
		if seen[p] != 1 {
			t.Errorf("proof %d accepted %d times, want once", i, seen[p])
		}
	}
}
