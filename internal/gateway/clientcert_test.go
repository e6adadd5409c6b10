package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// mtlsEnv is an HTTPS listener asking for client certificates of
// "partners" (ca.pem, with partners.crl), with a server certificate of its
// own CA, and a probe in front of the gateway's handler: GET /probe runs
// the mtls authenticator on the request, exactly as a route listing the
// mtls method will, and answers {"subject": …} or {"reason": …}; every
// other path is the gateway's pipeline (a public echo route).
type mtlsEnv struct {
	*testGateway
	dir      string
	partners *certtest.CA
	serverCA *x509.CertPool
	addr     string
}

type probeAnswer struct {
	Subject, Reason, CredentialID, Proto string
}

func newMTLSEnv(t testing.TB, mode string, now func() time.Time, route mtls.Config) *mtlsEnv {
	t.Helper()
	dir := t.TempDir()
	partners := certtest.NewCA(t, "partners")
	srvCA := certtest.NewCA(t, "server-ca")
	srv := srvCA.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	certtest.Write(t, dir, "ca.pem", partners.PEM())
	certtest.Write(t, dir, "partners.crl", partners.CRL(t, time.Now().Add(24*time.Hour)))
	yamlText := fmt.Sprintf(`
listeners:
  - name: main
    address: "127.0.0.1:0"
    tls:
      cert_file: %[1]s/server.pem
      key_file: %[1]s/server.key
      client_certificates:
        ca_files: [%[1]s/ca.pem]
        crl_files: [%[1]s/partners.crl]
        mode: %[2]s
admin: {disabled: true}
routes:
`, dir, mode) + routeYAML("echo", "{path_prefix: /}", `{targets: ["builtin:echo"]}`)
	tg := startGatewayWith(t, yamlText, Options{Now: now})
	a, err := mtls.New(route)
	if err != nil {
		t.Fatal(err)
	}
	fd := tg.listeners[0]
	inner := fd.srv.Handler
	fd.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/probe" {
			inner.ServeHTTP(w, r)
			return
		}
		ans := probeAnswer{Proto: r.Proto}
		id, err := a.Authenticate(r)
		var f *authn.Failure
		switch {
		case err == nil:
			ans.Subject, ans.CredentialID = id.Subject, id.CredentialID
		case errors.Is(err, authn.ErrNoCredential):
			ans.Reason = "none"
		case errors.As(err, &f):
			ans.Reason, ans.CredentialID = string(f.Reason), f.CredentialID
		default:
			ans.Reason = "error: " + err.Error()
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	tg.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tg.Shutdown(ctx)
	})
	return &mtlsEnv{testGateway: tg, dir: dir, partners: partners, serverCA: poolOf(srvCA), addr: tg.Addr("main").String()}
}

// startGatewayWith is startGateway with options (the clock).
func startGatewayWith(t testing.TB, yamlText string, opts Options) *testGateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, file, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	access, stderr, oplog := &syncBuffer{}, &syncBuffer{}, &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(oplog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.ConfigPath, opts.Log, opts.RetireDelay = path, logger, 2*time.Second
	opts.Pipeline = pipeline.Options{Log: logger, Stdout: access, Stderr: stderr}
	g, err := New(cfg, file, opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	tt, _ := t.(*testing.T)
	return &testGateway{Gateway: g, t: tt, path: path, accessLog: access, stderr: stderr, opLog: oplog}
}

// client presents c (even when the server's certificate request names
// other CAs, as a misconfigured or hostile client would); nil presents
// none.
func (e *mtlsEnv) client(c *certtest.Cert, h2 bool, cache tls.ClientSessionCache) *http.Client {
	cfg := &tls.Config{RootCAs: e.serverCA, ServerName: "localhost", ClientSessionCache: cache,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c == nil {
				return &tls.Certificate{}, nil
			}
			tc := c.TLS()
			return &tc, nil
		}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: !h2}}
}

