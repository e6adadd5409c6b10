package introspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Reasons of this method (docs/audit.md). Claim checks reuse the JWT
// method's reasons (token_expired, audience_mismatch, missing_claim, …).
const (
	// ReasonInactive: the provider answered active=false (revoked,
	// expired, unknown, or not meant for this client).
	ReasonInactive authn.Reason = "token_inactive"
	// ReasonFailed: the provider could not be asked (unreachable, timeout,
	// an answer other than 200 with a JSON object, the call budget
	// exhausted): 503.
	ReasonFailed authn.Reason = "introspection_failed"
)

// Result is the outcome of one call to the endpoint, for metrics.
type Result string

// Results of a call.
const (
	ResultActive      Result = "active"
	ResultInactive    Result = "inactive"
	ResultError       Result = "error"
	ResultRateLimited Result = "rate_limited"
)

// Observer is what the method reports to, if the process's observer
// (registry.Env.Observer) implements it: internal/metrics does.
type Observer interface {
	// Introspection returns the observer of one provider, once per
	// provider when its introspector opens.
	Introspection(provider string) ProviderObserver
}

// ProviderObserver sees one provider's cache lookups and calls. Cheap,
// non-blocking, no allocation.
type ProviderObserver interface {
	CacheLookup(hit bool)
	Call(d time.Duration, result Result)
}

// Introspector asks one provider about tokens and remembers its answers.
// It is the resource shared across reloads (keyed by the provider's whole
// configuration, since its answers are mapped identities); safe for
// concurrent use.
type Introspector struct {
	name      string
	issuer    string
	rules     *jwt.ClaimRules
	now       func() time.Time
	auth      *clientAuth
	endpoint  *endpoint
	client    *http.Client
	userAgent string
	timeout   time.Duration
	ttl       time.Duration
	negTTL    time.Duration
	cache     *cache
	group     singleflight.Group
	slots     chan struct{}
	limiter   *rate.Limiter
	obs       ProviderObserver
	signed    *signedAnswers // response_format jwt; nil: json
}

// Deps are what an Introspector uses besides its configuration.
type Deps struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Observer sees cache lookups and calls (nil: none).
	Observer ProviderObserver
	// Keys and Algorithms verify signed answers (response_format jwt):
	// the provider's signing keys, as the jwt method uses them.
	Keys       jwt.KeySource
	Algorithms []jose.SignatureAlgorithm
}

