package pipeline

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// TestAssertionStage: through a plan with a real JWT verifier and a real
// upstream, an assertion's exp is the lifetime or the token's expiry,
// whichever is sooner, and a token that expired within the provider's
// clock skew (accepted by authentication) gets 401, never an assertion
// that would outlive it.
func TestAssertionStage(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}
	data, _ := pub.MarshalJSON()
	keyFile := filepath.Join(t.TempDir(), "jwk.json")
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "idp-1"))
	token := func(exp time.Time) string {
		tok, err := jwt.Signed(signer).Claims(map[string]any{"iss": "https://idp.test", "aud": "api", "sub": "alice",
			"iat": now.Add(-time.Minute).Unix(), "exp": exp.Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("X-Gatehouse-Assertion") }))
	defer up.Close()
	cfg, file, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
identity_providers:
  - {name: idp, issuer: https://idp.test, audiences: [api], static_keys: {files: [%q]}}
identity_assertion: {issuer: https://gw.test, all_routes: true, keys: {source: memory}}
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [jwt]}
    upstream: {targets: [%q]}
`, keyFile, up.URL)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct {
		name    string
		exp     time.Time
		status  int
		wantExp time.Time
	}{
		{"long-lived token: the lifetime", now.Add(time.Hour), 200, now.Add(time.Minute)},
		{"token expiring sooner: its expiry", now.Add(20 * time.Second), 200, now.Add(20 * time.Second)},
		{"expired within the clock skew: 401", now.Add(-10 * time.Second), 401, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = ""
			r := httptest.NewRequest("GET", "http://gw.test/x", nil)
			r.Header.Set("Authorization", "Bearer "+token(tc.exp))
			r.Header.Set("X-Gatehouse-Assertion", "forged")
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r, "test")
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				// Refused by the assertion stage, not by the verifier.
				if !strings.Contains(w.Body.String(), "The credential has expired.") {
					t.Fatalf("body %s", w.Body)
				}
				if got != "" {
					t.Fatal("the upstream was reached")
				}
				return
			}
			tok, err := jwt.ParseSigned(got, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("upstream got %q: %v", got, err)
			}
			var doc jose.JSONWebKeySet
			body, _ := p.assertion.ring.JWKS(now)
			_ = json.Unmarshal(body, &doc)
			var c jwt.Claims
			if err := tok.Claims(doc.Key(tok.Headers[0].KeyID)[0].Key, &c); err != nil {
				t.Fatal(err)
			}
			if !c.Expiry.Time().Equal(tc.wantExp) || c.Subject != "alice" || c.Issuer != "https://gw.test" {
				t.Fatalf("exp %v sub %q iss %q", c.Expiry.Time(), c.Subject, c.Issuer)
			}
		})
	}
}

// TestAssertionValidatingPlan: offline tools (gatehouse explain, policy
// test) build a validating plan, which opens no store: a route with an
// assertion is still allowed there (an ephemeral key signs), not 503.
func TestAssertionValidatingPlan(t *testing.T) {
	cfg, file, err := config.Parse("test.yaml", []byte(`
api_keys: {store: {type: postgres, dsn: "postgres://nobody@127.0.0.1:1/none"}}
identity_assertion: {issuer: https://gw.test, all_routes: true, keys: {source: store, seal_secret: `+strings.Repeat("s", 32)+`}}
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["http://orders.internal"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := p.Inspect(httptest.NewRequest("GET", "http://gw.test/x", nil),
		&identity.Identity{Method: identity.MethodAPIKey, Subject: "c1", Issuer: "gatehouse"}, true)
	if out.Status != 200 {
		t.Fatalf("explain: %d %s %v", out.Status, out.Reason, out.Steps)
	}
}
