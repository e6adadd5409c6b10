package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/certbind"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// clientCert makes a self-signed client certificate and its key.
func clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestCertificateBoundTokensOverTLS: certificate-bound tokens (RFC 8705)
// through real TLS handshakes. The listener asks for a client certificate
// (tls.RequestClientCert: the mTLS listener configuration is another
// change), and the gateway's compiled pipeline serves it: a token bound
// to a certificate passes only with that certificate; a route or provider
// that requires bound tokens refuses unbound ones. The token is verified
// once and then comes from the cache: the binding is checked every time.
func TestCertificateBoundTokensOverTLS(t *testing.T) {
	up := newUpstream(t, "api")
	secret := strings.Repeat("cert-idp-", 4)
	strictSecret := strings.Repeat("strict-idp-", 3)
	yamlText := fmt.Sprintf(`audit: {output: stderr}
access_log: {disabled: true}
identity_providers:
  - {name: corp, issuer: https://idp.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}}
  - {name: partners, issuer: https://partners.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}, certificate_bound: required}
routes:
  - {name: api, match: {path_prefix: /api}, authenticate: {methods: [jwt], providers: [corp]}, upstream: {targets: [%q]}}
  - {name: strict, match: {path_prefix: /strict}, authenticate: {methods: [jwt], providers: [corp], jwt: {certificate_bound: required}}, upstream: {targets: [%q]}}
  - {name: partners, match: {path_prefix: /partners}, authenticate: {methods: [jwt], providers: [partners]}, upstream: {targets: [%q]}}
`, secret, strictSecret, up.URL, up.URL, up.URL)
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(yamlText), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	audit := &syncBuffer{}
	plan, err := pipeline.Build(cfg, file, pipeline.Options{Stdout: io.Discard, Stderr: audit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.Close)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plan.ServeHTTP(w, r, "main")
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	certA, certB := clientCert(t, "partner-a"), clientCert(t, "partner-b")
	boundA := hsToken(t, secret, "https://idp.example", map[string]any{"x5t#S256": certbind.Thumbprint(certA.Leaf)})
	unbound := hsToken(t, secret, "https://idp.example", nil)
	partnerBound := hsToken(t, strictSecret, "https://partners.example", map[string]any{"x5t#S256": certbind.Thumbprint(certA.Leaf)})
	partnerUnbound := hsToken(t, strictSecret, "https://partners.example", nil)

	clientWith := func(cert *tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = nil
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	withA, withB, without := clientWith(&certA), clientWith(&certB), clientWith(nil)

	reasons := func() []string {
		plan.Flush()
		var out []string
		for _, l := range audit.lines(t) {
			if r, ok := l["reason"].(string); ok && l["event"] == "authn.decision" {
				out = append(out, r)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		token  string
		status int
		reason string
	}{
		{"bound token, its certificate", withA, "/api/x", boundA, 200, "ok"},
		{"bound token, its certificate again (cache hit)", withA, "/api/x", boundA, 200, "ok"},
		{"bound token, another certificate", withB, "/api/x", boundA, 401, "token_binding_mismatch"},
		{"bound token, no certificate", without, "/api/x", boundA, 401, "token_binding_mismatch"},
		{"unbound token, optional binding", without, "/api/x", unbound, 200, "ok"},
		{"unbound token, route requires binding", withA, "/strict/x", unbound, 401, "token_binding_required"},
		{"bound token, route requires binding", withA, "/strict/x", boundA, 200, "ok"},
		{"bound token, route requires binding, wrong certificate", withB, "/strict/x", boundA, 401, "token_binding_mismatch"},
		{"provider requires binding, unbound token", withA, "/partners/x", partnerUnbound, 401, "token_binding_required"},
		{"provider requires binding, bound token", withA, "/partners/x", partnerBound, 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(reasons())
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			res, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				if c := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, `Bearer realm="gatehouse", error="invalid_token"`) {
					t.Fatalf("challenge %q", c)
				}
			}
			got := reasons()
			if len(got) != before+1 || got[before] != tc.reason {
				t.Fatalf("audit reasons %v, want %s", got[before:], tc.reason)
			}
		})
	}
}
