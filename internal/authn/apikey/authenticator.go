// Package apikey is the API-key authenticator: it reads a Gatehouse key
// from the request, rejects malformed ones without touching the store,
// finds the key by its keyed hash (cached, positively and negatively), and
// turns the key's consumer into the caller's identity.
package apikey

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Reasons of the API-key authenticator, in addition to authn's shared ones.
// They appear in audit events and never change meaning.
const (
	// ReasonKeyMalformed: the presented string is not a well-formed key of
	// the configured format (prefix, length, alphabet, checksum), or keys
	// were presented in more than one place.
	ReasonKeyMalformed authn.Reason = "key_malformed"
	// ReasonKeyUnknown: a well-formed key that no stored key hashes to.
	ReasonKeyUnknown authn.Reason = "key_unknown"
	// ReasonKeyRevoked: the key was revoked.
	ReasonKeyRevoked authn.Reason = "key_revoked"
	// ReasonKeyExpired: the key is past its expiry (including the end of a
	// rotation's grace period).
	ReasonKeyExpired authn.Reason = "key_expired"
	// ReasonRouteNotAllowed: the key is restricted to routes and the
	// request's route is not one of them.
	ReasonRouteNotAllowed authn.Reason = "key_route_not_allowed"
	// ReasonStoreUnavailable: the key store could not be asked (503).
	ReasonStoreUnavailable authn.Reason = "store_unavailable"
)

// Identity values of key-authenticated callers.
const (
	// Issuer is the identity issuer of every API-key caller.
	Issuer = "gatehouse"
	// Provider is the identity provider name of every API-key caller.
	Provider = "api_keys"
)

// Defaults of Config.
const (
	DefaultHeader      = "X-API-Key"
	DefaultScheme      = "ApiKey"
	DefaultCacheTTL    = 30 * time.Second
	DefaultNegativeTTL = 10 * time.Second
	DefaultMaxEntries  = 100_000
)

// descInvalid is the one client-facing description of every bad key:
// malformed, unknown, revoked, expired, and a valid key on a route it may
// not use. One text (and so one response) means the answer is no oracle: a
// caller holding a stolen or guessed key cannot learn whether it exists, or
// which routes it opens. Only the audit event (Failure.Reason) tells the
// cases apart.
const descInvalid = "The API key is not valid."

