package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

// TestMTLSAndJWT is issue 12's AND chain through a real TLS listener: a
// partner's client certificate AND a user's JWT on one route. Both must
// pass; the JWT's subject is the primary identity (the last method), the
// certificate's evidence stays beside it, and a policy requires facts from
// both credentials.
func TestMTLSAndJWT(t *testing.T) {
	dir := t.TempDir()
	partners := certtest.NewCA(t, "partners")
	srvCA := certtest.NewCA(t, "server-ca")
	srv := srvCA.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	certtest.Write(t, dir, "ca.pem", partners.PEM())
	secret := strings.Repeat("k3y-", 10)
	tg := startGateway(t, fmt.Sprintf(`
listeners:
  - name: main
    address: "127.0.0.1:0"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates:
        ca_files: [%[1]s/ca.pem]
admin: {disabled: true}
audit: {output: stderr}
identity_headers: {credentials: X-Auth-Credentials}
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
      mtls: {trust_domains: [partner.example]}
    authorize:
      expression: >-
        identity.methods == ["mtls", "jwt"]
        && identity.credentials[0].subject == "spiffe://partner.example/billing"
        && identity.credentials[0].cert_thumbprint == identity.credentials[0].id
        && identity.subject == "alice"
    upstream: {targets: ["builtin:echo"]}
`, dir, secret)).serve()
	e := &mtlsEnv{testGateway: tg, dir: dir, partners: partners, addr: tg.Addr("main").String(), serverCA: poolOf(srvCA)}

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(sub string) string {
		now := time.Now()
		obj, err := signer.Sign(fmt.Appendf(nil, `{"iss":"https://idp.example","aud":"orders","sub":%q,"iat":%d,"exp":%d}`,
			sub, now.Unix(), now.Add(5*time.Minute).Unix()))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return s
	}
	billing := partners.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	reporting := partners.Issue(t, certtest.Options{CN: "reporting", URIs: []string{"spiffe://partner.example/reporting"}})
	stranger := certtest.NewCA(t, "stranger").Issue(t, certtest.Options{CN: "x", URIs: []string{"spiffe://partner.example/billing"}})

	for _, tc := range []struct {
		name   string
		cert   *certtest.Cert
		token  string
		status int
		reason string // of the authentication audit event, when refused
	}{
		{"certificate and token", billing, token("alice"), 200, ""},
		{"token without a certificate", nil, token("alice"), 401, "cert_missing"},
		{"certificate without a token", billing, "", 401, "credential_missing"},
		{"untrusted certificate, valid token", stranger, token("alice"), 401, "cert_untrusted"},
		{"certificate with a bad token", billing, token("alice") + "x", 401, "bad_signature"},
		{"policy needs the billing certificate", reporting, token("alice"), 403, ""},
		{"policy needs alice's token", billing, token("bob"), 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, "GET", "https://"+e.addr+"/orders/1")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			req.Header.Set("X-Request-Id", "and-"+strings.ReplaceAll(tc.name, " ", "-"))
			res, err := e.client(tc.cert, false, nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				h := decodeReceived(t, body).Headers
				if h.Get("X-Auth-Subject") != "alice" || h.Get("X-Auth-Method") != "mtls,jwt" {
					t.Fatalf("identity headers %v", h)
				}
				creds := h.Get("X-Auth-Credentials")
				x5t := clientcert.Thumbprint(tc.cert.Cert.Raw)
				if !strings.Contains(creds, `mtls;`) || !strings.Contains(creds, `sub="spiffe://partner.example/billing"`) ||
					!strings.Contains(creds, `x5t="`+x5t+`"`) || !strings.Contains(creds, `jwt;`) {
					t.Fatalf("credentials header %q lacks either credential", creds)
				}
			}
			if tc.reason == "" {
				return
			}
			var seen []any
			for _, ev := range tg.auditEvents(t) {
				if ev["reason"] == tc.reason && ev["route"] == "orders" {
					return
				}
				seen = append(seen, ev["type"], ev["reason"])
			}
			t.Fatalf("no authentication audit event with reason %s; saw %v", tc.reason, seen)
		})
	}
}

