// Package certbind checks certificate-bound access tokens (RFC 8705
// section 3): a token whose cnf claim carries x5t#S256 is accepted only
// over a connection whose client certificate has that SHA-256 thumbprint,
// so that a stolen token is useless without the certificate's private key.
//
// It works on the cnf claim as a map, so the same check serves JWTs and,
// later, the cnf member of an introspection response.
package certbind

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Member is the cnf member that binds a token to a certificate.
const Member = "x5t#S256"

// Reason codes (docs/audit.md).
const (
	// ReasonTokenBindingMismatch: the token is bound to a certificate
	// (cnf.x5t#S256) and the connection has no client certificate or
	// another one. The same code as DPoP's key mismatch: in both cases the
	// token's cnf does not match the key the client proved it holds.
	ReasonTokenBindingMismatch authn.Reason = "token_binding_mismatch"
	// ReasonTokenBindingRequired: the route or provider requires bound
	// tokens and the token carries no cnf.x5t#S256.
	ReasonTokenBindingRequired authn.Reason = "token_binding_required"
)

// Error is a failed binding check.
type Error struct {
	Reason authn.Reason
	// Detail says which case, for logs only: "no_certificate",
	// "thumbprint", "malformed", "unbound".
	Detail string
}

func (e *Error) Error() string {
	return "authn/certbind: " + string(e.Reason) + " (" + e.Detail + ")"
}

// Description is safe to show the client.
func (e *Error) Description() string {
	if e.Reason == ReasonTokenBindingRequired {
		return "This route requires a certificate-bound access token."
	}
	return "The access token is not bound to the client certificate of this connection."
}

// Failure turns e into an *authn.Failure of method m (it unwraps to e).
func (e *Error) Failure(m identity.Method) *authn.Failure {
	return &authn.Failure{Method: m, Reason: e.Reason, Description: e.Description(), Err: e}
}

// Thumbprint is a certificate's x5t#S256: base64url (no padding) of the
// SHA-256 of its DER encoding (RFC 8705 section 3.1).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PeerCertificate is the client's leaf certificate of a TLS connection,
// nil when there is none (no TLS, or no certificate presented). With
// tls.VerifyClientCertIfGiven or RequireAndVerifyClientCert it has been
// verified by the handshake; with the weaker client-auth modes it has not,
// which does not weaken the binding: a token is bound to a certificate by
// its thumbprint, and the handshake proved possession of its private key.
func PeerCertificate(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// CheckCertificateBinding checks a token's cnf claim (nil when the token
// has none) against the connection's client certificate (nil when none).
//
//   - cnf with x5t#S256: peer must be present and have that thumbprint
//     (constant-time comparison); otherwise ReasonTokenBindingMismatch.
//     A x5t#S256 that is not a non-empty string matches nothing.
//   - no cnf.x5t#S256 (no cnf, or one binding to something else such as a
//     DPoP key): accepted, unless required, then
//     ReasonTokenBindingRequired.
func CheckCertificateBinding(cnf map[string]any, peer *x509.Certificate, required bool) error {
	v, bound := cnf[Member]
	if !bound {
		if required {
			return &Error{Reason: ReasonTokenBindingRequired, Detail: "unbound"}
		}
		return nil
	}
	want, ok := v.(string)
	if !ok || want == "" {
		return &Error{Reason: ReasonTokenBindingMismatch, Detail: "malformed"}
	}
	if peer == nil {
		return &Error{Reason: ReasonTokenBindingMismatch, Detail: "no_certificate"}
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(Thumbprint(peer))) != 1 {
		return &Error{Reason: ReasonTokenBindingMismatch, Detail: "thumbprint"}
	}
	return nil
}

// RequestCertificate is the client certificate a bound token of r is
// compared with: the one the listener verified for this request (directly
// over TLS, or forwarded by a trusted TLS terminator: listeners[].
// forwarded_client_certificates), nil when it did not verify or none was
// presented; on a listener that checks no client certificates, the TLS
// connection's own (the handshake proved possession of its key).
func RequestCertificate(r *http.Request) *x509.Certificate {
	if res := clientcert.FromContext(r.Context()); res != nil {
		return res.Leaf()
	}
	return PeerCertificate(r.TLS)
}
