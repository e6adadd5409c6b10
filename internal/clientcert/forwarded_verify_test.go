package clientcert_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

func leafXFCC(c *certtest.Cert) string {
	sum := sha256.Sum256(c.Cert.Raw)
	return "Hash=" + hex.EncodeToString(sum[:]) + `;Cert="` +
		url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}))) + `"`
}

// TestVerifyForwarded: the forwarded certificate is verified with the
// verifier's own clock and CRLs, whatever the proxy said.
func TestVerifyForwarded(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	good := root.Issue(t, certtest.Options{CN: "svc", URIs: []string{"spiffe://partner.example/svc"}})
	revoked := root.Issue(t, certtest.Options{CN: "revoked"})
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	crl := certtest.Write(t, dir, "ca.crl", root.CRL(t, time.Now().Add(time.Hour), revoked.Cert))
	var now time.Time
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}, CRLFiles: []string{crl}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		format string
		values []string
		at     time.Time
		want   authn.Reason
	}{
		{"xfcc", clientcert.FormatXFCC, []string{leafXFCC(good)}, time.Now(), ""},
		{"pem", clientcert.FormatPEM, []string{url.PathEscape(string(good.PEM()))}, time.Now(), ""},
		{"the gateway's clock: expired by now", clientcert.FormatXFCC, []string{leafXFCC(good)}, time.Now().Add(48 * time.Hour), clientcert.ReasonExpired},
		{"revoked", clientcert.FormatXFCC, []string{leafXFCC(revoked)}, time.Now(), clientcert.ReasonRevoked},
		{"none", clientcert.FormatXFCC, nil, time.Now(), clientcert.ReasonMissing},
		{"blank", clientcert.FormatPEM, []string{"  "}, time.Now(), clientcert.ReasonMissing},
		{"twice", clientcert.FormatXFCC, []string{leafXFCC(good), leafXFCC(good)}, time.Now(), clientcert.ReasonForwardedInvalid},
		{"xfcc read as pem", clientcert.FormatPEM, []string{leafXFCC(good)}, time.Now(), clientcert.ReasonForwardedInvalid},
		{"unknown format", "json", []string{leafXFCC(good)}, time.Now(), clientcert.ReasonForwardedInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = tc.at
			res := v.VerifyForwarded(tc.format, tc.values)
			if res.Reason != tc.want || res.Verified() != (tc.want == "") {
				t.Fatalf("reason %q (%v), want %q", res.Reason, res.Err, tc.want)
			}
		})
	}
}

// TestResultXFCC: what the gateway forwards reads back, with our parser,
// as the certificate it verified.
func TestResultXFCC(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	c := root.Issue(t, certtest.Options{CN: `a "quoted", name; x=y`, URIs: []string{"spiffe://partner.example/svc"}, DNS: []string{"svc.partner.example"}})
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}})
	if err != nil {
		t.Fatal(err)
	}
	if (&clientcert.Result{}).XFCC() != "" {
		t.Fatal("an unverified result renders an XFCC element")
	}
	res := v.Verify([]*x509.Certificate{c.Cert})
	s := res.XFCC()
	els, err := clientcert.ParseXFCC(s)
	if err != nil || len(els) != 1 {
		t.Fatalf("%q: %d elements, %v", s, len(els), err)
	}
	el := els[0]
	sum := sha256.Sum256(c.Cert.Raw)
	if el.Cert == nil || !el.Cert.Equal(c.Cert) || el.Hash != hex.EncodeToString(sum[:]) || el.Subject != c.Cert.Subject.String() ||
		len(el.URI) != 1 || el.URI[0] != "spiffe://partner.example/svc" || len(el.DNS) != 1 || el.DNS[0] != "svc.partner.example" {
		t.Fatalf("element %+v", el)
	}
	// Fields that cannot be carried are left out, never garbled.
	for _, cn := range []string{"ends with a backslash \\", "line\nbreak"} {
		odd := root.Issue(t, certtest.Options{CN: cn, DNS: []string{"ok.example"}})
		res := v.Verify([]*x509.Certificate{odd.Cert})
		els, err := clientcert.ParseXFCC(res.XFCC())
		if err != nil || len(els) != 1 || els[0].Subject != "" || !els[0].Cert.Equal(odd.Cert) || len(els[0].DNS) != 1 {
			t.Fatalf("CN %q: %q: %v", cn, res.XFCC(), err)
		}
	}
	// And the forwarded-certificate path reads it as the same certificate.
	if again := v.VerifyForwarded(clientcert.FormatXFCC, []string{s}); !again.Verified() || again.Thumbprint != res.Thumbprint {
		t.Fatalf("read back: %q %v", again.Reason, again.Err)
	}
}

