package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// upstreamClasses is an Observer that records the upstream error classes
// of every request.
type upstreamClasses struct {
	mu      sync.Mutex
	classes []UpstreamError
}

func (o *upstreamClasses) Route(string, []string) RouteObserver { return o }
func (o *upstreamClasses) JWTCache(bool)                        {}
func (o *upstreamClasses) KeyFetch(string, error)               {}
func (o *upstreamClasses) APIKeyCache(string, bool)             {}
func (o *upstreamClasses) APIKeyStore(string, time.Duration, authnapikey.StoreResult) {
}
func (o *upstreamClasses) Authentication(Authentication) {}
func (o *upstreamClasses) Authorization(Authorization)   {}
func (o *upstreamClasses) Done(RequestDone)              {}
func (o *upstreamClasses) Upstream(x UpstreamExchange) {
	o.mu.Lock()
	o.classes = append(o.classes, x.Error)
	o.mu.Unlock()
}

func (o *upstreamClasses) last() UpstreamError {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.classes) == 0 {
		return UpstreamOK
	}
	return o.classes[len(o.classes)-1]
}

// mtlsUpstream is a real HTTPS upstream with a certificate from its own
// private CA, for the name upstream.internal only (not its IP), that
// requires a client certificate from clientCA. It answers with the
// client certificate's subject CN and the protocol.
type mtlsUpstream struct {
	*httptest.Server
	conns atomic.Int64 // connections accepted
}

func startMTLSUpstream(t *testing.T, serverCA, clientCA *certtest.CA, maxVersion uint16) *mtlsUpstream {
	t.Helper()
	leaf := serverCA.Issue(t, certtest.Options{CN: "upstream.internal", DNS: []string{"upstream.internal"}, Server: true})
	clients := x509.NewCertPool()
	clients.AddCert(clientCA.Cert.Cert)
	u := &mtlsUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	u.EnableHTTP2 = true
	u.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MaxVersion:   maxVersion,
	}
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func upstreamTLSConfig(target, tlsBlock string) string {
	return fmt.Sprintf(`
audit: {disabled: true}
access_log: {disabled: true}
routes:
  - name: backend
    public: true
    match: {path_prefix: /}
    upstream:
      targets: [%q]
%s`, target, tlsBlock)
}

func buildObserved(t *testing.T, reg *resource.Registry, obs Observer, yamlText string) (*Plan, error) {
	t.Helper()
	cfg, file, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Resources: reg, Observer: obs})
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.Close)
	return p, nil
}

func get(p *Plan) (int, string) {
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://gw.test/hello", nil), "main")
	return rec.Code, rec.Body.String()
}

// TestUpstreamMTLS: a backend that requires a client certificate, behind
// a private CA, through real TLS handshakes (HTTP/2 by ALPN). The backend
// speaks TLS 1.2 at most: there it refuses a client certificate within
// the handshake, so the failure is always classified tls. (In TLS 1.3 the
// refusal comes after the client's handshake is done: the gateway may
// see the alert, class tls, or only the reset connection, class
// unavailable; TestUpstreamMTLS13 covers that.)
func TestUpstreamMTLS(t *testing.T) {
	serverCA := certtest.NewCA(t, "upstream-ca")
	otherCA := certtest.NewCA(t, "some-other-ca")
	clientCA := certtest.NewCA(t, "gateway-clients")
	up := startMTLSUpstream(t, serverCA, clientCA, tls.VersionTLS12)
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "upstream-ca.pem", serverCA.PEM())
	otherCAFile := certtest.Write(t, dir, "other-ca.pem", otherCA.PEM())
	client := clientCA.Issue(t, certtest.Options{CN: "gateway-1"})
	certFile := certtest.Write(t, dir, "client.pem", client.PEM())
	keyFile := certtest.Write(t, dir, "client.key", client.KeyPEM(t))
	stranger := otherCA.Issue(t, certtest.Options{CN: "stranger"})
	strangerCert := certtest.Write(t, dir, "stranger.pem", stranger.PEM())
	strangerKey := certtest.Write(t, dir, "stranger.key", stranger.KeyPEM(t))

	good := fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal}", caFile, certFile, keyFile)
	for _, tc := range []struct {
		name       string
		tls        string // the value of upstream.tls; "" none
		wantStatus int
		wantBody   string
		wantClass  UpstreamError
	}{
		{"client certificate and private CA", good, 200, "gateway-1 HTTP/2.0", UpstreamOK},
		{"TLS 1.3 minimum against a TLS 1.2 upstream", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal, min_version: '1.3'}", caFile, certFile, keyFile),
			502, "", UpstreamTLS},
		{"no tls block: system roots do not know the private CA", "", 502, "", UpstreamTLS},
		{"no client certificate", fmt.Sprintf("{ca_files: [%q], server_name: upstream.internal}", caFile), 502, "", UpstreamTLS},
		{"client certificate the upstream does not trust", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal}", caFile, strangerCert, strangerKey),
			502, "", UpstreamTLS},
		{"wrong CA", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal}", otherCAFile, certFile, keyFile), 502, "", UpstreamTLS},
		{"server_name mismatch", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: other.internal}", caFile, certFile, keyFile), 502, "", UpstreamTLS},
		{"no server_name: the certificate is not for the IP", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q}", caFile, certFile, keyFile), 502, "", UpstreamTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block := ""
			if tc.tls != "" {
				block = "      tls: " + tc.tls + "\n"
			}
			obs := &upstreamClasses{}
			p, err := buildObserved(t, resource.New(), obs, upstreamTLSConfig(up.URL, block))
			if err != nil {
				t.Fatal(err)
			}
			status, body := get(p)
			if status != tc.wantStatus || tc.wantBody != "" && body != tc.wantBody {
				t.Fatalf("status %d body %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			if got := obs.last(); got != tc.wantClass {
				t.Fatalf("upstream error class %v, want %v", got, tc.wantClass)
			}
		})
	}
}

