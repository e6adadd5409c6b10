package jwt

import (
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
}

// tokenCache remembers tokens that verified, keyed by the SHA-256 of the
// raw token. Entries are immutable once stored.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]cacheEntry
	limit int
}

// cacheEntry is what a successful verification established, and what a
// hit must re-check: the times against the clock, the key against the key
// source.
type cacheEntry struct {
	id  *identity.Identity // shared: identities are immutable
	p   *provider
	kid string
	alg jose.SignatureAlgorithm
	key any // the public key (or HMAC secret) that verified the signature
	// exp is always set; nbf and iat are zero when the token has none.
	exp, nbf, iat time.Time
}

// tokenHash is the cache key of raw. Sum256 only reads its argument, so
// the string's bytes are hashed in place rather than copied: a copy would
// be the one allocation of a cache hit.
func tokenHash(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{}
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

func (c *tokenCache) shard(key *[sha256.Size]byte) *cacheShard {
	return &c.shards[key[0]%cacheShards]
}

// get returns the cached identity for key when every check that Verify
// would repeat still passes; otherwise nil, and the caller verifies in
// full (which also produces the exact failure). An entry found expired is
// dropped.
func (c *tokenCache) get(ctx context.Context, key *[sha256.Size]byte, allowed []bool, now time.Time) *identity.Identity {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[*key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p := e.p
	// The same comparisons as checkTimes.
	if now.After(e.exp.Add(p.skew)) {
		s.mu.Lock()
		delete(s.m, *key)
		s.mu.Unlock()
		return nil
	}
	latest := now.Add(p.skew)
	if (!e.nbf.IsZero() && e.nbf.After(latest)) || (!e.iat.IsZero() && e.iat.After(latest)) {
		return nil
	}
	if allowed != nil && !allowed[p.index] {
		return nil
	}
	if !p.stillHasKey(ctx, e.kid, e.alg, e.key) {
		return nil
	}
	return e.id
}

// put remembers a verified token, evicting an arbitrary entry when the
// shard is full.
func (c *tokenCache) put(key *[sha256.Size]byte, e cacheEntry) {
	s := c.shard(key)
	if s.limit == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*key]; !ok && len(s.m) >= s.limit {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[*key] = e
}

// len counts the entries; tests only.
func (c *tokenCache) len() int {
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
func cacheEntryFor(id *identity.Identity, p *provider, kid string, alg jose.SignatureAlgorithm, key any, claims map[string]any) cacheEntry {
	e := cacheEntry{id: id, p: p, kid: kid, alg: alg, key: key, exp: id.ExpiresAt}
	if v := claims["nbf"]; v != nil {
		e.nbf, _ = numericDate(v)
	}
	if v := claims["iat"]; v != nil {
		e.iat, _ = numericDate(v)
	}
	return e
}