// Config configures an Authenticator. The zero value of every optional
// field selects its default.
type Config struct {
	// Cache, if set, is the shared cache (and store) the Authenticator looks
	// keys up in; Store, CacheTTL, NegativeTTL, MaxEntries, LookupTimeout
	// and MaxLookups are then ignored. Share one Cache between every route
	// and across reloads (see Cache). Default: a Cache of its own, built
	// from those fields.
	Cache *Cache
	// Store holds the hashed keys. Required unless Cache is set.
	Store apikey.Store
	// Format is the key format; a key that fails Format.Check is refused
	// before any store lookup. The zero value uses apikey.DefaultPrefix.
	Format apikey.Format
	// Hasher computes the lookup hash. It must be the one the keys were
	// stored with (same pepper). nil hashes with plain SHA-256, as a nil
	// *apikey.Hasher does.
	Hasher *apikey.Hasher
	// Header is the request header carrying the key. Default "X-API-Key".
	// It may not be Authorization (see AuthorizationSchemes).
	Header string
	// AuthorizationSchemes are the Authorization schemes whose credential is
	// an API key, compared case-insensitively. Default ["ApiKey"].
	//
	// With "Bearer" listed, a Bearer credential that does not start with
	// the key prefix is not an API key: the authenticator answers
	// ErrNoCredential so that a JWT authenticator later in the chain can
	// take it. A Bearer credential with the prefix is ours, and fails here
	// if it is not a valid key.
	AuthorizationSchemes []string
	// QueryParam, if set, is a query parameter also read for the key.
	// Default: none. Security: URLs end up in access logs, browser history
	// and Referer headers, so a key in a query string leaks easily; enable
	// it only on routes whose clients cannot send headers.
	QueryParam string
	// CacheTTL is how long a found key (active, revoked or expired) is
	// cached. Default 30s; negative disables the positive cache. It bounds
	// how long a revocation takes effect on replicas that are not told
	// through Invalidate. Status and expiry of a cached key are re-checked
	// on every request, so an expiring key stops at its expiry exactly.
	CacheTTL time.Duration
	// NegativeTTL is how long an unknown (well-formed) key is remembered as
	// unknown, so that a flood of one key cannot overload the store.
	// Default 10s; negative disables the negative cache. A key created
	// after it was tried may be refused this long (keys are random, so in
	// practice never).
	NegativeTTL time.Duration
	// MaxEntries bounds the cache. Default 100,000. Found keys may use
	// MaxEntries-MaxEntries/2 entries and unknown ones MaxEntries/2, so a
	// flood of unknown keys cannot evict the keys of real callers. A full
	// half evicts an arbitrary entry (expired ones first when found).
	MaxEntries int
	// LookupTimeout and MaxLookups bound store calls, as in CacheConfig.
	LookupTimeout time.Duration
	MaxLookups    int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Touch, if set, records each successful key's last-used time; it
	// batches writes, never one per request. The Authenticator does not
	// own it: its creator closes it.
	Touch *Toucher
	// Routes, if set, names the request's route and its tags. A key with
	// Routes set works only on a route whose name or one of whose tags it
	// lists; if Routes is nil such a key is refused everywhere (fail
	// closed).
	Routes func(*http.Request) (routeName string, routeTags []string)
}

// Authenticator verifies API keys. It is safe for concurrent use and
// never logs or returns the key.
type Authenticator struct {
	keys         *Cache
	format       apikey.Format
	prefix       string
	hasher       *apikey.Hasher
	header       string
	schemes      []string
	bearerShared bool // "Bearer" is among schemes: only prefixed values are ours
	queryParam   string
	now          func() time.Time
	touch        *Toucher
	routes       func(*http.Request) (string, []string)
}

var _ authn.Authenticator = (*Authenticator)(nil)

// New validates cfg, applies its defaults and returns the Authenticator.
func New(cfg Config) (*Authenticator, error) {
	keys := cfg.Cache
	if keys == nil {
		var err error
		keys, err = NewCache(CacheConfig{
			Store: cfg.Store, TTL: cfg.CacheTTL, NegativeTTL: cfg.NegativeTTL, MaxEntries: cfg.MaxEntries,
			LookupTimeout: cfg.LookupTimeout, MaxLookups: cfg.MaxLookups,
		})
		if err != nil {
			return nil, err
		}
	}
	format, err := apikey.NewFormat(cfg.Format.Prefix)
	if err != nil {
		return nil, fmt.Errorf("authn/apikey: %w", err)
	}
	a := &Authenticator{
		keys:       keys,
		format:     format,
		prefix:     format.Prefix,
		hasher:     cfg.Hasher,
		queryParam: cfg.QueryParam,
		now:        cfg.Now,
		touch:      cfg.Touch,
		routes:     cfg.Routes,
	}
	header := cfg.Header
	if header == "" {
		header = DefaultHeader
	}
	a.header = http.CanonicalHeaderKey(header)
	if a.header == "Authorization" {
		return nil, errors.New("authn/apikey: header may not be Authorization; list schemes in AuthorizationSchemes instead")
	}
	if strings.ContainsAny(a.header, " \t\r\n:") {
		return nil, fmt.Errorf("authn/apikey: invalid header name %q", cfg.Header)
	}
	schemes := cfg.AuthorizationSchemes
	if len(schemes) == 0 {
		schemes = []string{DefaultScheme}
	}
	for _, s := range schemes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, fmt.Errorf("authn/apikey: invalid Authorization scheme %q", s)
		}
		if strings.EqualFold(s, "Bearer") {
			a.bearerShared = true
		}
		a.schemes = append(a.schemes, s)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Method returns identity.MethodAPIKey.
