package jwt

import (
	"container/heap"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// DefaultCacheSize is the default VerifierOptions.CacheSize.
const DefaultCacheSize = 10_000

// cacheShards spreads the cache over several locks so that concurrent
// requests rarely wait for each other.
const cacheShards = 16

// VerifierOptions configures NewVerifierWithOptions.
type VerifierOptions struct {
	// Now is the clock used for exp, nbf and iat, on cache hits too.
	// Default time.Now.
	Now func() time.Time
	// CacheSize bounds the number of verified tokens remembered, so that a
	// token presented again skips parsing and signature verification.
	// Default 0: DefaultCacheSize; negative: no cache. The cache never
	// changes a decision: a cached token is accepted only while Verify
	// would accept it (same clock and leeway for exp, nbf and iat; the
	// provider's key source is asked again, and the key that verified the
	// signature must still be among its answer, so a removed or rotated
	// key stops cached tokens at once). Only the SHA-256 of a token is
	// kept, never the token; failures are never cached.
	CacheSize int
	// OnCacheLookup, if set, is told whether each token was answered from
	// the cache (hit) or verified in full (miss), for metrics. It is
	// called on the request path, so it must be cheap and safe for
	// concurrent use. Not called when the cache is disabled.
	OnCacheLookup func(hit bool)
}

// TokenCache remembers the tokens of one provider that verified, keyed by
// the SHA-256 of the raw token. Entries are immutable once stored.
//
// A verifier makes one per provider unless Provider.Cache gives one. A
// cache given that way may serve successive verifiers (a reload builds a
// new one), so that a reload costs no cache miss: it is bound to the
// settings of the first provider that uses it (CacheKey), and a verifier
// refuses it for a provider whose settings differ, so an identity cached
// under other audiences, claim rules or mapping is never served. Keys are
// not part of those settings: every hit asks the current provider's key
// source again (see VerifierOptions.CacheSize).
type TokenCache struct {
	shards [cacheShards]cacheShard

	bindMu sync.Mutex
	bound  string // CacheKey of the provider settings it serves; "" until first used
}

// NewTokenCache returns an empty cache of at most size entries (0:
// DefaultCacheSize).
func NewTokenCache(size int) *TokenCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return newTokenCache(size)
}

// bind ties the cache to the provider settings fp, once; it refuses other
// settings.
func (c *TokenCache) bind(fp string) bool {
	c.bindMu.Lock()
	defer c.bindMu.Unlock()
	if c.bound == "" {
		c.bound = fp
	}
	return c.bound == fp
}

// Len counts the entries (tests, status pages).
func (c *TokenCache) Len() int { return c.len() }

type cacheShard struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]cacheEntry
	// byExpiry orders the keys by the moment their entry stops being
	// served (exp plus the provider's clock skew), so that expired entries
	// are evicted first and the one closest to expiry makes room when the
	// shard is full. It may hold stale items (a key since removed or
	// replaced); they are skipped when they come up.
	byExpiry expiryHeap
	limit    int
}

// expiryItem is a key and when its entry expired, as stored in the heap.
type expiryItem struct {
	at  time.Time
	key [sha256.Size]byte
}

// expiryHeap is a min-heap of expiryItems by at (container/heap).
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// cacheEntry is what a successful verification established, and what a
// hit must re-check: the times against the clock, the key against the key
// source.
type cacheEntry struct {
	id   *identity.Identity // shared: identities are immutable
	skew time.Duration      // the provider's clock skew (fixed for a cache: part of CacheKey)
	kid  string
	alg  jose.SignatureAlgorithm
	key  any // the public key (or HMAC secret) that verified the signature
	// exp is always set; nbf and iat are zero when the token has none.
	exp, nbf, iat time.Time
	// cnf is the token's cnf claim (nil: none), read-only: the binding
	// checks (DPoP proof, client certificate) run on every request, so a
	// hit must still have it.
	cnf map[string]any
}

// expiresAt is when the entry stops being served: after exp plus the
// provider's leeway, as checkTimes decides.
func (e *cacheEntry) expiresAt() time.Time { return e.exp.Add(e.skew) }

