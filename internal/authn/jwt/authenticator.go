package jwt

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Authenticator adapts a Verifier to authn.Authenticator for one route.
//
// It reads only the Authorization header, never a query parameter or form
// field, which would end up in logs: the "Bearer" scheme (RFC 6750 section
// 2.1) and, when DPoP is on for the route or one of its providers, the
// "DPoP" scheme (RFC 9449), both case-insensitive. A request without an
// Authorization header, or with one of another scheme (Basic, ApiKey, …),
// is not its business: ErrNoCredential, and the chain may try another
// method. A Bearer (or DPoP) header without a usable token, or several
// Authorization headers of which one is Bearer or DPoP, is a Failure
// (token_malformed): the client meant to present a token. The DPoP scheme
// on a route where DPoP is off is refused (dpop_not_allowed), never passed
// on as "not mine".
//
// The token is verified first (a cache of verified tokens may answer);
// then, on every request, its binding (token_binding.go): the client
// certificate against cnf.x5t#S256 (RFC 8705), and for Bearer the refusal
// of DPoP-bound tokens, for DPoP the proof (dpop.Verifier.VerifyRequest).
type Authenticator struct {
	v *Verifier
	// allowed marks the providers accepted on the route, by index; nil
	// accepts every provider of the Verifier.
	allowed []bool
	// dpopMode and certRequired are the route's own binding settings,
	// applied on top of the provider's (the stricter wins).
	dpopMode     dpop.Mode
	certRequired bool
	// dpopScheme: the DPoP scheme is accepted on this route (the route or
	// one of its providers has DPoP on).
	dpopScheme bool
	// renewNonces: some DPoP-enabled provider of the route has server
	// nonces (Advise).
	renewNonces bool
	// origin gives the scheme and host the client addressed (htu).
	origin func(*http.Request) (scheme, host string)
	// extra is the DPoP challenge offered to a request without a
	// credential; nil when DPoP is off on the route.
	extra []authn.Challenge
	// dpopAlgs are the algorithms named in DPoP challenges.
	dpopAlgs []string
}

var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ authn.Challenger      = (*Authenticator)(nil)
	_ authn.ResponseAdvisor = (*Authenticator)(nil)
)

// Options is the jwt method's block of a route,
// routes[].authenticate.jwt: what the route adds to its providers'
// token binding settings. It can only make them stricter.
type Options struct {
	// DPoP: allowed accepts the DPoP scheme on this route even when the
	// token's provider has DPoP off; required refuses Bearer tokens.
	// Default: the provider's mode.
	DPoP string `yaml:"dpop" enum:"allowed,required" desc:"allowed: accept the DPoP scheme (RFC 9449) on this route even where the token's provider has DPoP off (the provider's dpop settings, or the defaults, check the proof); required: accept only DPoP-bound tokens with a valid proof, refuse Bearer. Default: the provider's dpop.mode. A route can make DPoP stricter, never looser."`
	// CertificateBound: required refuses tokens that are not bound to
	// the connection's client certificate. Default: the provider's
	// certificate_bound.
	CertificateBound string `yaml:"certificate_bound" enum:"required" desc:"required: accept only tokens bound to the connection's client certificate (cnf.x5t#S256, RFC 8705). Default: the provider's certificate_bound (a token that carries cnf.x5t#S256 must always match the client certificate)."`
}

// AuthenticatorOptions configures NewAuthenticatorWithOptions.
type AuthenticatorOptions struct {
	// Providers accepted on the route (empty: every provider).
	Providers []string
	// DPoP is the route's DPoP mode (dpop.ModeDisabled: the providers').
	DPoP dpop.Mode
	// RequireCertificateBound refuses tokens not bound to the client
	// certificate, whatever the provider says.
	RequireCertificateBound bool
	// Origin returns the scheme and host the client addressed, for the
	// DPoP proof's htu (behind trusted proxies, from their forwarding
	// headers). nil: DefaultOrigin.
	Origin func(*http.Request) (scheme, host string)
}

// DefaultOrigin is the request's own view of its URL: https when it came
// over TLS, and its Host. It believes no forwarding header.
func DefaultOrigin(r *http.Request) (scheme, host string) {
	if r.TLS != nil {
		return "https", r.Host
	}
	return "http", r.Host
}

// NewAuthenticator returns an Authenticator that accepts tokens of the named
// providers only (empty: every provider of v). A token of another
// configured provider fails with authn.ReasonProviderDenied, before any key
// of that provider is fetched. Unknown names are an error.
func NewAuthenticator(v *Verifier, providers []string) (*Authenticator, error) {
	return NewAuthenticatorWithOptions(v, AuthenticatorOptions{Providers: providers})
}