// FuzzVerifyForwarded: whatever a trusted proxy sends, the answer is a
// result (never nil, never a panic), and a verified one is a chain that
// ends at the one trust anchor.
func FuzzVerifyForwarded(f *testing.F) {
	dir := f.TempDir()
	root := certtest.NewCA(f, "root")
	good := root.Issue(f, certtest.Options{CN: "svc"})
	ca := certtest.Write(f, dir, "ca.pem", root.PEM())
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leafXFCC(good), true)
	f.Add(leafXFCC(good)+","+leafXFCC(good), true)
	f.Add(url.PathEscape(string(good.PEM())), false)
	f.Add(`Cert="%zz"`, true)
	f.Fuzz(func(t *testing.T, v1 string, xfcc bool) {
		format := clientcert.FormatPEM
		if xfcc {
			format = clientcert.FormatXFCC
		}
		res := v.VerifyForwarded(format, []string{v1})
		if res == nil {
			t.Fatal("nil result")
		}
		if res.Verified() && !res.Chain[len(res.Chain)-1].Equal(root.Cert.Cert) {
			t.Fatal("verified without the anchor")
		}
	})
}

// BenchmarkVerifyForwarded: what a request with a forwarded certificate
// costs (parse, chain verification with an intermediate, CRL lookups),
// and with the cache the gateway keeps (the same header again).
func BenchmarkVerifyForwarded(b *testing.B) {
	dir := b.TempDir()
	root := certtest.NewCA(b, "root")
	inter := root.Intermediate(b, "issuing")
	c := inter.Issue(b, certtest.Options{CN: "svc", URIs: []string{"spiffe://partner.example/svc"}})
	ca := certtest.Write(b, dir, "ca.pem", root.PEM())
	crl := certtest.Write(b, dir, "ca.crl", inter.CRL(b, time.Now().Add(time.Hour)))
	certtest.Write(b, dir, "ca.pem", append(root.PEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Cert.Cert.Raw})...))
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}, CRLFiles: []string{crl}})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, format, value string }{
		{"xfcc", clientcert.FormatXFCC, leafXFCC(c)},
		{"pem-chain", clientcert.FormatPEM, url.PathEscape(string(c.PEM()))},
	} {
		vals := []string{bc.value}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := v.VerifyForwarded(bc.format, vals); !res.Verified() {
					b.Fatal(res.Err)
				}
			}
		})
		b.Run(bc.name+"-cached", func(b *testing.B) {
			cache := clientcert.NewForwardedCache(v, 0)
			b.ReportAllocs()
			for b.Loop() {
				if res := cache.Verify(bc.format, vals); !res.Verified() {
					b.Fatal(res.Err)
				}
			}
		})
	}
}

// TestForwardedCache: a verified header is reused only while its verdict
// holds at the verifier's clock (certificate validity, CRL nextUpdate),
// refusals are never reused, and the cache stays within its size.
func TestForwardedCache(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	root := certtest.NewCA(t, "root")
	short := root.Issue(t, certtest.Options{CN: "short", NotAfter: start.Add(2 * time.Hour)})
	long := root.Issue(t, certtest.Options{CN: "long", NotAfter: start.Add(48 * time.Hour)})
	stranger := certtest.NewCA(t, "stranger").Issue(t, certtest.Options{CN: "x"})
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	crl := certtest.Write(t, dir, "ca.crl", root.CRL(t, start.Add(5*time.Hour)))
	now := start
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}, CRLFiles: []string{crl}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := clientcert.NewForwardedCache(v, 2)
	verify := func(cert *certtest.Cert) *clientcert.Result {
		return c.Verify(clientcert.FormatXFCC, []string{leafXFCC(cert)})
	}
	first := verify(short)
	if !first.Verified() || verify(short) != first {
		t.Fatal("a verified header is not reused")
	}
	if a, b := verify(stranger), verify(stranger); a.Verified() || a == b {
		t.Fatal("a refusal was cached")
	}
	now = start.Add(3 * time.Hour) // past short's notAfter
	if res := verify(short); res.Reason != clientcert.ReasonExpired {
		t.Fatalf("after notAfter: %q", res.Reason)
	}
	longRes := verify(long)
	if !longRes.Verified() || verify(long) != longRes {
		t.Fatal("long not cached")
	}
	now = start.Add(6 * time.Hour) // past the CRL's nextUpdate
	if res := verify(long); res.Reason != clientcert.ReasonUntrusted {
		t.Fatalf("after the CRL's nextUpdate: %q", res.Reason)
	}
	now = start.Add(-2 * time.Hour) // before long's notBefore
	if res := verify(long); res.Reason != clientcert.ReasonExpired {
		t.Fatalf("before notBefore: %q", res.Reason)
	}
	now = start
	for i := range 5 {
		verify(root.Issue(t, certtest.Options{CN: fmt.Sprint("svc", i)}))
	}
	if n := c.Len(); n > 2 {
		t.Fatalf("%d entries, at most 2", n)
	}
}
