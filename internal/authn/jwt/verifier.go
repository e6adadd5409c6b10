package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// Verifier verifies the access tokens of a fixed set of providers. It is
// immutable once built and safe for concurrent use.
type Verifier struct {
	providers []*provider
	byIssuer  map[string]*provider
	byName    map[string]*provider
	// algs is the union of every provider's algorithms: the list go-jose
	// parses with. Each provider's own list is checked once iss is known.
	algs []jose.SignatureAlgorithm
	// maxBytes is the largest provider limit, checked before parsing.
	maxBytes int
	now      func() time.Time
	// cached: some provider has a token cache (provider.cache).
	cached bool
	// onCache is VerifierOptions.OnCacheLookup (nil: none).
	onCache func(hit bool)
	// needed is every top-level claim some provider reads: a cache miss
	// decodes only those (decodeNeededClaims).
	needed claimNames
}

// NewVerifier compiles providers into a Verifier. It refuses an empty list,
// duplicate names or issuers, unknown algorithms, "none", and any provider
// without an issuer, audience or key source. now is the clock (nil:
// time.Now). Verified tokens are cached (DefaultCacheSize entries); see
// NewVerifierWithOptions.
func NewVerifier(providers []Provider, now func() time.Time) (*Verifier, error) {
	return NewVerifierWithOptions(providers, VerifierOptions{Now: now})
}

