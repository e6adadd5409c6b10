package certbind

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// newCert makes a self-signed client certificate and its key.
func newCert(t *testing.T, cn string) tls.Certificate {
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

func TestThumbprint(t *testing.T) {
	c := newCert(t, "partner")
	sum := sha256.Sum256(c.Leaf.Raw)
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if got := Thumbprint(c.Leaf); got != want || len(got) != 43 {
		t.Fatalf("Thumbprint = %q, want %q", got, want)
	}
}

// peerOverTLS makes a real TLS handshake to a server that asks for a
// client certificate and returns the certificate the server saw (nil when
// the client sent none).
func peerOverTLS(t *testing.T, client *tls.Certificate) *x509.Certificate {
	t.Helper()
	seen := make(chan *x509.Certificate, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- PeerCertificate(r.TLS)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if client != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*client}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-seen
}

func TestCheckCertificateBindingOverTLS(t *testing.T) {
	partner, other := newCert(t, "partner"), newCert(t, "other")
	bound := map[string]any{Member: Thumbprint(partner.Leaf)}
	for _, c := range []struct {
		name     string
		cnf      map[string]any
		client   *tls.Certificate
		required bool
		reason   authn.Reason
		detail   string
	}{
		{name: "bound, right certificate", cnf: bound, client: &partner},
		{name: "bound, right certificate, required", cnf: bound, client: &partner, required: true},
		{name: "bound, other certificate", cnf: bound, client: &other, reason: ReasonTokenBindingMismatch, detail: "thumbprint"},
		{name: "bound, no certificate", cnf: bound, reason: ReasonTokenBindingMismatch, detail: "no_certificate"},
		{name: "unbound token passes", client: &partner},
		{name: "unbound token, no certificate", cnf: nil},
		{name: "cnf with only jkt passes", cnf: map[string]any{"jkt": "abc"}, client: &partner},
		{name: "unbound, required", client: &partner, required: true, reason: ReasonTokenBindingRequired, detail: "unbound"},
		{name: "x5t#S256 not a string", cnf: map[string]any{Member: 42}, client: &partner, reason: ReasonTokenBindingMismatch, detail: "malformed"},
		{name: "x5t#S256 empty", cnf: map[string]any{Member: ""}, client: &partner, reason: ReasonTokenBindingMismatch, detail: "malformed"},
		{name: "SHA-1 thumbprint is not accepted", cnf: map[string]any{Member: base64.RawURLEncoding.EncodeToString(partner.Leaf.Raw[:20])}, client: &partner, reason: ReasonTokenBindingMismatch, detail: "thumbprint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			peer := peerOverTLS(t, c.client)
			err := CheckCertificateBinding(c.cnf, peer, c.required)
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != c.reason || e.Detail != c.detail {
				t.Fatalf("CheckCertificateBinding: %v, want %s (%s)", err, c.reason, c.detail)
			}
			f := e.Failure(identity.MethodJWT)
			if f.Reason != c.reason || f.Description == "" || !errors.As(f, &e) {
				t.Fatalf("Failure = %+v", f)
			}
		})
	}
}

func TestPeerCertificateWithoutTLS(t *testing.T) {
	if PeerCertificate(nil) != nil || PeerCertificate(&tls.ConnectionState{}) != nil {
		t.Fatal("a certificate out of nothing")
	}
}
