// Package introspect is the introspection credential method: opaque
// bearer tokens (and, on routes that ask for it, JWTs too) are accepted
// when the identity provider that issued them says they are active, by
// OAuth 2.0 Token Introspection (RFC 7662). The provider's answer goes
// through the same claim checks and identity mapping as a JWT's payload
// (internal/authn/jwt.ClaimRules).
//
// Each introspecting provider has one Introspector, a resource shared
// across reloads: its HTTP client, its cache of answers (keyed by the
// token's SHA-256, bounded in size and never outliving the token's exp
// nor cache_ttl), the collapsing of concurrent calls for one token, and
// the call budget (concurrency, rate, timeout). See docs/introspection.md.
package introspect

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/certbind"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Authenticator introspects a route's bearer tokens at one provider.
type Authenticator struct {
	in *Introspector
	// confirmJWT: JWS-shaped tokens are introspected too (they are "not
	// mine" otherwise, left to the jwt method).
	confirmJWT bool
	maxBytes   int
}

var _ authn.Authenticator = (*Authenticator)(nil)

// NewAuthenticator returns the authenticator of a route. maxBytes bounds
// the token (the provider's max_token_size); confirmJWT makes it claim
// JWTs too.
func NewAuthenticator(in *Introspector, maxBytes int, confirmJWT bool) *Authenticator {
	if maxBytes <= 0 {
		maxBytes = jwt.DefaultMaxTokenBytes
	}
	return &Authenticator{in: in, confirmJWT: confirmJWT, maxBytes: maxBytes}
}

// Method returns identity.MethodIntrospection.
func (a *Authenticator) Method() identity.Method { return identity.MethodIntrospection }

// Authenticate reads the Authorization header's Bearer token exactly as
// the jwt method does (never a query parameter or form field), and:
//   - no Bearer credential: authn.ErrNoCredential;
//   - a JWS (three dot-separated base64url segments), unless
//     confirm_jwt: "not mine" (token_unsupported), so that the jwt method
//     verifies it;
//   - a value that is not a bearer token's syntax: token_malformed;
//     longer than max_token_size: token_too_large; nothing is sent;
//   - otherwise the provider's answer (see Introspector.Introspect).
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	token, ok, err := jwt.BearerToken(r)
	switch {
	case !ok:
		return nil, authn.ErrNoCredential
	case err != nil:
		return nil, failure(authn.ReasonMalformed, "The access token is malformed.", err)
	}
	if len(token) > a.maxBytes {
		return nil, failure(authn.ReasonTooLarge, "The access token is too large.",
			fmt.Errorf("authn/introspect: token of %d bytes exceeds %d", len(token), a.maxBytes))
	}
	if !a.confirmJWT && jwt.IsJWS(token) {
		return nil, authn.NotMine(failure(authn.ReasonUnsupported,
			"The bearer token is a JWT; this route introspects only opaque tokens.", errJWT))
	}
	if !jwt.B64Token(token) {
		return nil, failure(authn.ReasonMalformed, "The access token is malformed.", errSyntax)
	}
	id, err := a.in.Introspect(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if err := checkBinding(r, id); err != nil {
		return nil, err
	}
	return id, nil
}

// checkBinding applies the answer's cnf (kept as the identity's key
// binding) to this request, on every request, cached answers included:
//   - cnf.x5t#S256 (RFC 8705 section 3): the request must come with that
//     client certificate (the one the listener verified, direct or
//     forwarded), else token_binding_mismatch;
//   - cnf.jkt (RFC 9449): the token is DPoP-bound, and this method reads
//     Bearer tokens only: refused as dpop_bound_token_as_bearer (section
//     7.1), never accepted as a bearer token.
func checkBinding(r *http.Request, id *identity.Identity) error {
	switch id.KeyBinding.Kind {
	case "":
		return nil
	case "x5t#S256":
		cnf := map[string]any{"x5t#S256": id.KeyBinding.Value}
		if err := certbind.CheckCertificateBinding(cnf, certbind.RequestCertificate(r), false); err != nil {
			var ce *certbind.Error
			if errors.As(err, &ce) {
				f := ce.Failure(identity.MethodIntrospection)
				f.Subject, f.Issuer, f.Provider = id.Subject, id.Issuer, id.Provider
				return f
			}
			return err
		}
		return nil
	case "jkt":
		return &authn.Failure{Method: identity.MethodIntrospection, Reason: dpop.ReasonBoundTokenAsBearer,
			Description: "The access token is bound to a DPoP key and must be sent with the DPoP scheme.",
			Subject:     id.Subject, Issuer: id.Issuer, Provider: id.Provider,
			Err: errors.New("authn/introspect: a DPoP-bound token (cnf.jkt) sent as Bearer")}
	default:
		// A confirmation method the gateway cannot check: refused rather
		// than taken as unbound.
		return &authn.Failure{Method: identity.MethodIntrospection, Reason: authn.ReasonMalformed,
			Description: "The access token's confirmation method is not supported.",
			Err:         fmt.Errorf("authn/introspect: unsupported cnf kind %q", id.KeyBinding.Kind)}
	}
}

var (
	errJWT    = errors.New("authn/introspect: the bearer token is a JWT (confirm_jwt is off)")
	errSyntax = errors.New("authn/introspect: not a bearer token (RFC 6750 b64token)")
)

func failure(reason authn.Reason, desc string, err error) *authn.Failure {
	return &authn.Failure{Method: identity.MethodIntrospection, Reason: reason, Description: desc, Err: err}
}
