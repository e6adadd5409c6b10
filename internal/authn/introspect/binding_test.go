package introspect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/certbind"
	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// TestBindingOfIntrospectedTokens: an active answer's cnf binds the token
// as a JWT's does (RFC 8705 section 3, RFC 9449 section 7.1): a
// certificate-bound token needs that client certificate on the request, a
// DPoP-bound one is never accepted as a bearer token, and a binding that
// nothing can satisfy is refused rather than taken as unbound.
func TestBindingOfIntrospectedTokens(t *testing.T) {
	ca := certtest.NewCA(t, "clients")
	mine := ca.Issue(t, certtest.Options{CN: "mine"})
	other := ca.Issue(t, certtest.Options{CN: "other"})
	x5t := certbind.Thumbprint(mine.Cert)
	for _, tc := range []struct {
		name    string
		binding identity.KeyBinding
		peer    *certtest.Cert
		reason  authn.Reason // "" accepted
	}{
		{"unbound token, no certificate", identity.KeyBinding{}, nil, ""},
		{"certificate-bound, its certificate", identity.KeyBinding{Kind: "x5t#S256", Value: x5t}, mine, ""},
		{"certificate-bound, another certificate", identity.KeyBinding{Kind: "x5t#S256", Value: x5t}, other, "token_binding_mismatch"},
		{"certificate-bound, no certificate", identity.KeyBinding{Kind: "x5t#S256", Value: x5t}, nil, "token_binding_mismatch"},
		{"DPoP-bound, sent as Bearer", identity.KeyBinding{Kind: "jkt", Value: x5t}, mine, "dpop_bound_token_as_bearer"},
		{"malformed binding", identity.KeyBinding{Kind: identity.KeyBindingInvalid}, mine, authn.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://api.example/x", nil)
			if tc.peer != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.peer.Cert}}
			} else {
				r.TLS = &tls.ConnectionState{}
			}
			err := checkBinding(r, &identity.Identity{Subject: "svc", Method: identity.MethodIntrospection, KeyBinding: tc.binding})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var f *authn.Failure
			if !errors.As(err, &f) || f.Reason != tc.reason || f.Method != identity.MethodIntrospection {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}
