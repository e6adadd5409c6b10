package clientcert_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	inter := root.Intermediate(t, "issuing")
	other := certtest.NewCA(t, "stranger")
	now := time.Now()
	good := inter.Issue(t, certtest.Options{CN: "svc"})
	direct := root.Issue(t, certtest.Options{CN: "direct"})
	revoked := inter.Issue(t, certtest.Options{CN: "revoked"})
	revokedInter := root.Intermediate(t, "revoked-issuing")
	underRevoked := revokedInter.Issue(t, certtest.Options{CN: "under-revoked"})
	expired := inter.Issue(t, certtest.Options{CN: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future := inter.Issue(t, certtest.Options{CN: "future", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	expiredStranger := other.Issue(t, certtest.Options{CN: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	stranger := other.Issue(t, certtest.Options{CN: "stranger"})
	server := inter.Issue(t, certtest.Options{CN: "server", Server: true})
	weakRSA := inter.Issue(t, certtest.Options{CN: "weak", Key: rsaKey(t, 1024)})
	okRSA := inter.Issue(t, certtest.Options{CN: "rsa", Key: rsaKey(t, 2048)})
	sha384 := inter.Issue(t, certtest.Options{CN: "sha384", SigAlg: x509.ECDSAWithSHA384})
	underExpired := expiredIntermediate(t, root).Issue(t, certtest.Options{CN: "under-expired", NotBefore: now.Add(-72 * time.Hour)})

	caFile := certtest.Write(t, dir, "ca.pem", root.PEM())
	interFile := certtest.Write(t, dir, "inter.pem", inter.PEM()[:len(inter.PEM())-len(root.PEM())])
	crlInter := certtest.Write(t, dir, "inter.crl", inter.CRL(t, now.Add(time.Hour), revoked.Cert))
	crlRoot := certtest.Write(t, dir, "root.crl", root.CRL(t, now.Add(time.Hour), revokedInter.Cert.Cert))
	staleCRL := certtest.Write(t, dir, "stale.crl", root.CRL(t, now.Add(-time.Minute)))

	base := clientcert.Settings{CAFiles: []string{caFile}, CRLFiles: []string{crlRoot}}
	withInter := clientcert.Settings{CAFiles: []string{caFile, interFile}, CRLFiles: []string{crlRoot, crlInter}}
	for _, tc := range []struct {
		name string
		s    clientcert.Settings
		peer []*x509.Certificate
		want authn.Reason
	}{
		{"none presented", base, nil, clientcert.ReasonMissing},
		{"leaf and intermediate", base, chain(good), ""},
		{"issued by the root", base, chain(direct), ""},
		{"intermediate from the CA files", withInter, []*x509.Certificate{good.Cert}, ""},
		{"intermediate missing", base, []*x509.Certificate{good.Cert}, clientcert.ReasonUntrusted},
		{"other CA", base, chain(stranger), clientcert.ReasonUntrusted},
		{"self-signed root presented as leaf", base, []*x509.Certificate{other.Cert.Cert}, clientcert.ReasonUntrusted},
		{"server certificate", base, chain(server), clientcert.ReasonUntrusted},
		{"expired", base, chain(expired), clientcert.ReasonExpired},
		{"not yet valid", base, chain(future), clientcert.ReasonExpired},
		{"expired and untrusted is untrusted", base, chain(expiredStranger), clientcert.ReasonUntrusted},
		{"expired intermediate", base, chain(underExpired), clientcert.ReasonExpired},
		{"revoked leaf", withInter, chain(revoked), clientcert.ReasonRevoked},
		{"revoked intermediate", base, chain(underRevoked), clientcert.ReasonRevoked},
		{"stale CRL", clientcert.Settings{CAFiles: []string{caFile}, CRLFiles: []string{staleCRL}}, chain(good), clientcert.ReasonUntrusted},
		{"RSA 1024 refused", base, chain(weakRSA), clientcert.ReasonUntrusted},
		{"RSA 2048 accepted", base, chain(okRSA), ""},
		{"EC 256 under a 384 minimum", clientcert.Settings{CAFiles: []string{caFile}, MinECBits: 384}, chain(good), clientcert.ReasonUntrusted},
		{"RSA 2048 under a 3072 minimum", clientcert.Settings{CAFiles: []string{caFile}, MinRSABits: 3072}, chain(okRSA), clientcert.ReasonUntrusted},
		{"signature algorithm not allowed", clientcert.Settings{CAFiles: []string{caFile}, SignatureAlgorithms: []x509.SignatureAlgorithm{x509.ECDSAWithSHA384}}, chain(good), clientcert.ReasonUntrusted},
		{"too many certificates", base, append(chain(good), repeat(inter.Cert.Cert, clientcert.MaxChain)...), clientcert.ReasonUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := clientcert.Load(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			res := v.Verify(tc.peer)
			if res.Reason != tc.want {
				t.Fatalf("reason %q (%v), want %q", res.Reason, res.Err, tc.want)
			}
			if (tc.want == "") != res.Verified() || (tc.want == "") != (res.Leaf() != nil) {
				t.Fatalf("verified %v with reason %q", res.Verified(), res.Reason)
			}
			if len(tc.peer) > 0 && res.Thumbprint != clientcert.Thumbprint(tc.peer[0].Raw) {
				t.Fatalf("thumbprint %q", res.Thumbprint)
			}
		})
	}
	// The signature algorithm list admits what it names.
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{caFile}, SignatureAlgorithms: []x509.SignatureAlgorithm{x509.ECDSAWithSHA384}})
	if err != nil {
		t.Fatal(err)
	}
	// sha384's issuer signed the intermediate with SHA-256: allow both.
	if res := v.Verify(chain(sha384)); res.Reason != clientcert.ReasonUntrusted {
		t.Fatalf("intermediate signed with ECDSA-SHA256 passed a SHA-384-only list: %q", res.Reason)
	}
	v, err = clientcert.Load(clientcert.Settings{CAFiles: []string{caFile}, SignatureAlgorithms: []x509.SignatureAlgorithm{x509.ECDSAWithSHA384, x509.ECDSAWithSHA256}})
	if err != nil {
		t.Fatal(err)
	}
	if res := v.Verify(chain(sha384)); !res.Verified() {
		t.Fatalf("refused: %q %v", res.Reason, res.Err)
	}
}

// TestInjectedClock: validity follows Settings.Now, not the wall clock.
func TestInjectedClock(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	c := root.Issue(t, certtest.Options{CN: "svc"})
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	for _, tc := range []struct {
		name string
		at   time.Time
		want authn.Reason
	}{
		{"now", time.Now(), ""},
		{"at not_after", c.Cert.NotAfter, ""},
		{"a second after not_after", c.Cert.NotAfter.Add(time.Second), clientcert.ReasonExpired},
		{"before not_before", c.Cert.NotBefore.Add(-time.Second), clientcert.ReasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{ca}, Now: func() time.Time { return tc.at }})
			if err != nil {
				t.Fatal(err)
			}
			if res := v.Verify(chain(c)); res.Reason != tc.want {
				t.Fatalf("reason %q (%v), want %q", res.Reason, res.Err, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	root := certtest.NewCA(t, "root")
	other := certtest.NewCA(t, "other")
	inter := root.Intermediate(t, "inter")
	leaf := root.Issue(t, certtest.Options{CN: "leaf"})
	ca := certtest.Write(t, dir, "ca.pem", root.PEM())
	onlyInter := certtest.Write(t, dir, "inter.pem", inter.PEM()[:len(inter.PEM())-len(root.PEM())])
	leafFile := certtest.Write(t, dir, "leaf.pem", leaf.PEM())
	keyFile := certtest.Write(t, dir, "key.pem", leaf.KeyPEM(t))
	empty := certtest.Write(t, dir, "empty.pem", nil)
	foreignCRL := certtest.Write(t, dir, "foreign.crl", other.CRL(t, time.Now().Add(time.Hour)))
	garbageCRL := certtest.Write(t, dir, "garbage.crl", []byte("not a crl"))
	for _, tc := range []struct {
		name string
		s    clientcert.Settings
		want string
	}{
		{"no CA file", clientcert.Settings{}, "no CA file"},
		{"missing file", clientcert.Settings{CAFiles: []string{dir + "/nope.pem"}}, "no such file"},
		{"empty file", clientcert.Settings{CAFiles: []string{empty}}, "no PEM certificate"},
		{"a key", clientcert.Settings{CAFiles: []string{keyFile}}, "unexpected PEM block"},
		{"a leaf", clientcert.Settings{CAFiles: []string{leafFile}}, "not a CA certificate"},
		{"no anchor", clientcert.Settings{CAFiles: []string{onlyInter}}, "no self-signed trust anchor"},
		{"CRL of another CA", clientcert.Settings{CAFiles: []string{ca}, CRLFiles: []string{foreignCRL}}, "not signed by a certificate of the CA files"},
		{"garbage CRL", clientcert.Settings{CAFiles: []string{ca}, CRLFiles: []string{garbageCRL}}, "garbage.crl"},
		{"bad mode", clientcert.Settings{CAFiles: []string{ca}, Mode: "optional"}, "mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clientcert.Load(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSignatureAlgorithmNames(t *testing.T) {
	for _, n := range clientcert.SignatureAlgorithmNames() {
		if a, ok := clientcert.ParseSignatureAlgorithm(n); !ok || a.String() != n {
			t.Errorf("%s does not round-trip", n)
		}
	}
	for _, n := range []string{"SHA1-RSA", "ECDSA-SHA1", "MD5-RSA", "", "sha256-rsa"} {
		if _, ok := clientcert.ParseSignatureAlgorithm(n); ok {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := t.Context()
	if clientcert.FromContext(ctx) != nil {
		t.Fatal("a context without a slot has a result")
	}
	slot := &clientcert.Slot{}
	ctx = clientcert.WithSlot(ctx, slot)
	if r := clientcert.FromContext(ctx); r == nil || r.Reason != clientcert.ReasonMissing {
		t.Fatalf("an unfilled slot: %+v", r)
	}
	want := &clientcert.Result{Reason: clientcert.ReasonRevoked, Err: errors.New("x")}
	slot.Set(want)
	if clientcert.FromContext(ctx) != want {
		t.Fatal("the filled slot's result is not returned")
	}
}

func chain(c *certtest.Cert) []*x509.Certificate {
	return append([]*x509.Certificate{c.Cert}, c.Chain...)
}

func repeat(c *x509.Certificate, n int) []*x509.Certificate {
	out := make([]*x509.Certificate, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// expiredIntermediate is an intermediate of root that expired an hour ago.
func expiredIntermediate(t *testing.T, root *certtest.CA) *certtest.CA {
	t.Helper()
	key := certtest.P256(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "expired-issuing"},
		NotBefore: time.Now().Add(-96 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert.Cert, key.Public(), root.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certtest.CA{Cert: certtest.Cert{Cert: c, Key: key, Chain: []*x509.Certificate{root.Cert.Cert}}}
}