// NewVerifierWithOptions is NewVerifier with options; see VerifierOptions.
func NewVerifierWithOptions(providers []Provider, opts VerifierOptions) (*Verifier, error) {
	if len(providers) == 0 {
		return nil, errNoProviders
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{
		byIssuer: make(map[string]*provider, len(providers)),
		byName:   make(map[string]*provider, len(providers)),
		now:      now,
		needed:   claimNames{},
	}
	for i, p := range providers {
		c, err := compileProvider(i, p)
		if err != nil {
			return nil, err
		}
		if c.dpop == nil {
			if c.dpop, err = dpop.New(dpop.Config{Now: now}); err != nil {
				return nil, err
			}
		}
		switch {
		case p.Cache != nil:
			if !p.Cache.bind(c.fingerprint) {
				return nil, fmt.Errorf("authn/jwt: provider %q: its token cache serves a provider with other settings", c.name)
			}
			c.cache = p.Cache
		case opts.CacheSize == 0:
			c.cache = newTokenCache(DefaultCacheSize)
		case opts.CacheSize > 0:
			c.cache = newTokenCache(opts.CacheSize)
		}
		v.cached = v.cached || c.cache != nil
		if _, dup := v.byName[c.name]; dup {
			return nil, fmt.Errorf("authn/jwt: provider name %q is used twice", c.name)
		}
		if other, dup := v.byIssuer[c.issuer]; dup {
			return nil, fmt.Errorf("authn/jwt: providers %q and %q have the same issuer %q: a token's iss must select exactly one provider", other.name, c.name, c.issuer)
		}
		v.byName[c.name] = c
		v.byIssuer[c.issuer] = c
		v.needed.addProvider(c)
		v.providers = append(v.providers, c)
		v.maxBytes = max(v.maxBytes, c.maxBytes)
		for _, a := range c.algs {
			if !slices.Contains(v.algs, a) {
				v.algs = append(v.algs, a)
			}
		}
	}
	v.onCache = opts.OnCacheLookup
	return v, nil
}

// Header parameters go-jose leaves in Header.ExtraHeaders.
const (
	headerCrit jose.HeaderKey = "crit"
	headerB64  jose.HeaderKey = "b64"
	headerJKU  jose.HeaderKey = "jku"
	headerX5U  jose.HeaderKey = "x5u"
)

// maxCandidateKeys bounds the signature verifications one token may cost
// when it names no kid and the provider has many keys of the right type.
const maxCandidateKeys = 8

// maxAuditIssuer bounds how much of an unknown, attacker-chosen iss is
// recorded in a Failure.
const maxAuditIssuer = 256

// Verify checks raw, a JWS compact serialisation, and returns the caller's
// identity. It returns an *authn.Failure when the token is not valid and an
// *authn.UnavailableError when the provider's keys cannot be obtained.
//
// The checks run in this order, each with its own reason:
//
//  1. longer than the largest provider's MaxTokenBytes: token_too_large
//  2. a well-formed bearer value (RFC 6750 b64token) that is not three or
//     five dot-separated parts of base64url characters, i.e. an opaque
//     token, not a JWT at all: token_unsupported (Authenticator turns this
//     one into an authn.NotMineError, so another method may claim it); a byte other than base64url or '.':
//     token_malformed; five parts (JWE): token_encrypted (Authenticator
//     turns this one into an authn.NotMineError too: a JWE is opaque to the
//     gateway, and introspection may claim it); not three parts
//     of canonical base64url with a
//     JSON header that is valid UTF-8 text (RFC 7519 section 7.2):
//     token_malformed; an alg no provider allows (none, an
//     HMAC nobody listed, …): algorithm_not_allowed, without any
//     verification being attempted
//  3. jku, x5u or jwk header: forbidden_key_header (keys come only from the
//     provider's key source); crit or b64: unsupported_crit; cty JWT:
//     token_nested
//  4. payload not valid UTF-8 text (invalid bytes, or a \u escape of a
//     lone surrogate, which encoding/json would both turn into U+FFFD) or
//     not a JSON object: token_malformed; iss (read unverified,
//     only to select the provider) missing: missing_claim, unknown:
//     unknown_issuer; then the provider's size limit, its algorithms
//     (algorithm_not_allowed) and RequiredType (token_type_mismatch)
//  5. key lookup by kid: unknown_kid, or an *authn.UnavailableError
//     (keys_unavailable); only keys of the alg's type, curve and size are
//     tried; none verifies: bad_signature
//  6. exp (required), nbf, iat, MaxLifetime, aud, RequiredClaims,
//     ClaimValues, subject (required)
//
// Failure.Issuer and Failure.Provider are set once a provider is selected
// (for unknown_issuer, Issuer is the presented iss, cut to 256 bytes, so
// that operators can see which issuer is missing from the configuration);
// Subject and CredentialID (jti) only once the signature has verified, so
// that an audit record never repeats what a forger wrote.
//
// Verify checks the token only: a token bound to a key or a certificate
// (cnf) is returned like any other. The binding is the Authenticator's
// business, on every request (authenticator.go).
func (v *Verifier) Verify(ctx context.Context, raw string) (*identity.Identity, error) {
	t, err := v.verify(ctx, raw, nil)
	return t.id, err
}

// verified is a token that passed Verify: its identity, its provider and
// its cnf claim (nil when it has none), which the binding checks read on
// every request, cache hits included.
type verified struct {
	id  *identity.Identity
	p   *provider
	cnf map[string]any
}

// verify is Verify restricted to the providers marked in allowed (nil: all).
// The restriction is applied as soon as the provider is known, so that a
// route never fetches keys for a provider it does not accept.
func (v *Verifier) verify(ctx context.Context, raw string, allowed []bool) (verified, error) {
	// 1. Size, before any parsing.
	if len(raw) > v.maxBytes {
		return verified{}, failure(authn.ReasonTooLarge, nil, fmt.Errorf("authn/jwt: token of %d bytes exceeds %d", len(raw), v.maxBytes))
	}

	// A token that verified before is accepted again only if the checks
	// that can change since (times, route, keys) still pass; anything else
	// goes through the full verification below.
	var cacheKey uint64
	if v.cached {
		cacheKey = cacheKeyOf(raw)
		t, ok := v.cacheGet(ctx, raw, cacheKey, allowed)
		if v.onCache != nil {
			v.onCache(ok)
		}
		if ok {
			return t, nil
		}
	}

	// 2. Shape and parsing.
	parts, clean := shape(raw)
	switch {
	case opaque(parts, clean, raw):
		// Neither JWS nor JWE compact form, but a well-formed bearer
		// value: an opaque token (Hydra's ory_at_…, Auth0's, GitHub's),
		// not a broken JWT.
		return verified{}, failure(authn.ReasonUnsupported, nil, errNotJWT)
	case parts != 3 && parts != 5:
		return verified{}, failure(authn.ReasonMalformed, nil, errParts)
	case !clean:
		return verified{}, failure(authn.ReasonMalformed, nil, errEncoding)
	case parts == 5:
		return verified{}, failure(authn.ReasonEncrypted, nil, errEncrypted)
	case !canonical(raw):
		return verified{}, failure(authn.ReasonMalformed, nil, errEncoding)
	case !headerIsText(raw):
		return verified{}, failure(authn.ReasonMalformed, nil, errNotText)
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return verified{}, parseFailure(raw, err)
	}
	if len(jws.Signatures) != 1 {
		return verified{}, failure(authn.ReasonMalformed, nil, errParts)
	}
	h := &jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(h.Algorithm)

	// 3. Header parameters we refuse to act on.
	if reason, err := checkHeader(h); err != nil {
		return verified{}, failure(reason, nil, err)
	}

	// 4. Provider selection. The payload is parsed once, here; its claims
	// other than iss are read only after the signature over these very
	// bytes has verified. The text and duplicate checks cover the whole
	// payload; only the members some provider reads are decoded.
	payload := jws.UnsafePayloadWithoutVerification()
	if !validJSONText(payload) || hasDuplicateKeys(payload) {
		return verified{}, failure(authn.ReasonMalformed, nil, errNotText)
	}
	claims, err := decodeNeededClaims(payload, v.needed)
	if err != nil {
		return verified{}, failure(authn.ReasonMalformed, nil, err)
	}
	p, fail := v.selectProvider(claims)
	if fail != nil {
		return verified{}, fail
	}
	if allowed != nil && !allowed[p.index] {
		return verified{}, failure(authn.ReasonProviderDenied, p, fmt.Errorf("authn/jwt: provider %q is not accepted on this route", p.name))
	}
	if len(raw) > p.maxBytes {
		return verified{}, failure(authn.ReasonTooLarge, p, fmt.Errorf("authn/jwt: token of %d bytes exceeds %d", len(raw), p.maxBytes))
	}
	if !slices.Contains(p.algs, alg) {
		return verified{}, failure(authn.ReasonAlgorithm, p, fmt.Errorf("authn/jwt: algorithm %q is not allowed for this provider", alg))
	}
	if p.typ != "" {
		typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
		if !strings.EqualFold(trimApplication(typ), p.typ) {
			return verified{}, failure(authn.ReasonTyp, p, fmt.Errorf("authn/jwt: typ %q is not %q", typ, p.typ))
		}
	}

	// 5. Keys and signature.
	key, fail, unavailable := p.verifySignature(ctx, jws, alg, h.KeyID)
	if fail != nil {
		return verified{}, fail
	} else if unavailable != nil {
		return verified{}, unavailable
	}

	// 6. Claims, now authentic.
	now := v.now()
	id, err := p.identity(claims, now)
	if err != nil {
		return verified{}, err
	}
	// The token's SHA-256, for revocation by token hash (checked by the
	// pipeline after the chain, on cache hits too). Computed once, here:
	// a cache hit serves the identity stored with it, hash included.
	id.TokenHash = tokenSHA256(raw)
	// identity has refused a cnf that is not an object.
	cnf, _ := claims["cnf"].(map[string]any)
	if v.cached && p.cache != nil {
		p.cache.put(raw, cacheKey, cacheEntryFor(id, p, h.KeyID, alg, key, claims, cnf), now)
	}
	return verified{id: id, p: p, cnf: cnf}, nil
}

// cacheGet looks the token up in the caches of the providers allowed here
// (a token has one issuer, so it is in one cache at most); false: a miss.
// Skipping the caches of providers the route does not accept is what
// enforces the route's provider filter on hits. The provider returned is
// the current one (this verifier's), so the binding checks that follow use
// its current settings.
func (v *Verifier) cacheGet(ctx context.Context, raw string, key uint64, allowed []bool) (verified, bool) {
	now := v.now()
	for _, p := range v.providers {
		if p.cache == nil || (allowed != nil && !allowed[p.index]) {
			continue
		}
		if e, ok := p.cache.get(ctx, raw, key, p, now); ok {
			return verified{id: e.id, p: p, cnf: e.cnf}, true
		}
	}
	return verified{}, false
}

// tokenSHA256 is identity.TokenHash of raw. Sum256 only reads its
// argument, so the string's bytes are hashed in place rather than copied.
func tokenSHA256(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// selectProvider reads iss, unverified, to pick the provider.
func (v *Verifier) selectProvider(claims map[string]any) (*provider, *authn.Failure) {
	switch iss := claims["iss"].(type) {
	case nil:
		return nil, failure(authn.ReasonMissingClaim, nil, errors.New("authn/jwt: iss is missing"))
	case string:
		p, ok := v.byIssuer[iss]
		if !ok {
			f := failure(authn.ReasonUnknownIssuer, nil, errors.New("authn/jwt: unknown issuer"))
			f.Issuer = auditString(iss, maxAuditIssuer)
			return nil, f
		}
		return p, nil
	default:
		return nil, failure(authn.ReasonMalformed, nil, errors.New("authn/jwt: iss is not a string"))
	}
}

// verifySignature finds the provider's keys for kid and verifies the
// signature with each key that suits alg. It returns the key that verified.
func (p *provider) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, alg jose.SignatureAlgorithm, kid string) (any, *authn.Failure, *authn.UnavailableError) {
	keys, err := p.keys.Lookup(ctx, kid)
	if err != nil {
		if errors.Is(err, keyset.ErrUnknownKID) {
			return nil, failure(authn.ReasonUnknownKID, p, fmt.Errorf("authn/jwt: %w", err)), nil
		}
		// ErrUnavailable, a cancelled context or anything unexpected: the
		// token could not be checked, so it is not accepted either.
		return nil, nil, &authn.UnavailableError{Method: identity.MethodJWT, Reason: authn.ReasonKeysUnavailable, Provider: p.name, Err: fmt.Errorf("authn/jwt: provider %q: %w", p.name, err)}
	}
	tried := 0
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != "" && k.KeyID != kid {
			continue // the key source answered with a key that was not asked for
		}
		if !keyFits(alg, k) {
			continue
		}
		if tried == maxCandidateKeys {
			break
		}
		tried++
		if _, err := jws.Verify(k.Key); err == nil {
			return k.Key, nil, nil
		}
	}
	if tried == 0 {
		return nil, failure(authn.ReasonBadSignature, p, fmt.Errorf("authn/jwt: no %s key among %d", alg, len(keys))), nil
	}
	return nil, failure(authn.ReasonBadSignature, p, fmt.Errorf("authn/jwt: signature does not verify with %d %s key(s)", tried, alg)), nil
}