// NewIntrospector compiles an introspecting provider.
func NewIntrospector(pc config.IdentityProvider, deps Deps) (*Introspector, error) {
	in := pc.Introspection
	if in == nil {
		return nil, fmt.Errorf("authn/introspect: provider %q has no introspection block", pc.Name)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	rules, err := jwt.NewClaimRules(jwt.ProviderFromConfig(pc), identity.MethodIntrospection)
	if err != nil {
		return nil, err
	}
	auth, err := newClientAuth(pc)
	if err != nil {
		return nil, err
	}
	timeout := in.Timeout.Std()
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	size, slots, perSecond := max(in.CacheSize, 1), max(in.MaxConcurrent, 1), max(in.RateLimit, 1)
	var signed *signedAnswers
	if in.ResponseFormat == "jwt" {
		if deps.Keys == nil || len(deps.Algorithms) == 0 {
			return nil, fmt.Errorf("authn/introspect: provider %q: response_format jwt needs the provider's signing keys", pc.Name)
		}
		signed = &signedAnswers{keys: deps.Keys, algs: deps.Algorithms, issuer: pc.Issuer, clientID: in.ClientID, skew: pc.ClockSkew.Std()}
	}
	return &Introspector{
		signed:    signed,
		name:      pc.Name,
		issuer:    pc.Issuer,
		rules:     rules,
		now:       now,
		auth:      auth,
		endpoint:  &endpoint{issuer: pc.Issuer, allowHTTP: pc.InsecureAllowHTTP, url: in.Endpoint},
		client:    newHTTPClient(timeout),
		userAgent: "gatehouse",
		timeout:   timeout,
		ttl:       in.CacheTTL.Std(),
		negTTL:    in.NegativeCacheTTL.Std(),
		cache:     newCache(size, in.StaleIfError.Std()),
		slots:     make(chan struct{}, slots),
		limiter:   rate.NewLimiter(rate.Limit(perSecond), perSecond),
		obs:       deps.Observer,
	}, nil
}

// Close drops idle connections.
func (in *Introspector) Close() { in.client.CloseIdleConnections() }

// Name is the provider's name.
func (in *Introspector) Name() string { return in.name }

// answer is one introspection's outcome, shared by collapsed callers.
type answer struct {
	id   *identity.Identity
	fail *authn.Failure
}

// Introspect returns the identity an active token states, an
// *authn.Failure (inactive: token_inactive; refused by a claim check: the
// JWT method's reason), or an *authn.UnavailableError (introspection_failed).
// A cached answer is reused without a call; concurrent introspections of
// one token make one call.
func (in *Introspector) Introspect(ctx context.Context, token string) (*identity.Identity, error) {
	// The slice aliases the string only for the duration of the hash,
	// which neither keeps nor changes it: no copy of the token.
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	now := in.now()
	if e := in.cache.get(&key, now); e != nil {
		if in.obs != nil {
			in.obs.CacheLookup(true)
		}
		if e.id != nil {
			return e.id, nil
		}
		f := *e.fail // each request gets its own failure
		return nil, &f
	}
	if in.obs != nil {
		in.obs.CacheLookup(false)
	}
	return in.miss(ctx, key, token)
}

// miss asks the provider (or waits for the call already asking about the
// same token). Apart from Introspect so that the hit path keeps its key on
// the stack.
func (in *Introspector) miss(ctx context.Context, key [32]byte, token string) (*identity.Identity, error) {
	ch := in.group.DoChan(string(key[:]), func() (any, error) { return in.call(&key, token) })
	select {
	case <-ctx.Done():
		return nil, in.unavailable(fmt.Errorf("authn/introspect: %w", ctx.Err()))
	case res := <-ch:
		if res.Err != nil {
			if id := in.cache.staleIdentity(&key, in.now()); id != nil {
				return id, nil // stale_if_error, within its bound
			}
			return nil, res.Err
		}
		a := res.Val.(answer)
		if a.fail != nil {
			f := *a.fail
			return nil, &f
		}
		return a.id, nil
	}
}

// call asks the endpoint, detached from any one request's cancellation
// (collapsed callers share it), within the timeout.
func (in *Introspector) call(key *[32]byte, token string) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), in.timeout)
	defer cancel()
	start := time.Now()
	claims, result, err := in.ask(ctx, token)
	if in.obs != nil {
		in.obs.Call(time.Since(start), result)
	}
	if err != nil {
		return nil, err
	}
	now := in.now()
	if claims == nil {
		f := &authn.Failure{Method: identity.MethodIntrospection, Reason: ReasonInactive,
			Description: "The access token is not active.", Provider: in.name, Issuer: in.issuer,
			Err: errors.New("authn/introspect: the provider answered active=false")}
		in.cache.putFailure(key, f, now, in.negTTL)
		return answer{fail: f}, nil
	}
	id, err := in.identity(claims, now)
	if err != nil {
		var f *authn.Failure
		if !errors.As(err, &f) {
			return nil, in.unavailable(err)
		}
		f.Provider, f.Issuer = in.name, in.issuer
		in.cache.putFailure(key, f, now, in.negTTL)
		return answer{fail: f}, nil
	}
	in.cache.putIdentity(key, id, now, in.ttl)
	return answer{id: id}, nil
}

