// Package jwt authenticates requests that carry a JWT access token
// ("Authorization: Bearer <token>"), strictly following the JWT best current
// practices (RFC 8725) and, where a provider asks for it, the JWT profile for
// OAuth 2.0 access tokens (RFC 9068).
//
// Several identity providers may be trusted at once. A token's iss claim is
// read, unverified, only to choose its provider; from then on it is checked
// only with that provider's algorithms, keys and claim rules. Token parsing
// and signature verification are go-jose's (an explicit algorithm list is
// always given); this package decides what to accept.
//
// Every check fails closed: a token is accepted only when every check has
// positively passed. A rejected token yields an *authn.Failure with a stable
// reason (see Verifier.Verify); keys that cannot be obtained yield an
// *authn.UnavailableError. The token itself never appears in an error.
package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
)

// KeySource finds the verification keys of one provider. *keyset.Set
// implements it; the interface lives here so that tests can use a small
// fake.
type KeySource interface {
	// Lookup returns the keys with key id kid, or every key when kid is "".
	// Keys without a kid may be returned for any kid (a PEM file has none).
	// Errors wrap keyset.ErrUnknownKID (the token names a key that does not
	// exist: 401) or keyset.ErrUnavailable (no usable keys: 503). Any other
	// error is treated like ErrUnavailable.
	Lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// Provider is one trusted issuer of access tokens.
type Provider struct {
	// Name identifies the provider in routes and audit events. Required,
	// unique.
	Name string
	// Issuer must equal the token's iss exactly (no normalisation: a
	// trailing slash matters). Required, unique.
	Issuer string
	// Audiences accepted: the token's aud (a string or an array) must
	// contain at least one of them. Required: a token minted for another
	// API of the same provider must not be accepted here.
	Audiences []string
	// AudienceClaim is the claim path compared with Audiences instead of
	// aud, for providers whose access tokens have no aud but name their
	// intended recipient elsewhere (Amazon Cognito: client_id). aud is then
	// not checked at all. Default "aud". Never set it to dodge a missing
	// aud without naming the claim that replaces it.
	AudienceClaim string
	// Algorithms allowed in the alg header. Default: RS256 RS384 RS512
	// PS256 PS384 PS512 ES256 ES384 ES512 EdDSA. HS256/HS384/HS512 are
	// accepted only when listed here (their keys are shared secrets), and
	// "none" can never be configured.
	Algorithms []jose.SignatureAlgorithm
	// Keys finds the provider's verification keys. Required.
	Keys KeySource
	// ClockSkew is the leeway applied to exp, nbf and iat. Default 0. A
	// large value extends the life of every stolen token by as much.
	ClockSkew time.Duration
	// MaxLifetime refuses tokens whose exp - iat exceeds it; such tokens
	// then must carry iat. Default 0: no limit.
	MaxLifetime time.Duration
	// RequiredType, when set (e.g. "at+jwt" for RFC 9068), must equal the
	// typ header, compared case-insensitively and with an optional
	// "application/" prefix on either side. It stops ID tokens and other
	// JWTs of the same issuer from being used as access tokens. Default "":
	// typ is not checked.
	RequiredType string
	// RequiredClaims are claim paths that must be present (not null).
	RequiredClaims []string
	// ClaimValues maps a claim path to the values it may take: a string
	// claim must equal one of them; for an array claim one element must.
	// Numbers and booleans are compared by their JSON text ("true", "42").
	ClaimValues map[string][]string
	// MaxTokenBytes refuses longer tokens before any parsing. Default 16384.
	MaxTokenBytes int
	// Mapping says which claims make up the identity.
	Mapping Mapping
	// DPoP verifies the DPoP proofs (RFC 9449) that come with this
	// provider's tokens. nil: a verifier with package dpop's defaults and
	// a replay cache of its own (tests; the gateway always gives one that
	// shares the process's replay cache).
	DPoP *dpop.Verifier
	// DPoPMode says whether the DPoP scheme is accepted (dpop.ModeAllowed)
	// or required (dpop.ModeRequired) for this provider's tokens; a route
	// may make it stricter, never looser. Default dpop.ModeDisabled: only
	// Bearer, and a DPoP-bound token (cnf.jkt) is refused as Bearer.
	DPoPMode dpop.Mode
	// RequireCertificateBound refuses every token that is not bound to the
	// connection's client certificate (cnf.x5t#S256, RFC 8705). Without
	// it, a token that carries cnf.x5t#S256 must still match the client
	// certificate; one without it passes.
	RequireCertificateBound bool
	// Cache, if set, is the provider's verified-token cache, kept by the
	// caller across verifiers (reloads) for providers whose CacheKey is
	// unchanged; the verifier refuses a cache bound to other settings.
	// Default nil: the verifier makes one (VerifierOptions.CacheSize).
	Cache *TokenCache
}

// CacheKey identifies everything of p that decides whether a token is
// valid and which identity it yields (name, issuer, audiences, algorithms,
// clock skew, lifetime, type, required claims and values, size limit,
// claim mapping), normalised as the verifier compiles it; not its keys,
// which every cache hit checks again, nor its token binding settings (DPoP,
// DPoPMode, RequireCertificateBound), which are enforced after the cache on
// every request, hits included. Providers with equal CacheKeys can share a
// TokenCache. It fails where NewVerifier would.
func CacheKey(p Provider) (string, error) {
	c, err := compileProvider(0, p)
	if err != nil {
		return "", err
	}
	return c.fingerprint, nil
}

// Mapping selects the claims that make up the caller's identity.
//
// A claim path is a key, or dot-separated keys into nested objects
// ("realm_access.roles"). A key may contain ':' or '/' ("cognito:groups",
// "https://example.com/roles"): the whole path is first tried as one
// literal key, then split at each '.'.
type Mapping struct {
	// Subject is the claim path of the subject; it must be a non-empty
	// string (or a number). Default "sub".
	Subject string
	// ClientID is the claim path of the OAuth client id. Default
	// "client_id", then "azp".
	ClientID string
	// Scopes are the claim paths of the granted scopes (a space-separated
	// string or an array of strings), tried in order: the first claim
	// present in the token is used, even when empty, so a token that has
	// the preferred claim is never read from a fallback (Auth0:
	// "permissions", then "scope"). Default "scope", then "scp".
	Scopes []string
	// Roles is the claim path of the caller's roles (an array of strings,
	// or a single string), e.g. "realm_access.roles" (Keycloak) or "roles"
	// (Entra ID). Default: none.
	Roles string
	// Groups is the claim path of the caller's groups, e.g. "groups"
	// (Okta) or "cognito:groups" (Cognito). Default: none.
	Groups string
	// Claims copies more claims into Identity.Claims: identity claim name →
	// claim path. Strings, booleans, numbers (int64 when integral and in
	// range, else float64) and arrays of those ([]any) are copied; objects
	// and absent claims are left out.
	Claims map[string]string
}

// DefaultMaxTokenBytes is the default Provider.MaxTokenBytes.
const DefaultMaxTokenBytes = 16384

// defaultAlgorithms are the asymmetric algorithms accepted when a provider
// lists none. HMAC is deliberately absent: it must be asked for.
var defaultAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// supportedAlgorithms are the algorithms a provider may list.
var supportedAlgorithms = append(slices.Clip(defaultAlgorithms), jose.HS256, jose.HS384, jose.HS512)

// provider is a Provider compiled by NewVerifier.
type provider struct {
	index       int
	name        string
	issuer      string
	audiences   []string
	audClaim    string
	algs        []jose.SignatureAlgorithm
	keys        KeySource
	skew        time.Duration
	maxLifetime time.Duration
	typ         string // normalised: lower case, no "application/"
	required    []string
	values      []claimValues // sorted by path
	maxBytes    int
	subject     string
	clientID    []string // paths tried in order
	scopes      []string // paths tried in order
	roles       string
	groups      string
	claims      []claimCopy // sorted by name
	// dpop, dpopMode and certRequired are the token binding settings
	// (authenticator.go). They are not part of the fingerprint: the
	// binding checks run after the cache, on every request, with the
	// current provider's settings, so a cached verification stays valid
	// whatever they become.
	dpop         *dpop.Verifier
	dpopMode     dpop.Mode
	certRequired bool
	// cache remembers its verified tokens; nil: none.
	cache *TokenCache
	// fingerprint is CacheKey's: the settings above but index, keys and
	// the token binding settings.
	fingerprint string
}

type claimValues struct {
	path   string
	values []string
}

type claimCopy struct {
	name, path string
}

func compileProvider(i int, p Provider) (*provider, error) {
	if p.Name == "" {
		return nil, fmt.Errorf("authn/jwt: provider %d: name is required", i)
	}
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("authn/jwt: provider %q: "+format, append([]any{p.Name}, args...)...)
	}
	if p.Issuer == "" {
		return nil, errorf("issuer is required")
	}
	if p.Keys == nil {
		return nil, errorf("a key source is required")
	}
	if len(p.Audiences) == 0 {
		return nil, errorf("at least one audience is required")
	}
	if slices.Contains(p.Audiences, "") {
		return nil, errorf("empty audience")
	}
	if p.ClockSkew < 0 || p.MaxLifetime < 0 || p.MaxTokenBytes < 0 {
		return nil, errorf("clock skew, maximum lifetime and maximum token size cannot be negative")
	}
	c := &provider{
		index:        i,
		name:         p.Name,
		issuer:       p.Issuer,
		audiences:    slices.Clone(p.Audiences),
		audClaim:     orDefault(p.AudienceClaim, "aud"),
		keys:         p.Keys,
		skew:         p.ClockSkew,
		maxLifetime:  p.MaxLifetime,
		maxBytes:     p.MaxTokenBytes,
		roles:        p.Mapping.Roles,
		groups:       p.Mapping.Groups,
		dpop:         p.DPoP,
		dpopMode:     p.DPoPMode,
		certRequired: p.RequireCertificateBound,
	}
	if p.DPoPMode < dpop.ModeDisabled || p.DPoPMode > dpop.ModeRequired {
		return nil, errorf("unknown DPoP mode %d", p.DPoPMode)
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxTokenBytes
	}

	algs := p.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms
	}
	for _, a := range algs {
		switch {
		case strings.EqualFold(string(a), "none"):
			return nil, errorf(`algorithm "none" can never be accepted`)
		case !slices.Contains(supportedAlgorithms, a):
			return nil, errorf("unsupported algorithm %q", a)
		case !slices.Contains(c.algs, a):
			c.algs = append(c.algs, a)
		}
	}

	if p.RequiredType != "" {
		c.typ = strings.ToLower(trimApplication(p.RequiredType))
		if c.typ == "" {
			return nil, errorf("required type %q is empty", p.RequiredType)
		}
	}
	for _, path := range p.RequiredClaims {
		if path == "" {
			return nil, errorf("empty required claim")
		}
		c.required = append(c.required, path)
	}
	for path, values := range p.ClaimValues {
		if path == "" || len(values) == 0 {
			return nil, errorf("claim values: claim %q needs a path and at least one value", path)
		}
		c.values = append(c.values, claimValues{path: path, values: slices.Clone(values)})
	}
	slices.SortFunc(c.values, func(a, b claimValues) int { return strings.Compare(a.path, b.path) })

	m := p.Mapping
	c.subject = orDefault(m.Subject, "sub")
	c.clientID = []string{"client_id", "azp"}
	if m.ClientID != "" {
		c.clientID = []string{m.ClientID}
	}
	c.scopes = []string{"scope", "scp"}
	if len(m.Scopes) > 0 {
		if slices.Contains(m.Scopes, "") {
			return nil, errorf("empty scopes claim path")
		}
		c.scopes = slices.Clone(m.Scopes)
	}
	for name, path := range m.Claims {
		if name == "" || path == "" {
			return nil, errorf("claim mapping %q → %q: name and path are required", name, path)
		}
		c.claims = append(c.claims, claimCopy{name: name, path: path})
	}
	slices.SortFunc(c.claims, func(a, b claimCopy) int { return strings.Compare(a.name, b.name) })
	c.fingerprint = c.settingsFingerprint()
	return c, nil
}