// checkHeader refuses header parameters that would have us fetch or trust
// keys named by the token, extensions we do not implement, and nesting.
func checkHeader(h *jose.Header) (authn.Reason, error) {
	if h.JSONWebKey != nil || hasHeader(h, headerJKU) || hasHeader(h, headerX5U) {
		return authn.ReasonKeyHeader, errKeyHeader
	}
	// go-jose understands crit:["b64"] and would honour b64 even without
	// crit; we implement no extension at all (RFC 7515 section 4.1.11).
	if hasHeader(h, headerCrit) || hasHeader(h, headerB64) {
		return authn.ReasonCrit, errCrit
	}
	if cty, _ := h.ExtraHeaders[jose.HeaderContentType].(string); strings.EqualFold(trimApplication(cty), "JWT") {
		return authn.ReasonNested, errNested
	}
	return "", nil
}

func hasHeader(h *jose.Header, k jose.HeaderKey) bool {
	_, ok := h.ExtraHeaders[k]
	return ok
}

// parseFailure classifies an error of jose.ParseSignedCompact.
func parseFailure(raw string, err error) *authn.Failure {
	var unexpected *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &unexpected) {
		return failure(authn.ReasonAlgorithm, nil, fmt.Errorf("authn/jwt: algorithm %q is not allowed", unexpected.Got))
	}
	// go-jose itself refuses some embedded keys (private or invalid jwk);
	// report them as what they are.
	if keyHeaderPresent(raw) {
		return failure(authn.ReasonKeyHeader, nil, errKeyHeader)
	}
	return failure(authn.ReasonMalformed, nil, fmt.Errorf("authn/jwt: %w", err))
}