// TestUpstreamMTLS13: the same backend on TLS 1.3: a refused or missing
// client certificate is a 502 whichever way the refusal reaches the
// gateway; TLS 1.3 as the minimum works.
func TestUpstreamMTLS13(t *testing.T) {
	serverCA := certtest.NewCA(t, "upstream-ca")
	otherCA := certtest.NewCA(t, "some-other-ca")
	clientCA := certtest.NewCA(t, "gateway-clients")
	up := startMTLSUpstream(t, serverCA, clientCA, 0)
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "upstream-ca.pem", serverCA.PEM())
	client := clientCA.Issue(t, certtest.Options{CN: "gateway-1"})
	certFile := certtest.Write(t, dir, "client.pem", client.PEM())
	keyFile := certtest.Write(t, dir, "client.key", client.KeyPEM(t))
	stranger := otherCA.Issue(t, certtest.Options{CN: "stranger"})
	strangerCert := certtest.Write(t, dir, "stranger.pem", stranger.PEM())
	strangerKey := certtest.Write(t, dir, "stranger.key", stranger.KeyPEM(t))
	for _, tc := range []struct {
		name, tls  string
		wantStatus int
		wantBody   string
	}{
		{"TLS 1.3 minimum", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal, min_version: '1.3'}", caFile, certFile, keyFile),
			200, "gateway-1 HTTP/2.0"},
		{"no client certificate", fmt.Sprintf("{ca_files: [%q], server_name: upstream.internal}", caFile), 502, ""},
		{"client certificate the upstream does not trust", fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal}", caFile, strangerCert, strangerKey),
			502, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &upstreamClasses{}
			p, err := buildObserved(t, resource.New(), obs, upstreamTLSConfig(up.URL, "      tls: "+tc.tls+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			status, body := get(p)
			if status != tc.wantStatus || tc.wantBody != "" && body != tc.wantBody {
				t.Fatalf("status %d body %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			if got := obs.last(); tc.wantStatus == 502 && got != UpstreamTLS && got != UpstreamUnavailable {
				t.Fatalf("upstream error class %v, want tls or unavailable", got)
			}
		})
	}
}

