package apikey

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// entry is a found key with its consumer and the identity built from them
// once. Entries are immutable: they are shared by concurrent requests.
type entry struct {
	key      *apikey.Key
	consumer *apikey.Consumer
	id       *identity.Identity
}

func newEntry(k *apikey.Key, c *apikey.Consumer) *entry {
	id := &identity.Identity{
		Subject:      c.ID,
		Issuer:       Issuer,
		Provider:     Provider,
		Method:       identity.MethodAPIKey,
		CredentialID: k.ID,
		ClientID:     c.Name,
		Scopes:       cloneStrings(k.Scopes),
		Groups:       cloneStrings(c.Groups),
	}
	claims := make(map[string]any, 4)
	if c.Name != "" {
		claims["consumer_name"] = c.Name
	}
	if len(c.Tags) > 0 {
		claims["consumer_tags"] = cloneStrings(c.Tags)
	}
	if k.Name != "" {
		claims["key_name"] = k.Name
	}
	if k.Tier != "" {
		claims["rate_limit_tier"] = k.Tier
	}
	if len(claims) > 0 {
		id.Claims = claims
	}
	if k.ExpiresAt != nil {
		id.ExpiresAt = *k.ExpiresAt
	}
	return &entry{key: k, consumer: c, id: id}
}

// cloneStrings copies s with no spare capacity, so that an append by a
// reader of the shared identity cannot write into it.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clip(slices.Clone(s))
}

type positive struct {
	e     *entry
	until time.Time
}

// cache maps key hashes (never keys) to found keys and to "unknown", each
// for its TTL, in two bounded halves. It also coalesces concurrent lookups
// of one hash into one store call.
type cache struct {
	ttl, negTTL    time.Duration // negative: that half is disabled
	maxPos, maxNeg int

	mu       sync.RWMutex
	pos      map[string]positive
	neg      map[string]time.Time // hash → cached until
	byID     map[string]string    // key id → hash, for Invalidate
	inflight map[string]*call
	// gen counts invalidations: a lookup that started before one must not
	// cache what it read, which may be the state just invalidated.
	gen uint64
}

type call struct {
	done chan struct{}
	e    *entry
	err  error
}

func newCache(ttl, negTTL time.Duration, maxEntries int) *cache {
	maxNeg := maxEntries / 2
	return &cache{
		ttl:      ttl,
		negTTL:   negTTL,
		maxPos:   maxEntries - maxNeg,
		maxNeg:   maxNeg,
		pos:      make(map[string]positive),
		neg:      make(map[string]time.Time),
		byID:     make(map[string]string),
		inflight: make(map[string]*call),
	}
}

// get returns the cached result for hash: known is false on a miss; e is
// nil for a key cached as unknown.
func (c *cache) get(hash []byte, now time.Time) (e *entry, known bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.getLocked(string(hash), now)
}

func (c *cache) getLocked(h string, now time.Time) (*entry, bool) {
	if p, ok := c.pos[h]; ok && now.Before(p.until) {
		return p.e, true
	}
	if until, ok := c.neg[h]; ok && now.Before(until) {
		return nil, true
	}
	return nil, false
}

var errLookupAborted = errors.New("authn/apikey: lookup aborted")

// load runs fetch for hash, or waits for the run already in flight, and
// caches its result (nil entry: unknown key). Errors are never cached.
// fetch gets a context that the requesting client's cancellation does not
// cancel, since other requests may be waiting on the same lookup; a
// waiter whose own request is cancelled stops waiting.
func (c *cache) load(ctx context.Context, hash []byte, now time.Time, fetch func(context.Context, []byte) (*entry, error)) (*entry, error) {
	h := string(hash)
	c.mu.Lock()
	if e, ok := c.getLocked(h, now); ok {
		c.mu.Unlock()
		return e, nil
	}
	if cl, ok := c.inflight[h]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.e, cl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{}), err: errLookupAborted}
	c.inflight[h] = cl
	gen := c.gen
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		delete(c.inflight, h)
		if cl.err == nil && gen == c.gen {
			c.putLocked(h, cl.e, now)
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	e, err := fetch(context.WithoutCancel(ctx), hash)
	cl.e, cl.err = e, err
	return e, err
}

func (c *cache) putLocked(h string, e *entry, now time.Time) {
	if e == nil {
		if c.negTTL < 0 || c.maxNeg == 0 {
			return
		}
		if _, ok := c.neg[h]; !ok && len(c.neg) >= c.maxNeg {
			delete(c.neg, victim(c.neg, func(until time.Time) bool { return !now.Before(until) }))
		}
		c.neg[h] = now.Add(c.negTTL)
		return
	}
	if c.ttl < 0 {
		return
	}
	if old, ok := c.pos[h]; ok {
		c.dropPosLocked(h, old)
	} else if len(c.pos) >= c.maxPos {
		v := victim(c.pos, func(p positive) bool { return !now.Before(p.until) })
		c.dropPosLocked(v, c.pos[v])
	}
	c.pos[h] = positive{e: e, until: now.Add(c.ttl)}
	c.byID[e.key.ID] = h
	delete(c.neg, h)
}

func (c *cache) dropPosLocked(h string, p positive) {
	delete(c.pos, h)
	if c.byID[p.e.key.ID] == h {
		delete(c.byID, p.e.key.ID)
	}
}

// victim picks an entry to evict from a full map: an expired one among the
// first few visited, else the first visited. Map iteration starts at a
// random place, so this is a cheap random eviction that cannot be steered
// into always hitting the same entries.
func victim[V any](m map[string]V, expired func(V) bool) string {
	const probes = 8
	first, n := "", 0
	for h, v := range m {
		if n == 0 {
			first = h
		}
		if expired(v) {
			return h
		}
		if n++; n == probes {
			break
		}
	}
	return first
}

func (c *cache) invalidate(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if keyID == "*" {
		clear(c.pos)
		clear(c.neg)
		clear(c.byID)
		return
	}
	if h, ok := c.byID[keyID]; ok {
		if p, ok := c.pos[h]; ok {
			c.dropPosLocked(h, p)
		}
		delete(c.byID, keyID)
	}
}

func (c *cache) forgetUnknown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.neg)
}

// len reports the number of cached results, for tests.
func (c *cache) len() (pos, neg int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pos), len(c.neg)
}
