package introspect

import (
	"container/heap"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// cache remembers introspection answers by the SHA-256 of the token (one
// cache per provider, so the provider is part of the key by
// construction). The token itself is never kept.
//
// Correct by construction:
//   - a positive entry expires at min(token exp, stored + cache_ttl);
//     served stale (stale_if_error, on an outage only) at most until
//     min(expires + stale, token exp): never past the token's exp;
//   - a negative entry (inactive, or refused by a claim check) expires
//     after negative_cache_ttl;
//   - at most max entries: when full, expired entries go first, then the
//     entry whose usefulness ends soonest (a min-heap on that instant).
type cache struct {
	mu      sync.RWMutex
	entries map[[32]byte]*entry
	byEnd   endHeap
	max     int
	stale   time.Duration
}

type entry struct {
	key     [32]byte
	id      *identity.Identity // positive answer, or nil
	fail    *authn.Failure     // negative answer, or nil
	expires time.Time          // fresh until
	end     time.Time          // useful until (expires, or the stale bound)
	index   int                // in byEnd
}

func newCache(max int, stale time.Duration) *cache {
	return &cache{entries: make(map[[32]byte]*entry, min(max, 1024)), max: max, stale: stale}
}

// get returns the fresh entry for key, or nil. No allocation.
func (c *cache) get(key *[32]byte, now time.Time) *entry {
	c.mu.RLock()
	e := c.entries[*key]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

// staleIdentity returns a positive answer past its cache expiry but
// within stale_if_error of it and before the token's exp, or nil.
func (c *cache) staleIdentity(key *[32]byte, now time.Time) *identity.Identity {
	if c.stale <= 0 {
		return nil
	}
	c.mu.RLock()
	e := c.entries[*key]
	c.mu.RUnlock()
	if e == nil || e.id == nil || !now.Before(e.end) {
		return nil
	}
	return e.id
}

// putIdentity stores an active answer: fresh until min(exp, now+ttl).
func (c *cache) putIdentity(key *[32]byte, id *identity.Identity, now time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	expires := now.Add(ttl)
	end := expires.Add(c.stale)
	if exp := id.ExpiresAt; !exp.IsZero() {
		// The token's exp bounds both.
		if exp.Before(expires) {
			expires = exp
		}
		if exp.Before(end) {
			end = exp
		}
	}
	if !now.Before(expires) {
		return
	}
	c.put(&entry{key: *key, id: id, expires: expires, end: end}, now)
}

// putFailure stores a refused answer for ttl.
func (c *cache) putFailure(key *[32]byte, f *authn.Failure, now time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	exp := now.Add(ttl)
	c.put(&entry{key: *key, fail: f, expires: exp, end: exp}, now)
}

func (c *cache) put(e *entry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[e.key]; ok {
		heap.Remove(&c.byEnd, old.index)
		delete(c.entries, e.key)
	}
	// Expired entries go first, then the one whose end is soonest.
	for len(c.byEnd) > 0 && (!now.Before(c.byEnd[0].end) || len(c.byEnd) >= c.max) {
		old := heap.Pop(&c.byEnd).(*entry)
		delete(c.entries, old.key)
	}
	heap.Push(&c.byEnd, e)
	c.entries[e.key] = e
}

// len reports the number of entries (tests).
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// endHeap orders entries by end, soonest first.
type endHeap []*entry

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h endHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *endHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *endHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
