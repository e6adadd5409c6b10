package clientcert_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

// escape URL-encodes PEM as nginx's $ssl_client_escaped_cert does (every
// reserved character escaped, '+' included).
func escape(pem []byte) string {
	return strings.ReplaceAll(url.QueryEscape(string(pem)), "+", "%20")
}

// escapeALB URL-encodes PEM as AWS ALB does: '+', '=' and '/' are left
// alone.
func escapeALB(pem []byte) string {
	r := strings.NewReplacer("%2B", "+", "%3D", "=", "%2F", "/", "+", "%20")
	return r.Replace(url.QueryEscape(string(pem)))
}

func TestParseEscapedPEM(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	inter := ca.Intermediate(t, "inter")
	leaf := inter.Issue(t, certtest.Options{CN: "svc"})
	one := leaf.Cert.Raw
	pemLeaf := leaf.PEM() // leaf and intermediate
	for _, tc := range []struct {
		name string
		in   string
		n    int // certificates; 0: an error
	}{
		{"nginx chain", escape(pemLeaf), 2},
		{"ALB chain", escapeALB(pemLeaf), 2},
		{"plain PEM", string(pemLeaf), 2},
		{"empty", "", 0},
		{"spaces", "%20%0A", 0},
		{"not PEM", "hello", 0},
		{"data before", "x" + escape(pemLeaf), 0},
		{"data after", escape(pemLeaf) + "x", 0},
		{"a key", escape(leaf.KeyPEM(t)), 0},
		{"bad escape", "%zz" + escape(pemLeaf), 0},
		{"malformed block then a good one", escape([]byte("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")) + escape(pemLeaf), 0},
		{"PEM headers", escape([]byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n" + string(pemLeaf[28:]))), 0},
		{"too many", escape([]byte(strings.Repeat(string(pemLeaf), clientcert.MaxChain/2+1))), 0},
		{"too large", strings.Repeat("A", clientcert.MaxForwardedHeader+1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := clientcert.ParseEscapedPEM(tc.in)
			if tc.n == 0 {
				if err == nil {
					t.Fatalf("parsed %d certificates", len(certs))
				}
				return
			}
			if err != nil || len(certs) != tc.n || string(certs[0].Raw) != string(one) {
				t.Fatalf("got %d, %v", len(certs), err)
			}
		})
	}
}

func TestParseXFCC(t *testing.T) {
	ca := certtest.NewCA(t, "ca")
	leaf := ca.Issue(t, certtest.Options{CN: "svc", URIs: []string{"spiffe://partner.example/svc"}, NotAfter: time.Now().Add(time.Hour)})
	cert := escape(leaf.PEM())
	envoy := `By=spiffe://gw.example/envoy;Hash=` + strings.Repeat("ab", 32) + `;Cert="` + cert + `";Chain="` + cert + `";Subject="CN=svc,O=Partner \"Ltd\"";URI=spiffe://partner.example/svc;DNS=a.example;DNS=b.example`
	els, err := clientcert.ParseXFCC(envoy + "," + "By=spiffe://edge.example/lb;Hash=00")
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 2 {
		t.Fatalf("%d elements", len(els))
	}
	e := els[0]
	if e.Cert == nil || string(e.Cert.Raw) != string(leaf.Cert.Raw) || len(e.Chain) != 1 || e.Subject != `CN=svc,O=Partner "Ltd"` ||
		len(e.DNS) != 2 || e.URI[0] != "spiffe://partner.example/svc" || e.By[0] != "spiffe://gw.example/envoy" || e.Hash != strings.Repeat("ab", 32) {
		t.Fatalf("element %+v", e)
	}
	if els[1].By[0] != "spiffe://edge.example/lb" || els[1].Cert != nil {
		t.Fatalf("second element %+v", els[1])
	}
	for _, bad := range []string{
		"",
		"Hash",
		"Hash=1;",
		"=1",
		"Hash=1;Hash=2",
		`Subject="unterminated`,
		`Subject="a"b`,
		"Subject=a\"b",
		"Subject=a=b",
		"Sub ject=a",
		"Hash=1,,Hash=2",
		"Subject=a\x01",
		`Cert="not pem"`,
		`Cert="` + cert + cert + `"`,
		strings.Repeat("Hash=1,", clientcert.MaxXFCCElements) + "Hash=1",
		strings.Repeat("DNS=a;", clientcert.MaxXFCCPairs) + "DNS=a",
		strings.Repeat("A", clientcert.MaxForwardedHeader+1),
	} {
		if els, err := clientcert.ParseXFCC(bad); err == nil {
			t.Errorf("%.60q parsed: %+v", bad, els)
		}
	}
	// Keys are case-insensitive; unknown keys are ignored.
	if els, err := clientcert.ParseXFCC(`hash=01;SUBJECT="x";Extra=1`); err != nil || els[0].Hash != "01" || els[0].Subject != "x" {
		t.Fatalf("%+v %v", els, err)
	}
}

// FuzzParseXFCC: no panic, and the budget holds for whatever parses.
func FuzzParseXFCC(f *testing.F) {
	for _, s := range []string{
		`By=spiffe://a/b;Hash=00;Subject="CN=x,O=\"y\"";URI=spiffe://p/q;DNS=a`,
		`Hash=1,Hash=2`,
		`Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A"`,
		`Subject="a;b=c,d"`,
		`x=`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		els, err := clientcert.ParseXFCC(s)
		if err != nil {
			if els != nil {
				t.Fatal("a partial result with an error")
			}
			return
		}
		if len(els) == 0 || len(els) > clientcert.MaxXFCCElements {
			t.Fatalf("%d elements", len(els))
		}
		for _, e := range els {
			if len(e.Chain) > clientcert.MaxChain || len(e.By)+len(e.URI)+len(e.DNS) > clientcert.MaxXFCCPairs {
				t.Fatalf("over budget: %+v", e)
			}
		}
	})
}

// FuzzParseEscapedPEM: no panic, the budget holds, and a parse is of
// certificates only.
func FuzzParseEscapedPEM(f *testing.F) {
	f.Add("-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A")
	f.Add("%zz")
	f.Add("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		certs, err := clientcert.ParseEscapedPEM(s)
		if err != nil {
			if certs != nil {
				t.Fatal("a partial result with an error")
			}
			return
		}
		if len(certs) == 0 || len(certs) > clientcert.MaxChain || len(s) > clientcert.MaxForwardedHeader {
			t.Fatalf("%d certificates from %d bytes", len(certs), len(s))
		}
	})
}
