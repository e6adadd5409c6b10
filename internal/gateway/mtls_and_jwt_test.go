package gateway

import (
	"fmt"
	"io"
	"net"
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