func (a *Authenticator) Method() identity.Method { return identity.MethodAPIKey }

// Authenticate finds the request's API key and returns its consumer's
// identity, ErrNoCredential when the request carries no key, a
// *authn.Failure for a bad key, or an *authn.UnavailableError when the
// store cannot be asked (fail closed). It never writes the response.
//
// The returned Identity may be shared with other requests of the same key
// (it comes from the cache): like every Identity it must not be modified.
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	key, err := a.extract(r)
	if err != nil {
		return nil, err
	}
	if err := a.format.Check(key); err != nil {
		return nil, invalid(ReasonKeyMalformed, nil, nil, fmt.Errorf("authn/apikey: %w", err))
	}
	hash := a.hasher.Hash(key)
	now := a.now()
	e, err := a.keys.lookup(r.Context(), hash, now)
	if err != nil {
		return nil, &authn.UnavailableError{
			Method:   identity.MethodAPIKey,
			Reason:   ReasonStoreUnavailable,
			Provider: Provider,
			Err:      fmt.Errorf("authn/apikey: looking up key: %w", err),
		}
	}
	if e == nil {
		return nil, invalid(ReasonKeyUnknown, nil, nil, errUnknown)
	}
	return a.check(r, e, now)
}

// Invalidate drops the key with id keyID from the cache (shared with every
// Authenticator on the same Cache) at once; see Cache.Invalidate.
func (a *Authenticator) Invalidate(keyID string) { a.keys.Invalidate(keyID) }

// check applies the per-request checks to a found key: status, expiry
// (against now, also for cached keys) and route restriction.
func (a *Authenticator) check(r *http.Request, e *entry, now time.Time) (*identity.Identity, error) {
	k := e.key
	if k.Status != apikey.StatusActive {
		return nil, invalid(ReasonKeyRevoked, k, e.consumer, fmt.Errorf("authn/apikey: key status %q", k.Status))
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, invalid(ReasonKeyExpired, k, e.consumer, errExpired)
	}
	if len(k.Routes) > 0 && !a.routeAllowed(r, k.Routes) {
		return nil, invalid(ReasonRouteNotAllowed, k, e.consumer, errRoute)
	}
	if a.touch != nil {
		a.touch.Touch(k.ID, now)
	}
	return e.id, nil
}

func (a *Authenticator) routeAllowed(r *http.Request, allowed []string) bool {
	if a.routes == nil {
		return false
	}
	name, tags := a.routes(r)
	if name != "" && slices.Contains(allowed, name) {
		return true
	}
	for _, t := range tags {
		if t != "" && slices.Contains(allowed, t) {
			return true
		}
	}
	return false
}

// invalid builds the failure for a bad key. k and c, when known, name the
// key and its consumer for the audit event.
func invalid(reason authn.Reason, k *apikey.Key, c *apikey.Consumer, err error) *authn.Failure {
	f := &authn.Failure{
		Method:      identity.MethodAPIKey,
		Reason:      reason,
		Description: descInvalid,
		Issuer:      Issuer,
		Provider:    Provider,
		Err:         err,
	}
	if k != nil {
		f.CredentialID = k.ID
	}
	if c != nil {
		f.Subject = c.ID
	}
	return f
}

var (
	errAmbiguous  = errors.New("authn/apikey: a key was presented in more than one place")
	errEmpty      = errors.New("authn/apikey: an empty key was presented")
	errUnknown    = errors.New("authn/apikey: no such key")
	errExpired    = errors.New("authn/apikey: key expired")
	errRoute      = errors.New("authn/apikey: key not allowed on this route")
	errIncomplete = errors.New("authn/apikey: store returned a key without its consumer")
)