// TestCertificateBoundTokenThroughListeners is RFC 8705 §3 end to end: a
// token bound to a client certificate (cnf.x5t#S256) is accepted only with
// that certificate, whether the gateway's own TLS listener verified it or
// a trusted TLS terminator forwarded it (XFCC); certificate_bound:
// required refuses an unbound token.
func TestCertificateBoundTokenThroughListeners(t *testing.T) {
	dir := t.TempDir()
	partners := certtest.NewCA(t, "partners")
	srvCA := certtest.NewCA(t, "server-ca")
	srv := srvCA.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	certtest.Write(t, dir, "ca.pem", partners.PEM())
	secret := strings.Repeat("b0und-", 8)
	tg := startGateway(t, fmt.Sprintf(`
listeners:
  - name: main
    address: "127.0.0.1:0"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates: {ca_files: [%[1]s/ca.pem]}
  - name: behind-lb
    address: "127.0.0.1:0"
    forwarded_client_certificates: {ca_files: [%[1]s/ca.pem]}
forwarding: {trusted_proxies: [127.0.0.1]}
admin: {disabled: true}
audit: {output: stderr}
identity_providers:
  - name: corp
    issuer: https://idp.example
    audiences: [orders]
    algorithms: [HS256]
    static_keys: {hmac_secret: %[2]q}
    certificate_bound: required
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"]}
`, dir, secret)).serve()
	e := &mtlsEnv{testGateway: tg, dir: dir, partners: partners, addr: tg.Addr("main").String(), serverCA: poolOf(srvCA)}

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(boundTo *certtest.Cert) string {
		now := time.Now()
		cnf := ""
		if boundTo != nil {
			cnf = fmt.Sprintf(`,"cnf":{"x5t#S256":%q}`, clientcert.Thumbprint(boundTo.Cert.Raw))
		}
		obj, err := signer.Sign(fmt.Appendf(nil, `{"iss":"https://idp.example","aud":"orders","sub":"svc","iat":%d,"exp":%d%s}`,
			now.Unix(), now.Add(5*time.Minute).Unix(), cnf))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return s
	}
	billing := partners.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	thief := partners.Issue(t, certtest.Options{CN: "thief", URIs: []string{"spiffe://partner.example/thief"}})

	for _, tc := range []struct {
		name      string
		forwarded bool // through the load balancer's XFCC instead of the TLS listener
		cert      *certtest.Cert
		token     string
		status    int
		reason    string
	}{
		{"TLS: the certificate the token is bound to", false, billing, token(billing), 200, ""},
		{"TLS: another trusted certificate", false, thief, token(billing), 401, "token_binding_mismatch"},
		{"TLS: no certificate", false, nil, token(billing), 401, "token_binding_mismatch"},
		{"TLS: unbound token where binding is required", false, billing, token(nil), 401, "token_binding_required"},
		{"XFCC: the certificate the token is bound to", true, billing, token(billing), 200, ""},
		{"XFCC: another trusted certificate", true, thief, token(billing), 401, "token_binding_mismatch"},
		{"XFCC: no certificate forwarded", true, nil, token(billing), 401, "token_binding_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				res *http.Response
				err error
			)
			if tc.forwarded {
				req := mustRequest(t, "GET", "http://"+tg.Addr("behind-lb").String()+"/orders/1")
				if tc.cert != nil {
					req.Header.Set("X-Forwarded-Client-Cert", xfccOf(tc.cert, false))
				}
				req.Header.Set("Authorization", "Bearer "+tc.token)
				res, err = http.DefaultClient.Do(req)
			} else {
				req := mustRequest(t, "GET", "https://"+e.addr+"/orders/1")
				req.Header.Set("Authorization", "Bearer "+tc.token)
				res, err = e.client(tc.cert, false, nil).Do(req)
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.reason == "" {
				return
			}
			for _, ev := range tg.auditEvents(t) {
				if ev["reason"] == tc.reason && ev["route"] == "orders" {
					return
				}
			}
			t.Fatalf("no audit event with reason %s", tc.reason)
		})
	}
}