// settingsFingerprint hashes every compiled setting but index, keys,
// cache and the token binding settings (dpop, dpopMode, certRequired: they
// are checked after the cache, per request). A field added to provider must be added here when it can change
// a decision or an identity (TestCacheKeyCoversSettings checks the count).
func (c *provider) settingsFingerprint() string {
	values := make([][2]any, len(c.values))
	for i, v := range c.values {
		values[i] = [2]any{v.path, v.values}
	}
	copies := make([][2]string, len(c.claims))
	for i, cc := range c.claims {
		copies[i] = [2]string{cc.name, cc.path}
	}
	b, err := json.Marshal([]any{
		c.name, c.issuer, c.audiences, c.audClaim, c.algs, int64(c.skew), int64(c.maxLifetime), c.typ,
		c.required, values, c.maxBytes, c.subject, c.clientID, c.scopes, c.roles, c.groups, copies,
	})
	if err != nil {
		panic("authn/jwt: provider settings cannot be encoded: " + err.Error()) // plain strings and numbers
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// trimApplication removes a case-insensitive "application/" media type
// prefix (RFC 7515 section 4.1.9 allows it to be omitted).
func trimApplication(s string) string {
	const prefix = "application/"
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):]
	}
	return s
}

var errNoProviders = errors.New("authn/jwt: no identity providers")