// keyHeaderPresent reports whether the protected header of raw (which
// go-jose could not parse) names a key. Error path only.
func keyHeaderPresent(raw string) bool {
	header, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	var h struct {
		JKU json.RawMessage `json:"jku"`
		X5U json.RawMessage `json:"x5u"`
		JWK json.RawMessage `json:"jwk"`
	}
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	return h.JKU != nil || h.X5U != nil || h.JWK != nil
}

// decodeClaims parses a JWT payload: exactly one JSON object. Numbers stay
// json.Number so that large integers keep their precision.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("authn/jwt: payload: %w", err)
	}
	if claims == nil {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return claims, nil
}

// b64url marks the bytes of the base64url alphabet.
var b64url = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

// shape counts the dot-separated parts of raw and reports whether every
// other byte is base64url. Compact serialisations use nothing else, and
// refusing the rest early also refuses what Go's decoder would silently
// skip (\r, \n) or accept (padding).
func shape(raw string) (parts int, clean bool) {
	parts, clean = 1, true
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			parts++
		case !b64url[c]:
			clean = false
		}
	}
	return parts, clean
}

// opaque reports whether raw, of the given shape, is a well-formed bearer
// value (RFC 6750 b64token) that is not in JWS or JWE compact form (three
// or five dot-separated segments of base64url characters): an opaque
// token, not a JWT at all. Structural only: nothing is decoded.
func opaque(parts int, clean bool, raw string) bool {
	return (parts != 3 && parts != 5 || !clean) && b64token(raw)
}