// NewAuthenticatorWithOptions is NewAuthenticator with the route's token
// binding settings.
func NewAuthenticatorWithOptions(v *Verifier, opts AuthenticatorOptions) (*Authenticator, error) {
	if v == nil {
		return nil, errors.New("authn/jwt: no verifier (no identity provider is configured)")
	}
	if opts.DPoP < dpop.ModeDisabled || opts.DPoP > dpop.ModeRequired {
		return nil, fmt.Errorf("authn/jwt: unknown DPoP mode %d", opts.DPoP)
	}
	a := &Authenticator{v: v, dpopMode: opts.DPoP, certRequired: opts.RequireCertificateBound, origin: opts.Origin}
	if a.origin == nil {
		a.origin = DefaultOrigin
	}
	if len(opts.Providers) > 0 {
		a.allowed = make([]bool, len(v.providers))
		for _, name := range opts.Providers {
			p, ok := v.byName[name]
			if !ok {
				return nil, fmt.Errorf("authn/jwt: unknown identity provider %q", name)
			}
			a.allowed[p.index] = true
		}
	}
	for _, p := range v.providers {
		if a.allowed != nil && !a.allowed[p.index] || max(p.dpopMode, a.dpopMode) == dpop.ModeDisabled {
			continue
		}
		a.dpopScheme = true
		a.renewNonces = a.renewNonces || p.dpop.NoncesRequired()
		for _, alg := range p.dpop.Algorithms() {
			if !slices.Contains(a.dpopAlgs, alg) {
				a.dpopAlgs = append(a.dpopAlgs, alg)
			}
		}
	}
	if a.dpopScheme {
		a.extra = []authn.Challenge{{Scheme: dpop.Scheme, Params: dpopParams(dpop.Challenge("", "", a.dpopAlgs))}}
	}
	return a, nil
}

// Method returns identity.MethodJWT.
func (a *Authenticator) Method() identity.Method { return identity.MethodJWT }

// scheme is the Authorization scheme a token came with.
type scheme uint8

const (
	schemeNone scheme = iota
	schemeBearer
	schemeDPoP
)

// Authenticate verifies the request's access token and its binding; see
// Verifier.Verify and checkBinding for the failures. It never writes the
// response.
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	values := r.Header["Authorization"]
	switch len(values) {
	case 0:
		return nil, authn.ErrNoCredential
	case 1:
	default:
		for _, v := range values {
			if _, s, _ := splitToken(v); s != schemeNone {
				return nil, failure(authn.ReasonMalformed, nil, errSeveralHeaders)
			}
		}
		return nil, authn.ErrNoCredential
	}
	token, s, wellFormed := splitToken(values[0])
	switch {
	case s == schemeNone:
		return nil, authn.ErrNoCredential
	case !wellFormed:
		// "Bearer" then a tab or another separator: the client meant a
		// bearer token. Refused, never "not mine", which on an
		// allow_anonymous route would let the request through.
		return nil, failure(authn.ReasonMalformed, nil, errBadSeparator)
	case token == "":
		return nil, failure(authn.ReasonMalformed, nil, errNoToken)
	case s == schemeDPoP && !a.dpopScheme:
		return nil, dpopNotAllowed(nil)
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
	t, err := a.v.verify(r.Context(), token, a.allowed)
	if err != nil {
		if f, ok := err.(*authn.Failure); ok && (f.Reason == authn.ReasonUnsupported || f.Reason == authn.ReasonEncrypted) {
			// verify returns failures unwrapped. A JWE is opaque to the
			// gateway too (encrypted to its authorization server:
			// zitadel's opaque tokens are JWEs): introspection may claim
			// it; if nothing does, the chain still answers token_encrypted.
			return nil, authn.NotMine(f)
		}
		return nil, err
	}
	if err := a.checkBinding(r, token, s, &t); err != nil {
		return nil, err
	}
	return t.id, nil
}

// splitToken splits an Authorization value of the Bearer or DPoP scheme.
// s is schemeNone for another scheme; wellFormed is false when the scheme
// is followed by something other than a space; token is "" when the
// scheme has no token.
func splitToken(v string) (token string, s scheme, wellFormed bool) {
	name, token, wellFormed := authn.SplitAuthorization(v)
	switch {
	case strings.EqualFold(name, "Bearer"):
		s = schemeBearer
	case strings.EqualFold(name, dpop.Scheme):
		s = schemeDPoP
	default:
		return "", schemeNone, false // "Bearerfoo" is some other scheme
	}
	// Any other whitespace left in the token makes it malformed later.
	return token, s, wellFormed
}

var (
	errBadSeparator   = errors.New("authn/jwt: Bearer scheme not followed by a space")
	errSeveralHeaders = errors.New("authn/jwt: more than one Authorization header")
	errNoToken        = errors.New("authn/jwt: Bearer scheme without a token")
)