func (e *mtlsEnv) probe(t testing.TB, cl *http.Client) (probeAnswer, error) {
	t.Helper()
	res, err := cl.Get("https://" + e.addr + "/probe")
	if err != nil {
		return probeAnswer{}, err
	}
	defer res.Body.Close()
	var ans probeAnswer
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil {
		t.Fatalf("probe answer: %v", err)
	}
	return ans, nil
}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClientCertReasons: every reason code, through real handshakes, in
// request mode (the request proceeds; the mtls method refuses with the
// reason) and require mode (the handshake fails, except for a verified
// certificate and, beyond the handshake, cert_not_allowed).
func TestClientCertReasons(t *testing.T) {
	for _, mode := range []string{"request", "require"} {
		t.Run(mode, func(t *testing.T) {
			e := newMTLSEnv(t, mode, nil, mtls.Config{TrustDomains: []string{"partner.example"}})
			p := e.partners
			good := p.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
			revoked := p.Issue(t, certtest.Options{CN: "leaked"})
			certtest.Replace(t, e.dir, "partners.crl", p.CRL(t, time.Now().Add(time.Hour), revoked.Cert))
			if err := e.Reload(); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for _, tc := range []struct {
				name string
				cert *certtest.Cert
				want string // reason, or "subject:…"
			}{
				{"verified", good, "subject:spiffe://partner.example/billing"},
				{"cert_missing", nil, "none"},
				{"cert_untrusted", certtest.NewCA(t, "stranger").Issue(t, certtest.Options{CN: "x"}), string(clientcert.ReasonUntrusted)},
				{"cert_expired", p.Issue(t, certtest.Options{CN: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}), string(clientcert.ReasonExpired)},
				{"cert_revoked", revoked, string(clientcert.ReasonRevoked)},
				{"cert_not_allowed", p.Issue(t, certtest.Options{CN: "evil", URIs: []string{"spiffe://evil.example/billing"}}), string(clientcert.ReasonNotAllowed)},
				{"weak RSA key", p.Issue(t, certtest.Options{CN: "weak", Key: rsaKey(t, 1024)}), string(clientcert.ReasonUntrusted)},
			} {
				for _, h2 := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/h2=%v", tc.name, h2), func(t *testing.T) {
						ans, err := e.probe(t, e.client(tc.cert, h2, nil))
						handshakeOnly := mode == "require" && !strings.HasPrefix(tc.want, "subject:") && tc.want != string(clientcert.ReasonNotAllowed)
						if handshakeOnly {
							if err == nil {
								t.Fatalf("require mode served %+v", ans)
							}
							return
						}
						if err != nil {
							t.Fatal(err)
						}
						if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; ans.Proto != want {
							t.Fatalf("proto %s", ans.Proto)
						}
						got := ans.Reason
						if ans.Subject != "" {
							got = "subject:" + ans.Subject
						}
						if got != tc.want {
							t.Fatalf("got %q, want %q", got, tc.want)
						}
						if tc.cert != nil && ans.CredentialID != clientcert.Thumbprint(tc.cert.Cert.Raw) {
							t.Fatalf("credential id %q", ans.CredentialID)
						}
					})
				}
			}
			// Public routes share the listener: without a certificate in
			// request mode, with one in both modes.
			for _, c := range []*certtest.Cert{nil, good} {
				if c == nil && mode == "require" {
					continue
				}
				res, err := e.client(c, false, nil).Get("https://" + e.addr + "/public")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("public route: %d", res.StatusCode)
				}
			}
			if mode == "require" {
				waitFor(t, "the refusal in the log", 5*time.Second, func() bool {
					s := e.opLog.String()
					return strings.Contains(s, "TLS handshake refused") && strings.Contains(s, `"reason":"cert_revoked"`) && strings.Contains(s, `"reason":"cert_missing"`)
				})
			}
		})
	}
}

