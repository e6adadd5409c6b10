package mtls_test

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/authntest"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// fixture verifies certificates of one CA, as a listener would at the
// handshake, and makes requests carrying the results.
type fixture struct {
	ca *certtest.CA
	v  *clientcert.Verifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca := certtest.NewCA(t, "partners")
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{certtest.Write(t, t.TempDir(), "ca.pem", ca.PEM())}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ca: ca, v: v}
}

func (f *fixture) request(c *certtest.Cert) func() *http.Request {
	var res *clientcert.Result
	if c == nil {
		res = f.v.Verify(nil)
	} else {
		res = f.v.Verify(append([]*x509.Certificate{c.Cert}, c.Chain...))
	}
	return func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		return r.WithContext(clientcert.NewContext(r.Context(), res))
	}
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	stranger := certtest.NewCA(t, "stranger")
	a, err := mtls.New(mtls.Config{TrustDomains: []string{"partner.example"}})
	if err != nil {
		t.Fatal(err)
	}
	good := f.ca.Issue(t, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	authntest.Run(t, a, authntest.Cases{
		None: f.request(nil),
		Good: f.request(good),
		Bad: []func() *http.Request{
			f.request(stranger.Issue(t, certtest.Options{CN: "x"})),
			f.request(f.ca.Issue(t, certtest.Options{CN: "old", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})),
			f.request(f.ca.Issue(t, certtest.Options{CN: "evil", URIs: []string{"spiffe://evil.example/billing"}})),
		},
	})
	// A listener without client certificates: not responsible either.
	if id, err := a.Authenticate(httptest.NewRequest("GET", "/", nil)); id != nil || !errors.Is(err, authn.ErrNoCredential) {
		t.Fatalf("plain request: %v %v", id, err)
	}
}