// TestUpstreamTLSAcrossReloads: files are read at every build; a rotated
// client certificate is used from the reload on (a new transport), while
// unchanged files keep the transport and its connection.
func TestUpstreamTLSAcrossReloads(t *testing.T) {
	serverCA := certtest.NewCA(t, "upstream-ca")
	clientCA := certtest.NewCA(t, "gateway-clients")
	up := startMTLSUpstream(t, serverCA, clientCA, 0)
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "upstream-ca.pem", serverCA.PEM())
	writeClient := func(cn string) {
		c := clientCA.Issue(t, certtest.Options{CN: cn})
		certtest.Replace(t, dir, "client.pem", c.PEM())
		certtest.Replace(t, dir, "client.key", c.KeyPEM(t))
	}
	writeClient("gateway-1")
	yamlText := upstreamTLSConfig(up.URL, fmt.Sprintf("      tls: {ca_files: [%q], cert_file: %q, key_file: %q, server_name: upstream.internal}\n",
		caFile, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")))
	transports := func(reg *resource.Registry) []string {
		var out []string
		for _, k := range reg.Keys() {
			if ResourceKind(k) == resourceTransport {
				out = append(out, k)
			}
		}
		return out
	}

	reg := resource.New()
	old, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(old); status != 200 || body != "gateway-1 HTTP/2.0" {
		t.Fatalf("first plan: %d %q", status, body)
	}
	before := transports(reg)

	// Unchanged files: the same transport, no new connection.
	next, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	if got := transports(reg); !slices.Equal(got, before) {
		t.Fatalf("unchanged files: transports %v, want %v", got, before)
	}
	if status, body := get(next); status != 200 || body != "gateway-1 HTTP/2.0" {
		t.Fatalf("after an unchanged reload: %d %q", status, body)
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1 (the pool kept across the reload)", n)
	}

	// Rotated client certificate: a new transport that presents it.
	writeClient("gateway-2")
	rotated, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	next.Close()
	after := transports(reg)
	if len(after) != 1 || slices.Equal(after, before) {
		t.Fatalf("rotated certificate: transports %v, want one other than %v", after, before)
	}
	if status, body := get(rotated); status != 200 || body != "gateway-2 HTTP/2.0" {
		t.Fatalf("after rotation: %d %q, want the new certificate's subject", status, body)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("upstream saw %d connections, want 2 (one new for the new certificate)", n)
	}
	for _, k := range reg.Keys() {
		if strings.Contains(k, "BEGIN") {
			t.Fatalf("a resource key holds PEM: %s", k)
		}
	}
}

// TestUpstreamTLSFileErrors: a file that cannot be used fails the build
// (a reload keeps the running plan), located at its key.
func TestUpstreamTLSFileErrors(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "ca.pem", ca.PEM())
	c := ca.Issue(t, certtest.Options{CN: "gw"})
	other := ca.Issue(t, certtest.Options{CN: "other"})
	certFile := certtest.Write(t, dir, "c.pem", c.PEM())
	otherKey := certtest.Write(t, dir, "other.key", other.KeyPEM(t))
	notPEM := certtest.Write(t, dir, "junk.pem", []byte("not a certificate"))
	for _, tc := range []struct{ name, tls, want string }{
		{"missing CA file", fmt.Sprintf("{ca_files: [%q]}", filepath.Join(dir, "absent.pem")), "routes[0].upstream.tls.ca_files[0]"},
		{"CA file without certificates", fmt.Sprintf("{ca_files: [%q, %q]}", caFile, notPEM), "routes[0].upstream.tls.ca_files[1]"},
		{"key of another certificate", fmt.Sprintf("{cert_file: %q, key_file: %q}", certFile, otherKey), "routes[0].upstream.tls.cert_file"},
		{"missing key file", fmt.Sprintf("{cert_file: %q, key_file: %q}", certFile, filepath.Join(dir, "absent.key")), "routes[0].upstream.tls.key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildObserved(t, resource.New(), nil, upstreamTLSConfig("https://127.0.0.1:1", "      tls: "+tc.tls+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one at %s", err, tc.want)
			}
		})
	}
}

