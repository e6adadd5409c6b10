package jwt

import (
	"container/heap"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/subtle"
	"hash/maphash"
	"strings"
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

// MaxCachedTokenBytes is the longest token the verified-token cache
// remembers. The cache keeps every token it holds (a hit is confirmed by
// comparing the presented token with the stored one), so this bounds the
// memory a full cache takes for tokens: DefaultCacheSize × 4 KiB = 40 MiB
// per provider at worst (≈ 10 MiB for typical 1 KiB access tokens), on top
// of the identities. A longer token is verified in full on every request.
const MaxCachedTokenBytes = 4096

// cacheSeed keys the hash that selects a token's cache entry. It is
// random per process and never leaves it, so nobody outside can compute
// which tokens share an entry, let alone craft tokens that do; and a hit
// is confirmed by comparing the whole token anyway.
var cacheSeed = maphash.MakeSeed()

// cacheKeyOf is the cache key of a token: maphash (AES-based where the CPU
// has it), some 20 times cheaper than the SHA-256 it replaces on every
// request. It does not need to resist collisions: the key only selects an
// entry, and the stored token confirms it.
func cacheKeyOf(raw string) uint64 { return maphash.String(cacheSeed, raw) }

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
	// key stops cached tokens at once). The cache keeps each token it
	// remembers (at most MaxCachedTokenBytes long; longer ones are not
	// cached), to confirm a hit by a constant-time comparison: a full
	// cache holds up to CacheSize live bearer tokens in memory. Failures
	// are never cached.
	CacheSize int
	// OnCacheLookup, if set, is told whether each token was answered from
	// the cache (hit) or verified in full (miss), for metrics. It is
	// called on the request path, so it must be cheap and safe for
	// concurrent use. Not called when the cache is disabled.
	OnCacheLookup func(hit bool)
}

// TokenCache remembers the tokens of one provider that verified. An entry
// is found by a keyed hash of the token (cacheKeyOf) and served only when
// the token stored in it equals the one presented (compared in constant
// time), so two tokens that share a hash never share an identity: the
// second is verified in full and replaces the first. Entries are
// immutable once stored.
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

	// keyOf, set by tests only, replaces cacheKeyOf (to force collisions).
	keyOf func(raw string) uint64
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
	m  map[uint64]cacheEntry
	// byExpiry orders the keys by the moment their entry stops being
	// served (exp plus the provider's clock skew), so that expired entries
	// are evicted first and the one closest to expiry makes room when the
	// shard is full; among entries that expire at the same moment (tokens
	// minted together share an exp), the one stored first goes first. It
	// may hold stale items (a key since removed or replaced); they are
	// skipped when they come up.
	byExpiry expiryHeap
	limit    int
	seq      uint64 // stores so far: the insertion order of entries
}

// expiryItem is a key, when its entry expires and the entry's insertion
// number, as stored in the heap.
type expiryItem struct {
	at  time.Time
	seq uint64
	key uint64
}

// expiryHeap is a min-heap of expiryItems by at, then seq
// (container/heap). Without the seq tie-break, a shard full of tokens
// with one exp would keep its oldest entries and churn the newest: after a
// pop, heap.Pop sifts the last-pushed item into the root and an equal
// item never moves down.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiryItem)) }
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
	// token is the token the entry was stored for (a copy: it does not
	// keep a request's header alive), compared in full on every lookup.
	token string
	seq   uint64             // insertion number in its shard (expiryItem.seq)
	id    *identity.Identity // shared: identities are immutable
	skew  time.Duration      // the provider's clock skew (fixed for a cache: part of CacheKey)
	kid   string
	alg   jose.SignatureAlgorithm
	key   any // the public key (or HMAC secret) that verified the signature
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

// sameToken compares a stored token with a presented one in constant time
// (for equal lengths), reading both strings in place: no copy, no
// allocation.
func sameToken(stored, raw string) bool {
	return subtle.ConstantTimeCompare(unsafe.Slice(unsafe.StringData(stored), len(stored)),
		unsafe.Slice(unsafe.StringData(raw), len(raw))) == 1
}

func newTokenCache(size int) *TokenCache {
	c := &TokenCache{}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = size / cacheShards
		if i < size%cacheShards {
			s.limit++
		}
		s.m = make(map[uint64]cacheEntry)
	}
	return c
}

// keyFor is the key of raw in this cache: key (cacheKeyOf(raw), computed
// once by the verifier for every provider's cache) unless a test replaced
// the hash.
func (c *TokenCache) keyFor(raw string, key uint64) uint64 {
	if c.keyOf != nil {
		return c.keyOf(raw)
	}
	return key
}

func (c *TokenCache) shard(key uint64) *cacheShard {
	return &c.shards[key%cacheShards]
}

// get returns the cached entry for key when every check that Verify
// would repeat still passes for p, the provider the cache serves now (its
// settings equal those the entry was stored under; its key source may be
// a newer one); otherwise false, and the caller verifies in full (which
// also produces the exact failure). An entry found expired is dropped.
// The entry is returned by value: a hit allocates nothing. An entry
// stored for another token with the same key is a miss (and stays: the
// full verification of raw replaces it if raw verifies).
func (c *TokenCache) get(ctx context.Context, raw string, key uint64, p *provider, now time.Time) (cacheEntry, bool) {
	key = c.keyFor(raw, key)
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	if !ok || !sameToken(e.token, raw) {
		return cacheEntry{}, false
	}
	// The same comparisons as checkTimes.
	if now.After(e.expiresAt()) {
		s.mu.Lock()
		if cur, ok := s.m[key]; ok && cur.seq == e.seq {
			delete(s.m, key)
		}
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
// when the shard is still full, the entry closest to expiry (of those
// closest, the oldest) makes room. A token longer than MaxCachedTokenBytes
// is not remembered.
func (c *TokenCache) put(raw string, key uint64, e cacheEntry, now time.Time) {
	if len(raw) > MaxCachedTokenBytes {
		return
	}
	key = c.keyFor(raw, key)
	s := c.shard(key)
	if s.limit == 0 {
		return
	}
	e.token = strings.Clone(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byExpiry) > 0 && now.After(s.byExpiry[0].at) {
		s.evictFirst()
	}
	if _, ok := s.m[key]; !ok {
		for len(s.m) >= s.limit && len(s.byExpiry) > 0 {
			s.evictFirst()
		}
	}
	s.seq++
	e.seq = s.seq
	s.m[key] = e
	heap.Push(&s.byExpiry, expiryItem{at: e.expiresAt(), seq: e.seq, key: key})
	if len(s.byExpiry) > 2*s.limit {
		s.rebuild() // too many stale items: the heap must stay bounded too
	}
}

// evictFirst pops the earliest item and deletes its entry, unless the
// item is stale (the key is gone or was stored again since).
func (s *cacheShard) evictFirst() {
	it := heap.Pop(&s.byExpiry).(expiryItem)
	if e, ok := s.m[it.key]; ok && e.seq == it.seq {
		delete(s.m, it.key)
	}
}

// rebuild makes the heap hold exactly the map's entries.
func (s *cacheShard) rebuild() {
	s.byExpiry = s.byExpiry[:0]
	for k, e := range s.m {
		s.byExpiry = append(s.byExpiry, expiryItem{at: e.expiresAt(), seq: e.seq, key: k})
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
