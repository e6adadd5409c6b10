// Package certtest makes certificate authorities, client and server
// certificates and CRLs for tests, with crypto/x509. Keys are ECDSA P-256
// unless a test asks for another.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var serial atomic.Int64

// Options shape a certificate. Zero values: a fresh P-256 key, valid from
// an hour ago for a day, the issuer's default signature algorithm.
type Options struct {
	CN        string
	Org, OU   []string
	URIs      []string
	DNS       []string
	Emails    []string
	IPs       []net.IP
	NotBefore time.Time
	NotAfter  time.Time
	Key       crypto.Signer
	SigAlg    x509.SignatureAlgorithm
	// Server makes a server (serverAuth) certificate; default clientAuth.
	Server bool
}

// Cert is a certificate with its key and the chain above it (without the
// root).
type Cert struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate // intermediates, leaf's issuer first
}

// TLS is the tls.Certificate a client presents (leaf and intermediates).
func (c *Cert) TLS() tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, ic := range c.Chain {
		tc.Certificate = append(tc.Certificate, ic.Raw)
	}
	return tc
}

// PEM is the certificate (and chain) as PEM.
func (c *Cert) PEM() []byte {
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
	for _, ic := range c.Chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ic.Raw})...)
	}
	return out
}

// KeyPEM is the private key as PKCS#8 PEM.
func (c *Cert) KeyPEM(t testing.TB) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CA is a certificate authority.
type CA struct{ Cert }

// NewCA makes a self-signed root CA.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := P256(t)
	tmpl := caTemplate(cn)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert{Cert: c, Key: key}}
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// Intermediate makes an intermediate CA under ca.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	key := P256(t)
	der, err := x509.CreateCertificate(rand.Reader, caTemplate(cn), ca.Cert.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert{Cert: c, Key: key, Chain: append([]*x509.Certificate{ca.Cert.Cert}, ca.Chain...)}}
}

// Issue makes a certificate signed by ca.
func (ca *CA) Issue(t testing.TB, o Options) *Cert {
	t.Helper()
	key := o.Key
	if key == nil {
		key = P256(t)
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(24 * time.Hour)
	}
	eku := x509.ExtKeyUsageClientAuth
	if o.Server {
		eku = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(serial.Add(1)),
		Subject:            pkix.Name{CommonName: o.CN, Organization: o.Org, OrganizationalUnit: o.OU},
		NotBefore:          nb,
		NotAfter:           na,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{eku},
		DNSNames:           o.DNS,
		EmailAddresses:     o.Emails,
		IPAddresses:        o.IPs,
		SignatureAlgorithm: o.SigAlg,
	}
	for _, u := range o.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	if len(ca.Chain) > 0 { // ca is an intermediate: send it along
		chain = []*x509.Certificate{ca.Cert.Cert}
		chain = append(chain, ca.Chain[:len(ca.Chain)-1]...)
	}
	return &Cert{Cert: c, Key: key, Chain: chain}
}

// CRL is a PEM CRL of ca revoking serials, due for renewal at next.
func (ca *CA) CRL(t testing.TB, next time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	this := time.Now().Add(-time.Minute)
	if !next.After(this) {
		this = next.Add(-time.Minute)
	}
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(serial.Add(1)),
		ThisUpdate: this,
		NextUpdate: next,
	}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// P256 makes an ECDSA P-256 key.
func P256(t testing.TB) crypto.Signer {
	return ecKey(t, elliptic.P256())
}

// P384 makes an ECDSA P-384 key.
func P384(t testing.TB) crypto.Signer {
	return ecKey(t, elliptic.P384())
}

func ecKey(t testing.TB, c elliptic.Curve) crypto.Signer {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Write writes data to dir/name and returns the path.
func Write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Replace writes data to dir/name by rename, as a deployment tool does,
// so a concurrent reader sees the old or the new file, never half of one.
func Replace(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