// TestIdentityProviderPrivateCA: discovery and JWKS over TLS from a
// private CA work with identity_providers[].tls.ca_files, and a provider
// that requires a client certificate gets the configured one; without
// them the keys are unavailable, and requests get 503.
func TestIdentityProviderPrivateCA(t *testing.T) {
	idpCA := certtest.NewCA(t, "idp-ca")
	clientCA := certtest.NewCA(t, "gateway-clients")
	serverCert := idpCA.Issue(t, certtest.Options{CN: "idp", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	clients := x509.NewCertPool()
	clients.AddCert(clientCA.Cert.Cert)
	open := testidp.Start(t, testidp.WithTLS(&tls.Config{Certificates: []tls.Certificate{serverCert.TLS()}}))
	mutual := testidp.Start(t, testidp.WithTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clients,
	}))
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "idp-ca.pem", idpCA.PEM())
	client := clientCA.Issue(t, certtest.Options{CN: "gateway-1"})
	certFile := certtest.Write(t, dir, "client.pem", client.PEM())
	keyFile := certtest.Write(t, dir, "client.key", client.KeyPEM(t))

	for _, tc := range []struct {
		name string
		idp  *testidp.Provider
		tls  string // identity_providers[0].tls; "" none
		want int
	}{
		{"private CA", open, fmt.Sprintf("{ca_files: [%q]}", caFile), 200},
		{"no tls: the system roots do not know the CA", open, "", 503},
		{"provider requiring mTLS, with the client certificate", mutual, fmt.Sprintf("{ca_files: [%q], cert_file: %q, key_file: %q, min_version: '1.3'}", caFile, certFile, keyFile), 200},
		{"provider requiring mTLS, without a client certificate", mutual, fmt.Sprintf("{ca_files: [%q]}", caFile), 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block := ""
			if tc.tls != "" {
				block = "    tls: " + tc.tls + "\n"
			}
			p, err := buildObserved(t, resource.New(), nil, fmt.Sprintf(`
audit: {disabled: true}
access_log: {disabled: true}
identity_providers:
  - name: idp
    issuer: %q
    audiences: [%s]
    keys: {fetch_timeout: 2s}
%sroutes:
  - name: api
    match: {path_prefix: /}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"]}
`, tc.idp.Issuer, tc.idp.Audience, block))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "http://gw.test/hello", nil)
			r.Header.Set("Authorization", "Bearer "+tc.idp.Mint(t, nil))
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r, "main")
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if ready := p.Ready(); (ready == nil) != (tc.want == 200) {
				t.Fatalf("Ready() = %v with status %d", ready, rec.Code)
			}
		})
	}
}

// TestIdentityProviderTLSKeysTheKeySet: unchanged tls files keep the key
// set across a reload; a changed CA bundle gives a new one (a new client).
func TestIdentityProviderTLSKeysTheKeySet(t *testing.T) {
	idpCA := certtest.NewCA(t, "idp-ca")
	serverCert := idpCA.Issue(t, certtest.Options{CN: "idp", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	idp := testidp.Start(t, testidp.WithTLS(&tls.Config{Certificates: []tls.Certificate{serverCert.TLS()}}))
	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "idp-ca.pem", idpCA.PEM())
	yamlText := fmt.Sprintf(`
audit: {disabled: true}
access_log: {disabled: true}
identity_providers:
  - {name: idp, issuer: %q, audiences: [api], tls: {ca_files: [%q]}}
routes:
  - {name: api, match: {path_prefix: /}, authenticate: {methods: [jwt]}, upstream: {targets: ["builtin:echo"]}}
`, idp.Issuer, caFile)
	keySets := func(reg *resource.Registry) []string {
		var out []string
		for _, k := range reg.Keys() {
			if ResourceKind(k) == resourceKeySet {
				out = append(out, k)
			}
		}
		return out
	}
	reg := resource.New()
	first, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	before := keySets(reg)
	second, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if got := keySets(reg); len(before) != 1 || !slices.Equal(got, before) {
		t.Fatalf("unchanged tls: key sets %v, want %v", got, before)
	}
	certtest.Replace(t, dir, "idp-ca.pem", append(idpCA.PEM(), certtest.NewCA(t, "next-ca").PEM()...))
	third, err := buildObserved(t, reg, nil, yamlText)
	if err != nil {
		t.Fatal(err)
	}
	second.Close()
	if got := keySets(reg); len(got) != 1 || slices.Equal(got, before) {
		t.Fatalf("changed CA bundle: key sets %v, want a new one", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := third.WaitReady(ctx); err != nil {
		t.Fatalf("the new key set fetches through the new bundle: %v", err)
	}
}

// TestExpiredClientCertificateWarns: an expired client certificate loads
// (the server will say no), with a warning that names the key.
func TestExpiredClientCertificateWarns(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		warn     bool
	}{
		{"expired", time.Now().Add(-time.Minute), true},
		{"valid", time.Now().Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Issue(t, certtest.Options{CN: "gw", NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: tc.notAfter})
			yamlText := upstreamTLSConfig("https://127.0.0.1:1", fmt.Sprintf("      tls: {cert_file: %q, key_file: %q}\n",
				certtest.Write(t, dir, tc.name+".pem", c.PEM()), certtest.Write(t, dir, tc.name+".key", c.KeyPEM(t))))
			cfg, file, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			var logs strings.Builder
			p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := strings.Contains(logs.String(), "routes[0].upstream.tls.cert_file"); got != tc.warn {
				t.Fatalf("warning logged: %v, want %v:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}
