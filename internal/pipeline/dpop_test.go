package pipeline

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
)

// TestDPoPNonceRenewal: with server nonces, a request without one gets
// 401 use_dpop_nonce and a nonce; a proof with that nonce passes, with
// no new nonce while it is current; in the nonce's last slot, the
// successful response carries the next one (RFC 9449 section 8.2),
// through the response phase, over the upstream's own DPoP-Nonce.
func TestDPoPNonceRenewal(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	secret := strings.Repeat("nonce-test-", 4)
	p := buildPlanWith(t, fmt.Sprintf(`
identity_providers:
  - name: idp
    issuer: https://idp.test
    audiences: [api]
    algorithms: [HS256]
    static_keys: {hmac_secret: %q}
    dpop:
      mode: required
      nonce: {secrets: [%q], lifetime: 1m}
routes:
  - name: r
    match: {path_prefix: /api}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://upstream.test"]}
`, secret, strings.Repeat("n", 32)), Options{Now: clock})
	useTrivialUpstream(t, p)

	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tp, _ := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	proofSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	tokenSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	claims, _ := json.Marshal(map[string]any{"iss": "https://idp.test", "aud": "api", "sub": "u1", "iat": clock().Unix(),
		"exp": clock().Add(time.Hour).Unix(), "cnf": map[string]any{"jkt": base64.RawURLEncoding.EncodeToString(tp)}})
	jws, _ := tokenSigner.Sign(claims)
	token, _ := jws.CompactSerialize()

	call := func(nonce string) *httptest.ResponseRecorder {
		t.Helper()
		c := map[string]any{"jti": rand.Text(), "htm": "GET", "htu": "http://gw.test/api/x", "iat": clock().Unix(), "ath": dpop.AccessTokenHash(token)}
		if nonce != "" {
			c["nonce"] = nonce
		}
		b, _ := json.Marshal(c)
		jws, err := proofSigner.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		proof, _ := jws.CompactSerialize()
		r := httptest.NewRequest(http.MethodGet, "http://gw.test/api/x", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r, "test")
		return w
	}

	w := call("")
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != http.StatusUnauthorized || nonce == "" || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("no nonce: %d %q %q", w.Code, nonce, w.Header().Get("WWW-Authenticate"))
	}
	if w = call(nonce); w.Code != http.StatusOK || w.Header().Get("DPoP-Nonce") != "" {
		t.Fatalf("current nonce: %d, DPoP-Nonce %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	now.Add(int64(time.Minute)) // the nonce's last slot
	w = call(nonce)
	next := w.Header().Get("DPoP-Nonce")
	if w.Code != http.StatusOK || next == "" || next == nonce {
		t.Fatalf("renewal: %d, DPoP-Nonce %q", w.Code, next)
	}
	if w = call(next); w.Code != http.StatusOK || w.Header().Get("DPoP-Nonce") != "" {
		t.Fatalf("renewed nonce: %d %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	now.Add(int64(time.Minute)) // the first nonce has expired
	if w = call(nonce); w.Code != http.StatusUnauthorized || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("expired nonce: %d", w.Code)
	}
}
