package jwt

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// ClaimRules are a provider's claim checks and identity mapping, apart
// from any token format: exp (required), nbf, iat, the maximum lifetime,
// the audience, required claims, claim values and the subject, then the
// mapping of subject, client id, scopes, roles, groups, extra claims and
// cnf. A verified JWT's payload goes through exactly these; so does an
// introspection response (RFC 7662), whose members are the same claims.
type ClaimRules struct {
	p      *provider
	method identity.Method
}

// NewClaimRules compiles p's claim rules for method (the identity's and
// failures' Method). p.Keys and p.Algorithms are not used.
func NewClaimRules(p Provider, method identity.Method) (*ClaimRules, error) {
	if p.Keys == nil {
		p.Keys = noKeys{}
	}
	c, err := compileProvider(0, p)
	if err != nil {
		return nil, err
	}
	return &ClaimRules{p: c, method: method}, nil
}

// Identity checks claims (decoded with json.Decoder.UseNumber) at now and
// returns the identity they state, or an *authn.Failure whose reason is
// the JWT method's for the same check (token_expired, audience_mismatch,
// missing_claim, …).
func (r *ClaimRules) Identity(claims map[string]any, now time.Time) (*identity.Identity, error) {
	id, err := r.p.identity(claims, now)
	if err != nil {
		var f *authn.Failure
		if errors.As(err, &f) {
			f.Method = r.method
		}
		return nil, err
	}
	id.Method = r.method
	return id, nil
}

// noKeys stands in for the key source of rules that never verify a
// signature.
type noKeys struct{}

func (noKeys) Lookup(context.Context, string) ([]jose.JSONWebKey, error) {
	return nil, errors.New("authn/jwt: claim rules have no keys")
}

// ProviderFromConfig is the Provider an identity_providers entry
// describes, without its key source (Keys is nil: the caller sets it).
func ProviderFromConfig(pc config.IdentityProvider) Provider {
	algs := pc.Algorithms
	if len(algs) == 0 {
		algs = config.DefaultAlgorithms()
	}
	p := Provider{
		Name:           pc.Name,
		Issuer:         pc.Issuer,
		Audiences:      pc.Audiences,
		AudienceClaim:  pc.AudienceClaim,
		ClockSkew:      pc.ClockSkew.Std(),
		MaxLifetime:    pc.MaxTokenLifetime.Std(),
		RequiredType:   pc.RequiredType,
		RequiredClaims: pc.RequiredClaims,
		ClaimValues:    pc.ClaimValues,
		MaxTokenBytes:  int(pc.MaxTokenSize),
		Mapping: Mapping{
			Subject: pc.Claims.Subject, ClientID: pc.Claims.ClientID, Scopes: pc.Claims.Scopes,
			Roles: pc.Claims.Roles, Groups: pc.Claims.Groups, Claims: pc.Claims.Extra,
		},
	}
	for _, a := range algs {
		p.Algorithms = append(p.Algorithms, jose.SignatureAlgorithm(a))
	}
	return p
}

// IsJWS reports whether raw has the form of a JWS compact serialisation
// (three dot-separated segments of base64url characters): a signed JWT
// the jwt method verifies. A JWE (five segments) is not: the gateway
// cannot read it, so it is as opaque as any other token. Structural only.
func IsJWS(raw string) bool {
	parts, clean := shape(raw)
	return parts == 3 && clean
}

// B64Token reports whether raw is a bearer credential's syntax (RFC 6750
// section 2.1 b64token).
func B64Token(raw string) bool { return b64token(raw) }

// BearerToken reads the request's bearer token as the JWT method does:
// ok is false when the request carries no Bearer credential (no
// Authorization header, or one of another scheme: not the caller's
// business); a Bearer credential that cannot be used (several
// Authorization headers of which one is Bearer, a bad separator, no token)
// is a non-nil error, which the caller turns into token_malformed.
func BearerToken(r *http.Request) (token string, ok bool, err error) {
	values := r.Header["Authorization"]
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		for _, v := range values {
			if _, ok, _ := bearerOnly(v); ok {
				return "", true, errSeveralHeaders
			}
		}
		return "", false, nil
	}
	token, ok, wellFormed := bearerOnly(values[0])
	switch {
	case !ok:
		return "", false, nil
	case !wellFormed:
		return "", true, errBadSeparator
	case token == "":
		return "", true, errNoToken
	}
	return token, true, nil
}

// Keys returns the key source and algorithms of the named provider, for
// checking other JWTs the provider signs (signed introspection answers,
// RFC 9701).
func (v *Verifier) Keys(provider string) (KeySource, []jose.SignatureAlgorithm, bool) {
	p, ok := v.byName[provider]
	if !ok {
		return nil, nil, false
	}
	return p.keys, slices.Clone(p.algs), true
}

// bearerOnly splits an Authorization value of the Bearer scheme only (a
// DPoP-scheme token is not introspection's: its proof is the jwt
// method's to check). ok is false for another scheme.
func bearerOnly(v string) (token string, ok, wellFormed bool) {
	token, s, wellFormed := splitToken(v)
	if s != schemeBearer {
		return "", false, false
	}
	return token, true, wellFormed
}