func TestIdentity(t *testing.T) {
	f := newFixture(t)
	c := f.ca.Issue(t, certtest.Options{
		CN: "billing-svc", Org: []string{"Partner Ltd"}, OU: []string{"payments", "ops"},
		URIs: []string{"spiffe://partner.example/billing", "https://partner.example/about"},
		DNS:  []string{"billing.partner.example"}, Emails: []string{"ops@partner.example"},
	})
	a, err := mtls.New(mtls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(f.request(c)())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "spiffe://partner.example/billing" || id.Method != identity.MethodMTLS ||
		id.CredentialID != clientcert.Thumbprint(c.Cert.Raw) || !id.ExpiresAt.Equal(c.Cert.NotAfter) || id.Issuer != "CN=partners" {
		t.Fatalf("identity %+v", id)
	}
	want := map[string]any{
		clientcert.ClaimSPIFFEID:           "spiffe://partner.example/billing",
		clientcert.ClaimTrustDomain:        "partner.example",
		clientcert.ClaimCommonName:         "billing-svc",
		clientcert.ClaimOrganization:       []string{"Partner Ltd"},
		clientcert.ClaimOrganizationalUnit: []string{"ops", "payments"}, // a DER SET: sorted
		clientcert.ClaimDNSSANs:            []string{"billing.partner.example"},
		clientcert.ClaimEmailSANs:          []string{"ops@partner.example"},
		clientcert.ClaimURISANs:            []string{"spiffe://partner.example/billing", "https://partner.example/about"},
		clientcert.ClaimThumbprint:         id.CredentialID,
		clientcert.ClaimIssuerDN:           "CN=partners",
		clientcert.ClaimNotAfter:           c.Cert.NotAfter.UTC().Format(time.RFC3339),
		clientcert.ClaimSerial:             c.Cert.SerialNumber.Text(16),
	}
	for k, v := range want {
		got := id.Claims[k]
		if gs, ok := got.([]string); ok {
			if !slices.Equal(gs, v.([]string)) {
				t.Errorf("claim %s = %v, want %v", k, got, v)
			}
		} else if got != v {
			t.Errorf("claim %s = %v, want %v", k, got, v)
		}
	}
	if !strings.Contains(id.Claims[clientcert.ClaimSubjectDN].(string), "CN=billing-svc") {
		t.Errorf("subject DN %v", id.Claims[clientcert.ClaimSubjectDN])
	}
}

func TestSubjectAndAllowLists(t *testing.T) {
	f := newFixture(t)
	spiffe := f.ca.Issue(t, certtest.Options{CN: "cn-billing", URIs: []string{"spiffe://partner.example/billing/eu"}, DNS: []string{"billing.partner.example"}, Emails: []string{"b@partner.example"}})
	otherTD := f.ca.Issue(t, certtest.Options{CN: "cn-x", URIs: []string{"spiffe://other.example/billing/eu"}})
	dnsOnly := f.ca.Issue(t, certtest.Options{CN: "cn-dns", DNS: []string{"api.partner.example"}})
	cnOnly := f.ca.Issue(t, certtest.Options{CN: "cn-only"})
	nothing := f.ca.Issue(t, certtest.Options{})
	twoIDs := f.ca.Issue(t, certtest.Options{CN: "two", URIs: []string{"spiffe://partner.example/a", "spiffe://partner.example/b"}})
	badID := f.ca.Issue(t, certtest.Options{CN: "bad", URIs: []string{"spiffe://Partner.Example/a"}})
	dotID := f.ca.Issue(t, certtest.Options{CN: "dot", URIs: []string{"spiffe://partner.example/billing/../admin"}})
	prefixTrick := f.ca.Issue(t, certtest.Options{CN: "trick", URIs: []string{"spiffe://partner.example/billing-evil"}})
	for _, tc := range []struct {
		name    string
		cfg     mtls.Config
		cert    *certtest.Cert
		subject string // "" expects cert_not_allowed
	}{
		{"default order picks SPIFFE", mtls.Config{}, spiffe, "spiffe://partner.example/billing/eu"},
		{"dns first", mtls.Config{SubjectFrom: []string{"dns_san", "spiffe_id"}}, spiffe, "billing.partner.example"},
		{"email", mtls.Config{SubjectFrom: []string{"email_san"}}, spiffe, "b@partner.example"},
		{"common name", mtls.Config{SubjectFrom: []string{"common_name"}}, spiffe, "cn-billing"},
		{"falls through to DNS", mtls.Config{}, dnsOnly, "api.partner.example"},
		{"falls through to CN", mtls.Config{}, cnOnly, "cn-only"},
		{"no subject source present", mtls.Config{SubjectFrom: []string{"spiffe_id", "dns_san"}}, cnOnly, ""},
		{"empty certificate", mtls.Config{}, nothing, ""},
		{"trust domain listed", mtls.Config{TrustDomains: []string{"partner.example"}}, spiffe, "spiffe://partner.example/billing/eu"},
		{"trust domain not listed", mtls.Config{TrustDomains: []string{"partner.example"}}, otherTD, ""},
		{"trust domain checked whatever the subject source", mtls.Config{TrustDomains: []string{"partner.example"}, SubjectFrom: []string{"common_name"}}, otherTD, ""},
		{"no SPIFFE ID, trust domains listed", mtls.Config{TrustDomains: []string{"partner.example"}}, dnsOnly, "api.partner.example"},
		{"exact SPIFFE ID", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/billing/eu"}}, spiffe, "spiffe://partner.example/billing/eu"},
		{"exact SPIFFE ID, other", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/billing"}}, spiffe, ""},
		{"prefix", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/billing/*"}}, spiffe, "spiffe://partner.example/billing/eu"},
		{"prefix is per segment", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/billing/*"}}, prefixTrick, ""},
		{"whole trust domain", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/*"}}, spiffe, "spiffe://partner.example/billing/eu"},
		{"whole trust domain, other", mtls.Config{SPIFFEIDs: []string{"spiffe://partner.example/*"}}, otherTD, ""},
		{"SPIFFE list matches whatever the subject", mtls.Config{SubjectFrom: []string{"common_name"}, SPIFFEIDs: []string{"spiffe://partner.example/*"}}, spiffe, "cn-billing"},
		{"subjects list", mtls.Config{Subjects: []string{"api.partner.example"}}, dnsOnly, "api.partner.example"},
		{"subjects list, other", mtls.Config{Subjects: []string{"api.partner.example"}}, cnOnly, ""},
		{"either list", mtls.Config{Subjects: []string{"cn-only"}, SPIFFEIDs: []string{"spiffe://partner.example/*"}}, cnOnly, "cn-only"},
		{"two SPIFFE IDs", mtls.Config{}, twoIDs, ""},
		{"malformed SPIFFE ID", mtls.Config{SubjectFrom: []string{"common_name"}}, badID, ""},
		{"dot segment SPIFFE ID", mtls.Config{}, dotID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := mtls.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			id, err := a.Authenticate(f.request(tc.cert)())
			if tc.subject == "" {
				var fail *authn.Failure
				if !errors.As(err, &fail) || fail.Reason != mtls.ReasonCertNotAllowed || fail.CredentialID == "" || id != nil {
					t.Fatalf("got %+v, %v; want cert_not_allowed", id, err)
				}
				return
			}
			if err != nil || id.Subject != tc.subject {
				t.Fatalf("got %+v, %v; want subject %q", id, err, tc.subject)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mtls.Config
		want []string // paths
	}{
		{"zero", mtls.Config{}, nil},
		{"full", mtls.Config{SubjectFrom: []string{"spiffe_id", "common_name"}, TrustDomains: []string{"partner.example"}, Subjects: []string{"x"}, SPIFFEIDs: []string{"spiffe://partner.example/a", "spiffe://partner.example/*"}}, nil},
		{"unknown source", mtls.Config{SubjectFrom: []string{"uri_san"}}, []string{"subject_from[0]"}},
		{"duplicate source", mtls.Config{SubjectFrom: []string{"dns_san", "dns_san"}}, []string{"subject_from[1]"}},
		{"bad trust domain", mtls.Config{TrustDomains: []string{"Partner.Example", "spiffe://a/b", "ok.example"}}, []string{"trust_domains[0]", "trust_domains[1]"}},
		{"empty subject", mtls.Config{Subjects: []string{""}}, []string{"subjects[0]"}},
		{"bad SPIFFE IDs", mtls.Config{SPIFFEIDs: []string{"https://a/b", "spiffe://a/b/", "spiffe://a", "spiffe://a/b/*"}}, []string{"spiffe_ids[0]", "spiffe_ids[1]", "spiffe_ids[2]"}},
		{"SPIFFE ID outside the trust domains", mtls.Config{TrustDomains: []string{"a.example"}, SPIFFEIDs: []string{"spiffe://b.example/x"}}, []string{"spiffe_ids[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := mtls.Validate(tc.cfg)
			var got []string
			for _, e := range errs {
				var fe *clientcert.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a FieldError", e)
				}
				got = append(got, fe.Path)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("paths %q, want %q (%v)", got, tc.want, errs)
			}
			if _, err := mtls.New(tc.cfg); (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

// TestChainMissingReason: on a route whose first method is mtls, no
// credential at all is cert_missing.
func TestChainMissingReason(t *testing.T) {
	f := newFixture(t)
	a, err := mtls.New(mtls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, all := range []bool{false, true} {
		chain := authn.Chain{Authenticators: []authn.Authenticator{a}, RequireAll: all}
		_, err := chain.Authenticate(f.request(nil)())
		var fail *authn.Failure
		if !errors.As(err, &fail) || fail.Reason != mtls.ReasonCertMissing || fail.Method != identity.MethodMTLS || !fail.IsMissing() {
			t.Fatalf("require_all=%v: %v", all, err)
		}
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	ca := certtest.NewCA(b, "partners")
	v, err := clientcert.Load(clientcert.Settings{CAFiles: []string{certtest.Write(b, b.TempDir(), "ca.pem", ca.PEM())}})
	if err != nil {
		b.Fatal(err)
	}
	c := ca.Issue(b, certtest.Options{CN: "billing", URIs: []string{"spiffe://partner.example/billing"}})
	res := v.Verify([]*x509.Certificate{c.Cert})
	a, err := mtls.New(mtls.Config{TrustDomains: []string{"partner.example"}, SPIFFEIDs: []string{"spiffe://partner.example/*"}})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(clientcert.NewContext(r.Context(), res))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