// TestClientCertInjectedClock: the gateway's clock, not the wall clock,
// decides validity.
func TestClientCertInjectedClock(t *testing.T) {
	var at atomic.Pointer[time.Time]
	now := time.Now()
	at.Store(&now)
	e := newMTLSEnv(t, "request", func() time.Time { return *at.Load() }, mtls.Config{})
	c := e.partners.Issue(t, certtest.Options{CN: "svc"})
	later := c.Cert.NotAfter.Add(time.Minute)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{{now, ""}, {later, string(clientcert.ReasonExpired)}} {
		at.Store(&tc.at)
		ans, err := e.probe(t, e.client(c, false, nil))
		if err != nil {
			t.Fatal(err)
		}
		if ans.Reason != tc.want {
			t.Fatalf("at %s: %+v", tc.at, ans)
		}
	}
}

// TestClientCertReloadUnderTraffic: CA and CRL files swapped and reloaded
// while clients keep connecting; no handshake fails, and new connections
// see the new files. A broken CA file is refused and the old CAs keep
// serving.
func TestClientCertReloadUnderTraffic(t *testing.T) {
	e := newMTLSEnv(t, "require", nil, mtls.Config{})
	steady := e.partners.Issue(t, certtest.Options{CN: "steady"})
	newCA := certtest.NewCA(t, "partners-2027")
	next := newCA.Issue(t, certtest.Options{CN: "next"})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := e.client(steady, false, nil) // a new connection per request
			for ctx.Err() == nil {
				ans, err := e.probe(t, cl)
				if err != nil || ans.Subject != "steady" {
					failed.Add(1)
					msg := fmt.Sprintf("%v %+v", err, ans)
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	reload := func() {
		t.Helper()
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(n int64) {
		target := ok.Load() + n
		waitFor(t, "traffic", 10*time.Second, func() bool { return ok.Load() >= target })
	}
	wait(5)
	if _, err := e.probe(t, e.client(next, false, nil)); err == nil {
		t.Fatal("the new CA's certificate was accepted before the reload")
	}
	// Add the new CA next to the old one (rotation, step 1).
	certtest.Replace(t, e.dir, "ca.pem", append(e.partners.PEM(), newCA.PEM()...))
	reload()
	wait(5)
	if ans, err := e.probe(t, e.client(next, false, nil)); err != nil || ans.Subject != "next" {
		t.Fatalf("after adding the CA: %+v %v", ans, err)
	}
	// Revoke the new CA's certificate (crl_files lists one file: it
	// holds both CAs' CRLs now).
	both := append(e.partners.CRL(t, time.Now().Add(time.Hour)), newCA.CRL(t, time.Now().Add(time.Hour), next.Cert)...)
	certtest.Replace(t, e.dir, "partners.crl", both)
	reload()
	wait(5)
	if _, err := e.probe(t, e.client(next, false, nil)); err == nil {
		t.Fatal("a revoked certificate was accepted after the CRL reload")
	}
	// A broken CA file: the reload is refused, the old CAs keep serving.
	certtest.Replace(t, e.dir, "ca.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "client_certificates") {
		t.Fatalf("reload with a broken CA file: %v", err)
	}
	wait(5)
	cancel()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %s", n, n+ok.Load(), *firstErr.Load())
	}
	// Nothing is left behind: connections are forgotten at their
	// ClientHello, and one that closes before saying hello when it closes.
	for range 3 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	pending := &e.listeners[0].clientCerts.pending
	waitFor(t, "no pending connection", 5*time.Second, func() bool {
		n := 0
		pending.Range(func(any, any) bool { n++; return true })
		return n == 0
	})
}

// TestClientCertSessionResumption: a resumed session is checked again
// against the current CRL.
func TestClientCertSessionResumption(t *testing.T) {
	e := newMTLSEnv(t, "request", nil, mtls.Config{})
	c := e.partners.Issue(t, certtest.Options{CN: "svc"})
	cache := tls.NewLRUClientSessionCache(8)
	dial := func() (tls.ConnectionState, probeAnswer) {
		t.Helper()
		cl := e.client(c, false, cache)
		res, err := cl.Get("https://" + e.addr + "/probe")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		cs := *res.TLS
		var ans probeAnswer
		if err := json.NewDecoder(res.Body).Decode(&ans); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		return cs, ans
	}
	if cs, ans := dial(); cs.DidResume || ans.Subject != "svc" {
		t.Fatalf("first: resumed %v, %+v", cs.DidResume, ans)
	}
	if cs, ans := dial(); !cs.DidResume || ans.Subject != "svc" {
		t.Fatalf("second: resumed %v, %+v", cs.DidResume, ans)
	}
	certtest.Replace(t, e.dir, "partners.crl", e.partners.CRL(t, time.Now().Add(time.Hour), c.Cert))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if cs, ans := dial(); !cs.DidResume || ans.Reason != string(clientcert.ReasonRevoked) {
		t.Fatalf("after revocation: resumed %v, %+v", cs.DidResume, ans)
	}
}

// TestClientCertConfigErrors: a listener whose CA files cannot be loaded
// does not start.
func TestClientCertConfigErrors(t *testing.T) {
	dir := t.TempDir()
	srvCA := certtest.NewCA(t, "server-ca")
	srv := srvCA.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, Server: true})
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	certtest.Write(t, dir, "leaf.pem", srv.PEM())
	for _, tc := range []struct{ block, want string }{
		{"{ca_files: [" + dir + "/leaf.pem]}", "not a CA certificate"},
		{"{ca_files: []}", "ca_files"},
		{"{ca_files: [" + dir + "/nope.pem]}", "no such file"},
		{"{ca_files: [" + dir + "/server.pem], min_rsa_bits: 1024}", "min_rsa_bits"},
		{"{ca_files: [" + dir + "/server.pem], signature_algorithms: [SHA1-RSA]}", "signature_algorithms[0]"},
	} {
		y := fmt.Sprintf("listeners:\n  - address: \"127.0.0.1:0\"\n    tls:\n      cert_file: %[1]s/server.pem\n      key_file: %[1]s/server.key\n      client_certificates: %[2]s\nadmin: {disabled: true}\nroutes:\n", dir, tc.block) +
			routeYAML("echo", "{path_prefix: /}", `{targets: ["builtin:echo"]}`)
		_, _, err := config.Parse("gatehouse.yaml", []byte(y), os.LookupEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "listeners[0].tls.client_certificates") {
			t.Errorf("%s: got %v, want an error at listeners[0].tls.client_certificates containing %q", tc.block, err, tc.want)
		}
	}
}

