package apikey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// Defaults of CacheConfig's lookup bounds.
const (
	// DefaultLookupTimeout bounds one store lookup on the request path.
	DefaultLookupTimeout = 2 * time.Second
	// DefaultMaxLookups bounds the store lookups in flight at once.
	DefaultMaxLookups = 64
)

// CacheConfig configures a Cache. The zero value of every optional field
// selects its default.
type CacheConfig struct {
	// Store holds the hashed keys. Required.
	Store apikey.Store
	// TTL, NegativeTTL and MaxEntries are as Config.CacheTTL,
	// Config.NegativeTTL and Config.MaxEntries.
	TTL, NegativeTTL time.Duration
	MaxEntries       int
	// LookupTimeout bounds each store lookup (default 2s): a store that does
	// not answer in time fails the request with 503 instead of holding it.
	// Security: fail closed; a longer value lets a hung store hold requests
	// (and their connections) that long.
	LookupTimeout time.Duration
	// MaxLookups bounds the distinct store lookups in flight (default 64).
	// A request whose key is not cached and finds every slot taken is
	// refused at once with 503, never queued: a slow or partitioned store
	// cannot pile up requests, goroutines and connections. Concurrent
	// lookups of one key share one slot and one store call.
	MaxLookups int
	// Observer, if set, is told how lookups are answered, for metrics.
	Observer LookupObserver
}

// LookupObserver is told how API-key lookups are answered (for metrics).
// Its methods are called on the request path: they must be cheap, must
// not block, and must be safe for concurrent use.
type LookupObserver interface {
	// CacheLookup reports a lookup answered from the cache (hit: a found
	// or unknown key still within its TTL) or not (miss: it goes on to the
	// store, or waits for the same lookup already in flight).
	CacheLookup(hit bool)
	// StoreLookup reports one call of the store (d: how long it took) or
	// one refused for want of a free slot (StoreBusy, d zero).
	StoreLookup(d time.Duration, result StoreResult)
}

// StoreResult is how one store lookup ended, as LookupObserver sees it.
type StoreResult string

// Store lookup results.
const (
	StoreFound    StoreResult = "found"
	StoreNotFound StoreResult = "not_found"
	StoreTimeout  StoreResult = "timeout"
	StoreError    StoreResult = "error"
	StoreBusy     StoreResult = "busy"
)

// Cache is the memory of API-key lookups: found keys and unknown ones, each
// for its TTL, plus the bounds on the store calls behind it. One Cache is
// meant to be shared by every route's Authenticator and to outlive
// configuration reloads, so that a reload during a store outage does not
// forget the keys it could still serve, and one Invalidate reaches every
// route. It holds key hashes and what the store returned, never keys.
type Cache struct {
	store   apikey.Store
	c       *cache
	timeout time.Duration
	slots   chan struct{}
	obs     LookupObserver // nil: none
}

// NewCache validates cfg, applies its defaults and returns the Cache.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.Store == nil {
		return nil, errors.New("authn/apikey: no key store")
	}
	ttl, negTTL, maxEntries := cfg.TTL, cfg.NegativeTTL, cfg.MaxEntries
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if negTTL == 0 {
		negTTL = DefaultNegativeTTL
	}
	switch {
	case maxEntries == 0:
		maxEntries = DefaultMaxEntries
	case maxEntries < 2:
		return nil, fmt.Errorf("authn/apikey: MaxEntries %d is below 2", maxEntries)
	}
	timeout := cfg.LookupTimeout
	switch {
	case timeout == 0:
		timeout = DefaultLookupTimeout
	case timeout < 0:
		return nil, fmt.Errorf("authn/apikey: negative LookupTimeout %s", timeout)
	}
	maxLookups := cfg.MaxLookups
	switch {
	case maxLookups == 0:
		maxLookups = DefaultMaxLookups
	case maxLookups < 0:
		return nil, fmt.Errorf("authn/apikey: negative MaxLookups %d", maxLookups)
	}
	return &Cache{
		store:   cfg.Store,
		c:       newCache(ttl, negTTL, maxEntries),
		timeout: timeout,
		slots:   make(chan struct{}, maxLookups),
		obs:     cfg.Observer,
	}, nil
}

// Invalidate drops the key with id keyID at once, so that a revocation or
// rotation takes effect on the next request; "*" flushes everything,
// unknown keys included. A lookup in flight when Invalidate is called does
// not refill the cache with what it read.
func (c *Cache) Invalidate(keyID string) { c.c.invalidate(keyID) }

// ForgetUnknown drops every key remembered as unknown (and nothing else):
// keys that were just added elsewhere than through the store (static keys
// of a reloaded configuration) must not wait out the negative TTL.
func (c *Cache) ForgetUnknown() { c.c.forgetUnknown() }

var (
	errBusy        = errors.New("authn/apikey: too many key lookups in flight")
	errLookupSlow  = errors.New("authn/apikey: key store did not answer in time")
	errStoreFailed = errors.New("authn/apikey: key store failed")
)

// lookup returns the entry for hash from the cache or the store (nil for an
// unknown key). Store calls are collapsed per hash, take one of a bounded
// number of slots (none free: errBusy at once) and have a deadline.
func (c *Cache) lookup(ctx context.Context, hash []byte, now time.Time) (*entry, error) {
	e, known := c.c.get(hash, now)
	if c.obs != nil {
		c.obs.CacheLookup(known)
	}
	if known {
		return e, nil
	}
	return c.c.load(ctx, hash, now, c.fetch)
}

// fetch runs in the one request that leads a lookup; ctx is not cancelled
// by that client's going away (others may wait on the result), so the
// deadline is what bounds it.
func (c *Cache) fetch(ctx context.Context, hash []byte) (*entry, error) {
	select {
	case c.slots <- struct{}{}:
	default:
		if c.obs != nil {
			c.obs.StoreLookup(0, StoreBusy)
		}
		return nil, errBusy
	}
	defer func() { <-c.slots }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var start time.Time
	if c.obs != nil {
		start = time.Now()
	}
	k, con, err := c.store.LookupKey(ctx, hash)
	if c.obs != nil {
		c.obs.StoreLookup(time.Since(start), storeResult(ctx, k, con, err))
	}
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return nil, nil
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("%w (%s): %w", errLookupSlow, c.timeout, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errStoreFailed, err)
	case k == nil || con == nil:
		return nil, errIncomplete
	}
	return newEntry(k, con), nil
}

// storeResult classifies a store call's answer as fetch does.
func storeResult(ctx context.Context, k *apikey.Key, con *apikey.Consumer, err error) StoreResult {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return StoreNotFound
	case err != nil && ctx.Err() != nil:
		return StoreTimeout
	case err != nil || k == nil || con == nil:
		return StoreError
	}
	return StoreFound
}