// b64token reports whether raw is a non-empty b64token, the syntax of a
// bearer credential (RFC 6750 section 2.1): 1*( ALPHA / DIGIT / "-" / "."
// / "_" / "~" / "+" / "/" ) *"=".
func b64token(raw string) bool {
	body := strings.TrimRight(raw, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case b64url[c], c == '.', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// strictB64 rejects non-zero padding bits, which the default decoder
// ignores.
var strictB64 = base64.RawURLEncoding.Strict()

// canonical reports whether each part of raw is canonical base64url: the
// unused bits of a final partial quantum must be zero. Otherwise one token
// would have several spellings, which matters to anything keyed on the
// token string (a cache, a revocation list).
func canonical(raw string) bool {
	for rest, more := raw, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ".")
		n := len(part) % 4
		if n == 0 {
			continue
		}
		var tail [4]byte
		copy(tail[:], part[len(part)-n:])
		var dst [3]byte
		if _, err := strictB64.Decode(dst[:], tail[:n]); err != nil {
			return false
		}
	}
	return true
}

// auditString bounds an untrusted string kept for audit.
func auditString(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

var (
	errEncrypted = errors.New("authn/jwt: encrypted token (JWE)")
	errParts     = errors.New("authn/jwt: not a compact JWS of three parts")
	errNotJWT    = errors.New("authn/jwt: bearer value is not a JWT (not three or five dot-separated base64url parts)")
	errEncoding  = errors.New("authn/jwt: not canonical base64url")
	errKeyHeader = errors.New("authn/jwt: jku, x5u or jwk header")
	errCrit      = errors.New("authn/jwt: crit or b64 header: no extension is supported")
	errNested    = errors.New("authn/jwt: nested token (cty JWT)")
	errNotObject = errors.New("authn/jwt: payload is not a JSON object")
	errTrailing  = errors.New("authn/jwt: payload has trailing data")
)

// Descriptions shown to clients: enough for an honest client to act on,
// never which key, audience or value was expected.
const (
	descMalformed   = "The access token is malformed."
	descUnsupported = "The bearer token is not a JWT; this route accepts only JWT access tokens."
	descTooLarge    = "The access token is too large."
	descEncrypted   = "Encrypted access tokens are not accepted."
	descExpired     = "The access token is expired."
	descNotYetValid = "The access token is not yet valid."
	descRoute       = "The access token is not accepted on this route."
	descInvalid     = "The access token is not valid."
)

func failure(reason authn.Reason, p *provider, err error) *authn.Failure {
	f := &authn.Failure{Method: identity.MethodJWT, Reason: reason, Err: err}
	switch reason {
	case authn.ReasonMalformed:
		f.Description = descMalformed
	case authn.ReasonUnsupported:
		f.Description = descUnsupported
	case authn.ReasonTooLarge:
		f.Description = descTooLarge
	case authn.ReasonEncrypted:
		f.Description = descEncrypted
	case authn.ReasonExpired:
		f.Description = descExpired
	case authn.ReasonNotYetValid:
		f.Description = descNotYetValid
	case authn.ReasonProviderDenied:
		f.Description = descRoute
	default:
		f.Description = descInvalid
	}
	if p != nil {
		f.Issuer, f.Provider = p.issuer, p.name
	}
	return f
}
