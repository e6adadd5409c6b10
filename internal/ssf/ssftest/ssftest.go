// Package ssftest is a Shared Signals transmitter for tests: it signs
// Security Event Tokens with a fresh ES256 key and serves the public key
// (a JWKS) and an SSF configuration document from a real HTTP server on
// 127.0.0.1, and pushes SETs as RFC 8935 says.
package ssftest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Transmitter signs SETs and serves its keys.
type Transmitter struct {
	// Issuer is its iss: the server's URL.
	Issuer string
	// JWKSURI and MetadataURL are where its keys and SSF configuration
	// are served.
	JWKSURI, MetadataURL string
	key                  *ecdsa.PrivateKey
	kid                  string
}

// Start serves a new transmitter until the test ends.
func Start(t testing.TB) *Transmitter {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transmitter{key: k, kid: "ssf-test-1"}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tr.Issuer, tr.JWKSURI, tr.MetadataURL = srv.URL, srv.URL+"/jwks", srv.URL+"/.well-known/ssf-configuration"
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: tr.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /.well-known/ssf-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": tr.Issuer, "jwks_uri": tr.JWKSURI,
			"delivery_methods_supported": []string{"urn:ietf:rfc:8935"}})
	})
	return tr
}

// Sign signs claims as a SET with the transmitter's key (typ
// secevent+jwt unless headers say otherwise).
func (tr *Transmitter) Sign(t testing.TB, claims map[string]any, headers map[string]any) string {
	t.Helper()
	return SignWith(t, jose.SigningKey{Algorithm: jose.ES256, Key: tr.key}, tr.kid, claims, headers)
}

// SignWith signs claims with any key (a forger's).
func SignWith(t testing.TB, key jose.SigningKey, kid string, claims map[string]any, headers map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("secevent+jwt").WithHeader("kid", kid)
	for k, v := range headers {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Claims returns the claims of a SET from this transmitter to aud, about
// an iss_sub subject, with one event of type typ whose event_timestamp is
// at.
func (tr *Transmitter) Claims(aud, typ, subIss, sub string, at time.Time) map[string]any {
	return map[string]any{
		"iss": tr.Issuer, "aud": aud, "iat": time.Now().Unix(), "jti": NewJTI(),
		"sub_id": map[string]any{"format": "iss_sub", "iss": subIss, "sub": sub},
		"events": map[string]any{typ: map[string]any{"event_timestamp": at.Unix()}},
	}
}

// NewJTI returns a random jti.
func NewJTI() string {
	return rand.Text()
}

// Push posts a SET to url with the push token, as RFC 8935 says.
func Push(t testing.TB, url, token, set string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(set))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}