// ask makes the call: nil claims for active=false.
func (in *Introspector) ask(ctx context.Context, token string) (map[string]any, Result, error) {
	select {
	case in.slots <- struct{}{}:
		defer func() { <-in.slots }()
	case <-ctx.Done():
		return nil, ResultRateLimited, in.unavailable(errors.New("authn/introspect: no free call slot within the timeout"))
	}
	if err := in.limiter.Wait(ctx); err != nil {
		return nil, ResultRateLimited, in.unavailable(fmt.Errorf("authn/introspect: rate limit: %w", err))
	}
	endpoint, err := in.endpoint.discover(ctx, in.client, in.userAgent)
	if err != nil {
		return nil, ResultError, in.unavailable(err)
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, ResultError, in.unavailable(fmt.Errorf("authn/introspect: %w", err))
	}
	if err := in.auth.apply(req, form, in.now()); err != nil {
		return nil, ResultError, in.unavailable(err)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if in.signed != nil {
		req.Header.Set("Accept", jwtResponseType)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", in.userAgent)
	res, err := in.client.Do(req)
	if err != nil {
		// url.Error names the URL only, never the form: the token stays out.
		return nil, ResultError, in.unavailable(fmt.Errorf("authn/introspect: %w", err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	switch {
	case err != nil:
		return nil, ResultError, in.unavailable(fmt.Errorf("authn/introspect: reading the answer: %w", err))
	case res.StatusCode != http.StatusOK:
		return nil, ResultError, in.unavailable(fmt.Errorf("authn/introspect: the endpoint answered %d", res.StatusCode))
	case len(raw) > maxResponseBytes:
		return nil, ResultError, in.unavailable(errors.New("authn/introspect: answer too large"))
	}
	var claims map[string]any
	if in.signed != nil {
		claims, err = in.signed.parseSigned(ctx, res.Header.Get("Content-Type"), raw, in.now())
	} else {
		claims, err = parseResponse(raw)
	}
	if err != nil {
		return nil, ResultError, in.unavailable(err)
	}
	if claims == nil {
		return nil, ResultInactive, nil
	}
	return claims, ResultActive, nil
}

// parseResponse decodes an RFC 7662 answer: one JSON object whose active
// member is a boolean. It returns nil claims for active=false; anything
// else (no active, a string "true", trailing data) is an error: the
// provider is not answering as the RFC says, and nothing is accepted.
func parseResponse(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("authn/introspect: the answer is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("authn/introspect: trailing data after the answer")
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New("authn/introspect: the answer has no boolean active member")
	}
	if !active {
		return nil, nil
	}
	return claims, nil
}

// accessTokenTypes are the token_type (and Hydra's token_use) values that
// name an access token usable with the Bearer scheme, compared
// case-insensitively.
var accessTokenTypes = []string{"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"}

// identity checks what the JWT rules do not: iss (when present) is the
// provider's, token_type and token_use (when present) name a bearer access
// token; then the provider's claim rules (exp, nbf, iat, lifetime, aud,
// required claims and values, subject) and mapping.
func (in *Introspector) identity(claims map[string]any, now time.Time) (*identity.Identity, error) {
	fail := func(reason authn.Reason, err error) error {
		return &authn.Failure{Method: identity.MethodIntrospection, Reason: reason,
			Description: "The access token is not valid.", Err: err}
	}
	if iss, present := claims["iss"]; present {
		if s, ok := iss.(string); !ok || s != in.issuer {
			return nil, fail(authn.ReasonUnknownIssuer, errors.New("authn/introspect: iss is not the provider's issuer"))
		}
	}
	for _, member := range [...]string{"token_type", "token_use"} {
		v, present := claims[member]
		if !present {
			continue
		}
		s, _ := v.(string)
		ok := false
		for _, t := range accessTokenTypes {
			ok = ok || strings.EqualFold(s, t)
		}
		if !ok {
			return nil, fail(authn.ReasonTyp, fmt.Errorf("authn/introspect: %s %q is not an access token usable as Bearer", member, auditString(s)))
		}
	}
	return in.rules.Identity(claims, now)
}

func auditString(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func (in *Introspector) unavailable(err error) *authn.UnavailableError {
	return &authn.UnavailableError{Method: identity.MethodIntrospection, Reason: ReasonFailed, Provider: in.name, Err: err}
}