// tokenHash is the cache key of raw. Sum256 only reads its argument, so
// the string's bytes are hashed in place rather than copied: a copy would
// be the one allocation of a cache hit.
func tokenHash(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

func newTokenCache(size int) *TokenCache {
	c := &TokenCache{}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = size / cacheShards
		if i < size%cacheShards {
			s.limit++
		}
		s.m = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

func (c *TokenCache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[key[0]%cacheShards]
}

// get returns the cached entry for key when every check that Verify
// would repeat still passes for p, the provider the cache serves now (its
// settings equal those the entry was stored under; its key source may be
// a newer one); otherwise false, and the caller verifies in full (which
// also produces the exact failure). An entry found expired is dropped.
// The entry is returned by value: a hit allocates nothing.
func (c *TokenCache) get(ctx context.Context, key *[sha256.Size]byte, p *provider, now time.Time) (cacheEntry, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[*key]
	s.mu.Unlock()
	if !ok {
		return cacheEntry{}, false
	}
	// The same comparisons as checkTimes.
	if now.After(e.expiresAt()) {
		s.mu.Lock()
		delete(s.m, *key)
		s.mu.Unlock()
		return cacheEntry{}, false
	}
	latest := now.Add(p.skew)
	if (!e.nbf.IsZero() && e.nbf.After(latest)) || (!e.iat.IsZero() && e.iat.After(latest)) {
		return cacheEntry{}, false
	}
	if !p.stillHasKey(ctx, e.kid, e.alg, e.key) {
		return cacheEntry{}, false
	}
	return e, true
}

// put remembers a verified token. Entries whose token has expired by now
// are evicted first, so no entry outlives its token by more than the time
// until the next put on its shard (and none is ever served after it);
// when the shard is still full, the entry closest to expiry makes room.
func (c *TokenCache) put(key *[sha256.Size]byte, e cacheEntry, now time.Time) {
	s := c.shard(key)
	if s.limit == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byExpiry) > 0 && now.After(s.byExpiry[0].at) {
		s.evictFirst()
	}
	if _, ok := s.m[*key]; !ok {
		for len(s.m) >= s.limit && len(s.byExpiry) > 0 {
			s.evictFirst()
		}
	}
	s.m[*key] = e
	heap.Push(&s.byExpiry, expiryItem{at: e.expiresAt(), key: *key})
	if len(s.byExpiry) > 2*s.limit {
		s.rebuild() // too many stale items: the heap must stay bounded too
	}
}

// evictFirst pops the earliest item and deletes its entry, unless the
// item is stale (the key is gone or was stored again with another expiry).
func (s *cacheShard) evictFirst() {
	it := heap.Pop(&s.byExpiry).(expiryItem)
	if e, ok := s.m[it.key]; ok && e.expiresAt().Equal(it.at) {
		delete(s.m, it.key)
	}
}

// rebuild makes the heap hold exactly the map's entries.
func (s *cacheShard) rebuild() {
	s.byExpiry = s.byExpiry[:0]
	for k, e := range s.m {
		s.byExpiry = append(s.byExpiry, expiryItem{at: e.expiresAt(), key: k})
	}
	heap.Init(&s.byExpiry)
}

// len counts the entries; tests only.
func (c *TokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// stillHasKey reports whether verifySignature, given the key source's
// current answer for kid, would still try key: the same lookup, the same
// filters and the same cap on candidates. Any lookup error sends the token
// back to full verification, which reports it.
func (p *provider) stillHasKey(ctx context.Context, kid string, alg jose.SignatureAlgorithm, key any) bool {
	keys, err := p.keys.Lookup(ctx, kid)
	if err != nil {
		return false
	}
	tried := 0
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != "" && k.KeyID != kid {
			continue
		}
		if !keyFits(alg, k) {
			continue
		}
		if tried == maxCandidateKeys {
			break
		}
		tried++
		if sameKey(k.Key, key) {
			return true
		}
	}
	return false
}

// sameKey compares two verification keys by value, so that a key source
// that re-parses an unchanged key set still matches.
func sameKey(a, b any) bool {
	switch a := a.(type) {
	case *rsa.PublicKey:
		b, ok := b.(*rsa.PublicKey)
		return ok && (a == b || a.Equal(b))
	case *ecdsa.PublicKey:
		b, ok := b.(*ecdsa.PublicKey)
		return ok && (a == b || a.Equal(b))
	case ed25519.PublicKey:
		b, ok := b.(ed25519.PublicKey)
		return ok && a.Equal(b)
	case []byte:
		b, ok := b.([]byte)
		return ok && hmac.Equal(a, b)
	}
	return false
}

// cacheEntryFor builds the entry of a token that has just verified.
// checkTimes has accepted its nbf and iat, so they parse.
func cacheEntryFor(id *identity.Identity, p *provider, kid string, alg jose.SignatureAlgorithm, key any, claims, cnf map[string]any) cacheEntry {
	e := cacheEntry{id: id, skew: p.skew, kid: kid, alg: alg, key: key, exp: id.ExpiresAt, cnf: cnf}
	if v := claims["nbf"]; v != nil {
		e.nbf, _ = numericDate(v)
	}
	if v := claims["iat"]; v != nil {
		e.iat, _ = numericDate(v)
	}
	return e
}

// InvalidateSubject drops every cached verification of a token of subject
// (of issuer; "" for any issuer), so that the next request with one of
// them is verified again in full. It scans the whole cache under each
// shard's lock: for rare events (a CAEP token-claims-change), never for
// the request path. It returns the number of entries dropped.
func (c *TokenCache) InvalidateSubject(issuer, subject string) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.id != nil && e.id.Subject == subject && (issuer == "" || e.id.Issuer == issuer) {
				delete(s.m, k) // its heap item goes stale; evictFirst skips it
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
