package jwt

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Authenticator adapts a Verifier to authn.Authenticator for one route.
//
// It reads only the Authorization header ("Bearer" scheme, case-insensitive;
// RFC 6750 section 2.1), never a query parameter or form field, which would
// end up in logs. A request without an Authorization header, or with one of
// another scheme (Basic, ApiKey, …), is not its business: ErrNoCredential,
// and the chain may try another method. A Bearer header without a usable
// token, or several Authorization headers of which one is Bearer, is a
// Failure (token_malformed): the client meant to present a token.
type Authenticator struct {
	v *Verifier
	// allowed marks the providers accepted on the route, by index; nil
	// accepts every provider of the Verifier.
	allowed []bool
}

var _ authn.Authenticator = (*Authenticator)(nil)

// NewAuthenticator returns an Authenticator that accepts tokens of the named
// providers only (empty: every provider of v). A token of another
// configured provider fails with authn.ReasonProviderDenied, before any key
// of that provider is fetched. Unknown names are an error.
func NewAuthenticator(v *Verifier, providers []string) (*Authenticator, error) {
	if v == nil {
		return nil, errors.New("authn/jwt: no verifier (no identity provider is configured)")
	}
	a := &Authenticator{v: v}
	if len(providers) == 0 {
		return a, nil
	}
	a.allowed = make([]bool, len(v.providers))
	for _, name := range providers {
		p, ok := v.byName[name]
		if !ok {
			return nil, fmt.Errorf("authn/jwt: unknown identity provider %q", name)
		}
		a.allowed[p.index] = true
	}
	return a, nil
}

// Method returns identity.MethodJWT.
func (a *Authenticator) Method() identity.Method { return identity.MethodJWT }

// Authenticate verifies the request's bearer token; see Verifier.Verify for
// the failures. It never writes the response.
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	values := r.Header["Authorization"]
	switch len(values) {
	case 0:
		return nil, authn.ErrNoCredential
	case 1:
	default:
		for _, v := range values {
			if _, ok, _ := bearer(v); ok {
				return nil, failure(authn.ReasonMalformed, nil, errSeveralHeaders)
			}
		}
		return nil, authn.ErrNoCredential
	}
	token, ok, wellFormed := bearer(values[0])
	switch {
	case !ok:
		return nil, authn.ErrNoCredential
	case !wellFormed:
		// "Bearer" then a tab or another separator: the client meant a
		// bearer token. Refused, never "not mine", which on an
		// allow_anonymous route would let the request through.
		return nil, failure(authn.ReasonMalformed, nil, errBadSeparator)
	case token == "":
		return nil, failure(authn.ReasonMalformed, nil, errNoToken)
	}
	// Dispatch by form, before the size limit and the cache: a bearer
	// value that is not in JWS (or JWE) compact form is an opaque token,
	// another method's (introspection) if the route has one. If none
	// claims it, the chain answers with this failure (token_unsupported),
	// never anonymous.
	//
	// The common case costs one vectorised count of the dots: a value with
	// other than two or four dots is opaque if it is a well-formed bearer
	// value at all (else token_malformed below). A JWS-shaped value with
	// characters outside base64url (+, /, ~, padding) is found by the
	// verifier's own shape check, whose token_unsupported is turned into
	// "not mine" here, so that a JWT pays for no second scan.
	if dots := strings.Count(token, "."); dots != 2 && dots != 4 && b64token(token) {
		return nil, authn.NotMine(failure(authn.ReasonUnsupported, nil, errNotJWT))
	}
	id, err := a.v.verify(r.Context(), token, a.allowed)
	if f, ok := err.(*authn.Failure); ok && (f.Reason == authn.ReasonUnsupported || f.Reason == authn.ReasonEncrypted) {
		// verify returns failures unwrapped. A JWE is opaque to the
		// gateway too (encrypted to its authorization server: zitadel's
		// opaque tokens are JWEs): introspection may claim it; if nothing
		// does, the chain still answers token_encrypted.
		return nil, authn.NotMine(f)
	}
	return id, err
}

// bearer splits an Authorization value of the Bearer scheme. ok is false
// for another scheme; wellFormed is false when "Bearer" is followed by
// something other than a space; token is "" when the scheme has no token.
func bearer(v string) (token string, ok, wellFormed bool) {
	scheme, token, wellFormed := authn.SplitAuthorization(v)
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, false // "Bearerfoo" is some other scheme
	}
	// Any other whitespace left in the token makes it malformed later.
	return token, true, wellFormed
}

var (
	errBadSeparator   = errors.New("authn/jwt: Bearer scheme not followed by a space")
	errSeveralHeaders = errors.New("authn/jwt: more than one Authorization header")
	errNoToken        = errors.New("authn/jwt: Bearer scheme without a token")
)