// BenchmarkMTLSHandshake: a full mutual-TLS handshake (TLS 1.3, P-256,
// chain verification, CRL lookup) and a resumed one (PSK; the chain is
// checked again), each with one HTTP/1.1 request on the connection; and,
// for comparison, a full handshake on the same listener by a client that
// presents no certificate.
func BenchmarkMTLSHandshake(b *testing.B) {
	for _, bc := range []struct {
		name              string
		resumed, withCert bool
	}{{"full", false, true}, {"resumed", true, true}, {"full-without-certificate", false, false}} {
		resumed := bc.resumed
		b.Run(bc.name, func(b *testing.B) {
			e := newMTLSEnv(b, "request", nil, mtls.Config{})
			c := e.partners.Issue(b, certtest.Options{CN: "svc", URIs: []string{"spiffe://partner.example/svc"}})
			var cache tls.ClientSessionCache
			if resumed {
				cache = tls.NewLRUClientSessionCache(8)
			}
			cfg := &tls.Config{RootCAs: e.serverCA, ServerName: "localhost", ClientSessionCache: cache}
			want := `"Subject":"spiffe://partner.example/svc"`
			if bc.withCert {
				cfg.Certificates = []tls.Certificate{c.TLS()}
			} else {
				want = `"Reason":"none"`
			}
			req := []byte("GET /probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			round := func() bool {
				conn, err := tls.Dial("tcp", e.addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(conn)
				if err != nil || !strings.Contains(string(body), want) {
					b.Fatalf("%v %s", err, body)
				}
				return conn.ConnectionState().DidResume
			}
			round() // primes the session cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if round() != resumed {
					b.Fatalf("resumed != %v", resumed)
				}
			}
		})
	}
}
