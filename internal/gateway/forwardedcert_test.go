package gateway

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/config"
)

// xfccOf is an Envoy XFCC element for c, written the way Envoy writes it
// (set_current_client_cert_details: Cert, Chain, Subject, URI), with the
// chain when chain is set.
func xfccOf(c *certtest.Cert, chain bool) string {
	sum := sha256.Sum256(c.Cert.Raw)
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
	s := fmt.Sprintf(`By=spiffe://lb.example/envoy;Hash=%s;Cert="%s";Subject="%s"`,
		hex.EncodeToString(sum[:]), url.PathEscape(string(leaf)), c.Cert.Subject.String())
	if chain {
		s += fmt.Sprintf(`;Chain="%s"`, url.PathEscape(string(c.PEM())))
	}
	for _, u := range c.Cert.URIs {
		s += ";URI=" + u.String()
	}
	return s
}

// forwardedEnv is a gateway behind a "load balancer": the test client, on
// 127.0.0.1, plays the TLS terminator that forwards the certificate.
type forwardedEnv struct {
	*testGateway
	upstream string
	serverCA *x509.CertPool
	dir      string
}

func newForwardedEnv(t *testing.T, trusted string) (*forwardedEnv, *certtest.CA, *certtest.CA, *certtest.Cert) {
	t.Helper()
	dir := t.TempDir()
	root := certtest.NewCA(t, "partners-root")
	issuing := root.Intermediate(t, "partners-issuing")
	srvCA := certtest.NewCA(t, "server-ca")
	srv := srvCA.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	certtest.Write(t, dir, "ca.pem", root.PEM())
	revoked := issuing.Issue(t, certtest.Options{CN: "leaked", URIs: []string{"spiffe://partner.example/leaked"}})
	certtest.Write(t, dir, "issuing.crl", issuing.CRL(t, time.Now().Add(time.Hour), revoked.Cert))
	// The intermediate's CRL is checked with the intermediate, which the
	// CA file must hold to verify its signature.
	certtest.Write(t, dir, "ca.pem", append(root.PEM(), pemOf(issuing.Cert.Cert)...))
	up := newUpstream(t, "backend")
	yamlText := fmt.Sprintf(`
listeners:
  - name: main
    address: "127.0.0.1:0"
    forwarded_client_certificates:
      ca_files: [%[1]s/ca.pem]
      crl_files: [%[1]s/issuing.crl]
  - name: alb
    address: "127.0.0.1:0"
    forwarded_client_certificates:
      header: X-Amzn-Mtls-Clientcert
      format: pem
      ca_files: [%[1]s/ca.pem]
      crl_files: [%[1]s/issuing.crl]
  - name: direct
    address: "127.0.0.1:0"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates:
        ca_files: [%[1]s/ca.pem]
  - name: both
    address: "127.0.0.1:0"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates:
        ca_files: [%[1]s/ca.pem]
    forwarded_client_certificates:
      ca_files: [%[1]s/ca.pem]
forwarding:
  trusted_proxies: [%[2]s]
admin: {disabled: true}
audit: {output: stderr}
identity_headers:
  client_certificate: X-Forwarded-Client-Cert
  claims:
    cert.spiffe_id: X-Client-Spiffe-Id
    cert.x5t_s256: X-Client-Cert-Thumbprint
routes:
  - name: status
    public: true
    match: {path: /status}
    upstream: {targets: ["%[3]s"]}
  - name: orders
    match: {path_prefix: /orders}
    authenticate:
      methods: [mtls]
      mtls:
        spiffe_ids: ["spiffe://partner.example/*"]
    upstream: {targets: ["%[3]s"]}
  - name: reports
    match: {path_prefix: /reports}
    authenticate:
      methods: [mtls]
    identity_headers: {subject: X-Auth-Subject}
    upstream: {targets: ["%[3]s"]}
`, dir, trusted, up.URL)
	tg := startGateway(t, yamlText).serve()
	return &forwardedEnv{testGateway: tg, upstream: up.URL, serverCA: poolOf(srvCA), dir: dir}, root, issuing, revoked
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// send makes a request to listener with the given header lines.
func (e *forwardedEnv) send(t *testing.T, listener, path string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req := mustRequest(t, "GET", "http://"+e.Addr(listener).String()+path)
	for k, vs := range h {
		req.Header[k] = vs
	}
	return do(t, req)
}

func (e *forwardedEnv) auditReason(t *testing.T, route, reason string) map[string]any {
	t.Helper()
	for _, ev := range e.auditEvents(t) {
		if ev["route"] == route && ev["reason"] == reason {
			return ev
		}
	}
	t.Fatalf("no audit event on %s with reason %s", route, reason)
	return nil
}

// TestForwardedClientCertificate: a gateway behind a TLS-terminating load
// balancer reads the certificate from the trusted proxy's header, verifies
// it itself, and gives the mtls route its identity; nothing malformed,
// ambiguous, untrusted or revoked passes, and the upstream only ever sees
// the gateway's own XFCC.
func TestForwardedClientCertificate(t *testing.T) {
	e, _, issuing, revoked := newForwardedEnv(t, "127.0.0.1")
	billing := issuing.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	reporting := issuing.Issue(t, certtest.Options{CN: "reporting", URIs: []string{"spiffe://partner.example/reporting"}})
	stranger := certtest.NewCA(t, "stranger").Issue(t, certtest.Options{CN: "x", URIs: []string{"spiffe://partner.example/billing"}})
	expired := issuing.Issue(t, certtest.Options{CN: "old", URIs: []string{"spiffe://partner.example/old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	const xfcc = "X-Forwarded-Client-Cert"
	noHash := strings.Replace(xfccOf(billing, true), "Hash=", "Hash=00", 1)
	for _, tc := range []struct {
		name     string
		listener string
		h        http.Header
		status   int
		reason   string
		subject  *certtest.Cert // the identity the upstream must get
	}{
		{"xfcc with chain", "main", hdr(xfcc, xfccOf(billing, true)), 200, "ok", billing},
		// ca_files holds the intermediate: the leaf alone builds.
		{"xfcc leaf only", "main", hdr(xfcc, xfccOf(billing, false)), 200, "ok", billing},
		{"multi-element: the nearest (last) is used", "main", hdr(xfcc, xfccOf(stranger, false)+","+xfccOf(reporting, true)), 200, "ok", reporting},
		{"multi-element: a trusted far element does not help", "main", hdr(xfcc, xfccOf(billing, true)+","+xfccOf(stranger, false)), 401, "cert_untrusted", nil},
		{"revoked", "main", hdr(xfcc, xfccOf(revoked, true)), 401, "cert_revoked", nil},
		{"expired", "main", hdr(xfcc, xfccOf(expired, true)), 401, "cert_expired", nil},
		{"no header from the proxy", "main", nil, 401, "cert_missing", nil},
		{"empty header", "main", hdr(xfcc, ""), 401, "cert_missing", nil},
		{"two header lines", "main", hdr(xfcc, xfccOf(billing, true), xfcc, xfccOf(billing, true)), 401, "cert_forwarded_invalid", nil},
		{"element without Cert", "main", hdr(xfcc, `By=spiffe://lb;Hash=abcd;Subject="CN=billing";URI=spiffe://partner.example/billing`), 401, "cert_forwarded_invalid", nil},
		{"Hash is not the certificate's", "main", hdr(xfcc, noHash), 401, "cert_forwarded_invalid", nil},
		{"Cert is not PEM", "main", hdr(xfcc, `Cert="not a certificate"`), 401, "cert_forwarded_invalid", nil},
		{"garbage", "main", hdr(xfcc, `;;==""`), 401, "cert_forwarded_invalid", nil},
		{"chain that does not start with Cert", "main", hdr(xfcc, strings.Replace(xfccOf(billing, true), url.PathEscape(string(pemOf(billing.Cert))), url.PathEscape(string(pemOf(reporting.Cert))), 1)), 401, "cert_forwarded_invalid", nil},
		{"pem (ALB) with chain", "alb", hdr("X-Amzn-Mtls-Clientcert", url.PathEscape(string(billing.PEM()))), 200, "ok", billing},
		{"pem (ALB): an XFCC header is not read there", "alb", hdr(xfcc, xfccOf(billing, true)), 401, "cert_missing", nil},
		{"pem (ALB) untrusted", "alb", hdr("X-Amzn-Mtls-Clientcert", url.PathEscape(string(stranger.PEM()))), 401, "cert_untrusted", nil},
		{"pem (ALB) malformed", "alb", hdr("X-Amzn-Mtls-Clientcert", "-----BEGIN%20CERTIFICATE-----%0Azzz"), 401, "cert_forwarded_invalid", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.send(t, tc.listener, "/orders/1", tc.h)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				problemBody(t, res, body, 401, "unauthorized")
				ev := e.auditReason(t, "orders", tc.reason)
				if ev["auth_method"] != "mtls" {
					t.Fatalf("audit event %v", ev)
				}
				return
			}
			got := decodeReceived(t, body).Headers
			id := tc.subject.Cert.URIs[0].String()
			if got.Get("X-Auth-Subject") != id || got.Get("X-Client-Spiffe-Id") != id || got.Get("X-Auth-Method") != "mtls" ||
				got.Get("X-Client-Cert-Thumbprint") != clientcert.Thumbprint(tc.subject.Cert.Raw) {
				t.Fatalf("identity headers %v", got)
			}
			if got.Get("X-Amzn-Mtls-Clientcert") != "" {
				t.Fatal("the forwarded PEM header reached the upstream")
			}
			checkUpstreamXFCC(t, got, tc.subject)
		})
	}
}

// checkUpstreamXFCC: the upstream got exactly one XFCC element, the
// gateway's, naming want.
func checkUpstreamXFCC(t *testing.T, got http.Header, want *certtest.Cert) {
	t.Helper()
	vals := got.Values("X-Forwarded-Client-Cert")
	if len(vals) != 1 {
		t.Fatalf("upstream XFCC %q, want one value", vals)
	}
	els, err := clientcert.ParseXFCC(vals[0])
	if err != nil || len(els) != 1 {
		t.Fatalf("upstream XFCC %q: %d elements, %v", vals[0], len(els), err)
	}
	el := els[0]
	sum := sha256.Sum256(want.Cert.Raw)
	if el.Cert == nil || !el.Cert.Equal(want.Cert) || el.Hash != hex.EncodeToString(sum[:]) ||
		el.Subject != want.Cert.Subject.String() || len(el.URI) != 1 || el.URI[0] != want.Cert.URIs[0].String() || len(el.By) != 0 {
		t.Fatalf("upstream XFCC element %+v", el)
	}
}

// TestForwardedClientCertificateUpstream: identity_headers.client_certificate
// carries the certificate that authenticated the request (forwarded or a
// direct TLS client certificate), only then, and never a client's copy.
func TestForwardedClientCertificateUpstream(t *testing.T) {
	e, root, issuing, _ := newForwardedEnv(t, "127.0.0.1")
	billing := issuing.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	forged := "Hash=00;Cert=\"x\";Subject=\"CN=admin\";URI=spiffe://partner.example/admin"

	t.Run("public route: the proxy's header and a client's underscore copy are stripped", func(t *testing.T) {
		res, body := e.send(t, "main", "/status", http.Header{"X-Forwarded-Client-Cert": {xfccOf(billing, true)}, "X_forwarded_client_cert": {forged}})
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		for k := range decodeReceived(t, body).Headers {
			if sameHeaderLooseTest(k, "X-Forwarded-Client-Cert") {
				t.Fatalf("the upstream got %s", k)
			}
		}
	})
	t.Run("route without client_certificate: not sent", func(t *testing.T) {
		res, body := e.send(t, "main", "/reports", http.Header{"X-Forwarded-Client-Cert": {xfccOf(billing, true)}})
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		got := decodeReceived(t, body).Headers
		if got.Get("X-Auth-Subject") != "spiffe://partner.example/billing" || got.Get("X-Forwarded-Client-Cert") != "" {
			t.Fatalf("headers %v", got)
		}
	})
	t.Run("direct TLS client certificate", func(t *testing.T) {
		me := &mtlsEnv{testGateway: e.testGateway, serverCA: e.serverCA, addr: e.Addr("direct").String(), partners: root}
		req := mustRequest(t, "GET", "https://"+me.addr+"/orders/1")
		req.Header.Set("X-Forwarded-Client-Cert", forged)
		res, err := me.client(billing, false, nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		checkUpstreamXFCC(t, decodeReceived(t, body).Headers, billing)
	})
}

func sameHeaderLooseTest(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, "_", "-"), b)
}

// TestForwardedClientCertificateUntrustedPeer: from a peer that is not a
// trusted proxy the header is never read and never forwarded.
func TestForwardedClientCertificateUntrustedPeer(t *testing.T) {
	e, _, issuing, _ := newForwardedEnv(t, "192.0.2.10")
	billing := issuing.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	for _, tc := range []struct {
		name, listener, header, value string
	}{
		{"xfcc", "main", "X-Forwarded-Client-Cert", xfccOf(billing, true)},
		{"pem", "alb", "X-Amzn-Mtls-Clientcert", url.PathEscape(string(billing.PEM()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.send(t, tc.listener, "/orders/1", http.Header{tc.header: {tc.value}})
			problemBody(t, res, body, 401, "unauthorized")
			e.auditReason(t, "orders", "cert_missing")
			res, body = e.send(t, tc.listener, "/status", http.Header{tc.header: {tc.value}})
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if v := decodeReceived(t, body).Headers.Get(tc.header); v != "" {
				t.Fatalf("the upstream got %s: %q", tc.header, v)
			}
		})
	}
}

// TestForwardedClientCertificateConfigErrors: the block is checked at load
// time, and an mtls route is accepted with only a forwarded-certificate
// listener (and refused with neither).
func TestForwardedClientCertificateConfigErrors(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	mtlsRoute := "  - name: orders\n    match: {path_prefix: /}\n    authenticate: {methods: [mtls]}\n    upstream: {targets: [\"builtin:echo\"]}\n"
	for _, tc := range []struct{ name, trusted, block, want string }{
		{"valid", "[127.0.0.1]", "{ca_files: [" + ca + "]}", ""},
		{"valid pem", "[10.0.0.0/8]", "{header: X-SSL-Client-Cert, format: pem, ca_files: [" + ca + "]}", ""},
		{"no trusted proxies", "[]", "{ca_files: [" + ca + "]}", "forwarding.trusted_proxies"},
		{"no CA", "[127.0.0.1]", "{ca_files: []}", "ca_files"},
		{"unknown format", "[127.0.0.1]", "{format: json, ca_files: [" + ca + "]}", "format"},
		{"bad header name", "[127.0.0.1]", "{header: \"X Cert\", ca_files: [" + ca + "]}", "header"},
		{"reserved header", "[127.0.0.1]", "{header: X-Forwarded-For, ca_files: [" + ca + "]}", "reserved"},
		{"weak keys", "[127.0.0.1]", "{min_rsa_bits: 1024, ca_files: [" + ca + "]}", "min_rsa_bits"},
		{"no certificate source at all", "[127.0.0.1]", "", "mtls needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listener := "listeners:\n  - address: \"127.0.0.1:0\"\n"
			if tc.block != "" {
				listener += "    forwarded_client_certificates: " + tc.block + "\n"
			}
			y := listener + "forwarding: {trusted_proxies: " + tc.trusted + "}\nadmin: {disabled: true}\nroutes:\n" + mtlsRoute
			path := filepath.Join(dir, "gatehouse.yaml")
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := config.Load(path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestForwardedClientCertificateCRLReload: a reload re-reads the CRL and
// drops what the listener remembered, so a certificate verified (and
// cached) a moment ago is refused at once.
func TestForwardedClientCertificateCRLReload(t *testing.T) {
	e, _, issuing, revoked := newForwardedEnv(t, "127.0.0.1")
	billing := issuing.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	h := http.Header{"X-Forwarded-Client-Cert": {xfccOf(billing, true)}}
	for range 2 { // the second from the cache
		if res, body := e.send(t, "main", "/orders/1", h); res.StatusCode != 200 {
			t.Fatalf("before the reload: %d %s", res.StatusCode, body)
		}
	}
	certtest.Replace(t, e.dir, "issuing.crl", issuing.CRL(t, time.Now().Add(time.Hour), revoked.Cert, billing.Cert))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	res, body := e.send(t, "main", "/orders/1", h)
	problemBody(t, res, body, 401, "unauthorized")
	e.auditReason(t, "orders", "cert_revoked")
}

// TestForwardedAndDirectOnOneListener: on an HTTPS listener with both, a
// trusted proxy's requests take their certificate from the header only
// (the proxy's own TLS certificate is never the client's), anyone else's
// from the handshake (and their header is ignored).
func TestForwardedAndDirectOnOneListener(t *testing.T) {
	for _, tc := range []struct {
		name, trusted string
		xfcc          bool
		want          string // the subject, or the reason
	}{
		{"trusted proxy with a header", "127.0.0.1", true, "spiffe://partner.example/billing"},
		{"trusted proxy without a header", "127.0.0.1", false, "cert_missing"},
		{"untrusted peer: the handshake's certificate", "192.0.2.10", true, "spiffe://partner.example/reporting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, root, issuing, _ := newForwardedEnv(t, tc.trusted)
			billing := issuing.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
			proxy := issuing.Issue(t, certtest.Options{CN: "reporting", URIs: []string{"spiffe://partner.example/reporting"}})
			me := &mtlsEnv{testGateway: e.testGateway, serverCA: e.serverCA, addr: e.Addr("both").String(), partners: root}
			req := mustRequest(t, "GET", "https://"+me.addr+"/orders/1")
			if tc.xfcc {
				req.Header.Set("X-Forwarded-Client-Cert", xfccOf(billing, true))
			}
			res, err := me.client(proxy, false, nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if strings.HasPrefix(tc.want, "cert_") {
				problemBody(t, res, body, 401, "unauthorized")
				e.auditReason(t, "orders", tc.want)
				return
			}
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if got := decodeReceived(t, body).Headers.Get("X-Auth-Subject"); got != tc.want {
				t.Fatalf("subject %q, want %q", got, tc.want)
			}
		})
	}
}

// TestForwardedCertificateAndJWT: the AND chain of a partner's certificate
// (forwarded by the load balancer) and a user's token; the upstream gets
// the certificate in XFCC form although the primary identity is the
// token's.
func TestForwardedCertificateAndJWT(t *testing.T) {
	dir := t.TempDir()
	partners := certtest.NewCA(t, "partners")
	certtest.Write(t, dir, "ca.pem", partners.PEM())
	up := newUpstream(t, "backend")
	secret := strings.Repeat("k3y-", 10)
	tg := startGateway(t, fmt.Sprintf(`
listeners:
  - name: main
    address: "127.0.0.1:0"
    forwarded_client_certificates: {ca_files: [%[1]s/ca.pem]}
forwarding: {trusted_proxies: [127.0.0.1]}
admin: {disabled: true}
audit: {output: stderr}
identity_headers: {client_certificate: X-Client-Cert}
identity_providers:
  - name: corp
    issuer: https://idp.example
    audiences: [orders]
    algorithms: [HS256]
    static_keys: {hmac_secret: %[2]q}
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate:
      methods: [mtls, jwt]
      require_all: true
    authorize:
      expression: identity.credentials[0].subject == "spiffe://partner.example/billing" && identity.subject == "alice"
    upstream: {targets: [%[3]q]}
  - name: user
    match: {path_prefix: /user}
    authenticate: {methods: [jwt]}
    upstream: {targets: [%[3]q]}
`, dir, secret, up.URL)).serve()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	obj, err := signer.Sign(fmt.Appendf(nil, `{"iss":"https://idp.example","aud":"orders","sub":"alice","iat":%d,"exp":%d}`,
		now.Unix(), now.Add(5*time.Minute).Unix()))
	if err != nil {
		t.Fatal(err)
	}
	token, _ := obj.CompactSerialize()
	billing := partners.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	for _, tc := range []struct {
		name, path string
		xfcc       bool
		status     int
		forwarded  bool // the upstream gets X-Client-Cert
	}{
		{"certificate and token", "/orders/1", true, 200, true},
		{"token only", "/orders/1", false, 401, false},
		{"a route without mtls does not pass the certificate on", "/user/1", true, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, "GET", tg.url+tc.path)
			req.Header.Set("Authorization", "Bearer "+token)
			if tc.xfcc {
				req.Header.Set("X-Forwarded-Client-Cert", xfccOf(billing, false))
			}
			req.Header.Set("X-Client-Cert", "Hash=00;Subject=\"CN=forged\"")
			res, body := do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				return
			}
			h := decodeReceived(t, body).Headers
			if h.Get("X-Auth-Subject") != "alice" {
				t.Fatalf("headers %v", h)
			}
			got := h.Get("X-Client-Cert")
			if !tc.forwarded {
				if got != "" {
					t.Fatalf("X-Client-Cert %q reached the upstream", got)
				}
				return
			}
			els, err := clientcert.ParseXFCC(got)
			if err != nil || len(els) != 1 || els[0].Cert == nil || !els[0].Cert.Equal(billing.Cert) {
				t.Fatalf("X-Client-Cert %q: %v", got, err)
			}
		})
	}
}
