package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

// TestUpstreamMTLSReload: the gateway calls a backend that requires its
// client certificate; a rotated certificate is used after a reload, and a
// reload with a key that does not match is rejected while the running
// configuration keeps serving.
func TestUpstreamMTLSReload(t *testing.T) {
	serverCA := certtest.NewCA(t, "backend-ca")
	clientCA := certtest.NewCA(t, "gateway-clients")
	leaf := serverCA.Issue(t, certtest.Options{CN: "backend.internal", DNS: []string{"backend.internal"}, Server: true})
	clients := x509.NewCertPool()
	clients.AddCert(clientCA.Cert.Cert)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	backend.Config.ErrorLog = log.New(io.Discard, "", 0)
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	backend.StartTLS()
	defer backend.Close()

	dir := t.TempDir()
	caFile := certtest.Write(t, dir, "backend-ca.pem", serverCA.PEM())
	writeClient := func(cn string) {
		c := clientCA.Issue(t, certtest.Options{CN: cn})
		certtest.Replace(t, dir, "client.pem", c.PEM())
		certtest.Replace(t, dir, "client.key", c.KeyPEM(t))
	}
	writeClient("gateway-1")
	g := startGateway(t, header+fmt.Sprintf(`
routes:
  - name: backend
    public: true
    match: {path_prefix: /}
    upstream:
      targets: [%q]
      tls:
        ca_files: [%q]
        cert_file: %q
        key_file: %q
        server_name: backend.internal
`, backend.URL, caFile, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))).serve()
	call := func() (int, string) {
		t.Helper()
		resp, err := http.Get(g.url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(); code != 200 || body != "gateway-1" {
		t.Fatalf("before rotation: %d %q", code, body)
	}
	writeClient("gateway-2")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, body := call(); code != 200 || body != "gateway-2" {
		t.Fatalf("after rotation and reload: %d %q, want the new certificate", code, body)
	}
	// A key that is not the certificate's: the reload is refused, the
	// running configuration (with gateway-2) keeps serving.
	other := clientCA.Issue(t, certtest.Options{CN: "gateway-3"})
	certtest.Replace(t, dir, "client.key", other.KeyPEM(t))
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), "routes[0].upstream.tls.cert_file") {
		t.Fatalf("reload with a mismatched key: %v, want an error at routes[0].upstream.tls.cert_file", err)
	}
	if code, body := call(); code != 200 || body != "gateway-2" {
		t.Fatalf("after a rejected reload: %d %q", code, body)
	}
}
