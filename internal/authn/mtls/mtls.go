// Package mtls is the client-certificate authenticator: it turns the
// certificate a client presented in its TLS handshake, verified once per
// connection by the listener (internal/clientcert, wired in
// internal/gateway), into the caller's identity.
//
// The outcomes follow authn's contract:
//
//   - no certificate on the connection (or a listener that does not ask
//     for one): authn.ErrNoCredential, so that a public or token route on
//     the same listener is unaffected, and an OR chain tries its next
//     method;
//   - a certificate that did not verify (request mode keeps such
//     connections open so that the refusal reaches the HTTP layer with an
//     audit event): a *authn.Failure with cert_untrusted, cert_expired or
//     cert_revoked;
//   - a verified certificate the route does not accept (SPIFFE trust
//     domain, allow-lists, no usable subject): cert_not_allowed;
//   - otherwise the identity: the configured subject, the certificate's
//     fields as cert.* claims, and its RFC 8705 x5t#S256 thumbprint as the
//     credential id.
//
// Nothing is parsed per request: the chain was verified at the handshake,
// its facts are derived once per connection, and the allow-lists are
// compiled by New.
package mtls

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Reasons of the mtls method (defined in clientcert, where the listener's
// handshake checks use them too).
const (
	ReasonCertMissing    = clientcert.ReasonMissing
	ReasonCertUntrusted  = clientcert.ReasonUntrusted
	ReasonCertExpired    = clientcert.ReasonExpired
	ReasonCertRevoked    = clientcert.ReasonRevoked
	ReasonCertNotAllowed = clientcert.ReasonNotAllowed
	// ReasonCertForwardedInvalid: a trusted proxy's forwarded-certificate
	// header could not be read unambiguously (listeners[].forwarded_client_certificates).
	ReasonCertForwardedInvalid = clientcert.ReasonForwardedInvalid
)

// ChallengeScheme is the auth-scheme of the WWW-Authenticate challenge of
// a 401 on a route that accepts mtls. No HTTP authentication scheme is
// registered for TLS client certificates (the credential travels below
// HTTP), but RFC 9110 §11.6.1 requires a challenge on every 401; a
// descriptive token tells an operator or SDK what is missing, and clients
// ignore schemes they do not know.
const ChallengeScheme = "mTLS"

// Config is a route's mtls options block: how the certificate becomes the
// caller's identity and which certificates the route accepts. The listener
// decides which certificates are trusted (listeners[].tls.client_certificates);
// this decides which of those the route lets in. The zero value accepts
// every trusted certificate, subject from DefaultSubjectFrom.
type Config struct {
	// SubjectFrom lists where the subject comes from, first present wins.
	// Default [spiffe_id, dns_san, email_san, common_name].
	SubjectFrom []string `yaml:"subject_from" desc:"Where the identity's subject comes from, first present wins: spiffe_id (the URI SAN spiffe://trust-domain/path), dns_san, email_san, common_name. A certificate with none of them is refused (cert_not_allowed). Default [spiffe_id, dns_san, email_san, common_name]."`
	// TrustDomains allow-lists SPIFFE trust domains. Default: any.
	TrustDomains []string `yaml:"trust_domains" desc:"SPIFFE trust domains accepted (e.g. partner.example). A certificate whose SPIFFE ID is in another trust domain is refused (cert_not_allowed). Default: any trust domain the listener's CAs issue for. Security: set it when a CA issues for more than one trust domain."`
	// Subjects allow-lists subjects (exact). Default: no subject list.
	Subjects []string `yaml:"subjects" desc:"Subjects accepted, compared exactly with the subject chosen by subject_from. With spiffe_ids: a certificate passes if it is on either list. Default: no list (every trusted certificate)."`
	// SPIFFEIDs allow-lists SPIFFE IDs, exactly or by prefix.
	SPIFFEIDs []string `yaml:"spiffe_ids" desc:"SPIFFE IDs accepted: exact (spiffe://partner.example/billing), a path prefix (spiffe://partner.example/billing/*: that path's descendants) or a whole trust domain (spiffe://partner.example/*). With subjects: a certificate passes if it is on either list. Default: no list."`
}

// Validate checks c and returns its problems, each a
// *clientcert.FieldError whose Path is relative to the options block
// ("spiffe_ids[1]").
func Validate(c Config) []error {
	_, errs := clientcert.CompileMapping(c.mapping())
	return errs
}

func (c Config) mapping() clientcert.MappingConfig {
	return clientcert.MappingConfig{SubjectFrom: c.SubjectFrom, TrustDomains: c.TrustDomains, Subjects: c.Subjects, SPIFFEIDs: c.SPIFFEIDs}
}

// Authenticator is the mtls method of one route.
type Authenticator struct {
	m *clientcert.Mapping
}

var _ authn.Authenticator = (*Authenticator)(nil)

// New compiles c (Validate's problems, joined, if any).
func New(c Config) (*Authenticator, error) {
	m, errs := clientcert.CompileMapping(c.mapping())
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Authenticator{m: m}, nil
}

// Method is identity.MethodMTLS.
func (a *Authenticator) Method() identity.Method { return identity.MethodMTLS }

// MissingReason is the reason an authn.Chain reports when this method is
// the route's first and no credential at all was presented.
func (a *Authenticator) MissingReason() authn.Reason { return ReasonCertMissing }

// Client-facing descriptions: enough for an honest client to fix its
// setup, nothing about which check almost passed.
var descriptions = map[authn.Reason]string{
	ReasonCertUntrusted:  "The client certificate is not trusted.",
	ReasonCertExpired:    "The client certificate has expired or is not yet valid.",
	ReasonCertRevoked:    "The client certificate has been revoked.",
	ReasonCertNotAllowed: "The client certificate is not allowed on this route.",
	// Said to the client, though the header came from its proxy: the
	// client (or whoever runs the proxy) is the one who can fix it.
	ReasonCertForwardedInvalid: "The forwarded client certificate could not be read.",
}

// Authenticate implements authn.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	res := clientcert.FromContext(r.Context())
	if res == nil || res.Reason == ReasonCertMissing {
		return nil, authn.ErrNoCredential
	}
	if !res.Verified() {
		return nil, a.fail(res.Reason, res.Thumbprint, "", res.Err)
	}
	leaf := res.Leaf()
	facts := res.Facts()
	subject, reason, err := a.m.Map(facts, leaf)
	if reason != "" {
		return nil, a.fail(reason, res.Thumbprint, subject, err)
	}
	return &identity.Identity{
		Subject:      subject,
		Issuer:       facts.IssuerDN,
		Method:       identity.MethodMTLS,
		CredentialID: res.Thumbprint,
		// The same x5t#S256 thumbprint as the evidence a certificate-bound
		// token (RFC 8705, cnf.x5t#S256) is compared with.
		CertThumbprint: res.Thumbprint,
		Claims:         facts.Claims,
		ExpiresAt:      leaf.NotAfter,
	}, nil
}

func (a *Authenticator) fail(reason authn.Reason, thumbprint, subject string, err error) *authn.Failure {
	desc, ok := descriptions[reason]
	if !ok {
		reason, desc = ReasonCertUntrusted, descriptions[ReasonCertUntrusted]
	}
	return &authn.Failure{
		Method:       identity.MethodMTLS,
		Reason:       reason,
		Description:  desc,
		CredentialID: thumbprint,
		Subject:      subject,
		Err:          err,
	}
}
