package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// ReplayKey identifies one proof for the replay cache: SHA-256 over the
// proof key's thumbprint and the jti, so that entries have a fixed size
// whatever the client writes in jti, and a jti reused under another key is
// another entry (RFC 9449 section 11.1: jti is unique per key).
type ReplayKey [sha256.Size]byte

// String is the key's base64url form, for a shared store such as Redis.
func (k ReplayKey) String() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// replayKey derives the ReplayKey of a proof.
func replayKey(jkt, jti string) ReplayKey {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k ReplayKey
	h.Sum(k[:0])
	return k
}

// ReplayCache remembers the proofs already accepted. Implementations must
// be safe for concurrent use. The in-memory one serves one replica; with
// several replicas behind a load balancer, a proof replayed to another
// replica is only caught by a shared store (Redis, when it comes).
type ReplayCache interface {
	// SeenBefore records key until the given time and reports whether it
	// was already recorded (and not yet expired). Recording and checking
	// must be one atomic step (Redis: SET key 1 NX PXAT until). An error
	// means the answer is unknown: the caller refuses the proof.
	SeenBefore(ctx context.Context, key ReplayKey, until time.Time) (bool, error)
}

// ErrReplayCacheFull is returned by the in-memory cache when every entry
// is still live: the proof is refused (503) rather than remembered by
// forgetting another one, which would reopen that one to replay.
var ErrReplayCacheFull = errors.New("authn/dpop: replay cache is full")

// DefaultReplayEntries is the in-memory cache's default capacity: at the
// default window (MaxAge 60s plus twice ClockSkew 30s, 120 s) enough for
// about 2,000 DPoP requests per second, in about 20 MB.
const DefaultReplayEntries = 1 << 18

// MemoryReplayCache is an in-memory ReplayCache with a fixed capacity.
//
// Entries live in a map (lookup O(1)) and in a ring in insertion order.
// Each call first drops up to two expired entries from the ring's head,
// so the cache cleans itself as it is used: there is no janitor goroutine
// to stop. When the cache is full and the oldest entry is still live, the
// new proof is refused with ErrReplayCacheFull: fail closed. Evicting a
// live entry instead would let an attacker who floods the gateway with
// proofs of his own evict a victim's jti and then replay the victim's
// captured proof within its window.
//
// Insertion order and expiry order differ by at most the iat window, so
// an expired entry behind a live head waits at most that long; the
// capacity must cover the peak rate of DPoP requests times the window.
type MemoryReplayCache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[ReplayKey]int64 // expiry, Unix nanoseconds
	ring    []ringEntry         // grows by doubling up to capacity
	head    int                 // oldest entry
	n       int                 // entries in the ring
	max     int                 // capacity
}

type ringEntry struct {
	key   ReplayKey
	until int64
}

// NewMemoryReplayCache returns a cache of at most capacity entries
// (capacity < 1: DefaultReplayEntries). now is the clock (nil: time.Now).
func NewMemoryReplayCache(capacity int, now func() time.Time) *MemoryReplayCache {
	if capacity < 1 {
		capacity = DefaultReplayEntries
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{
		now:     now,
		entries: make(map[ReplayKey]int64),
		ring:    make([]ringEntry, min(capacity, 64)),
		max:     capacity,
	}
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// SeenBefore implements ReplayCache.
func (c *MemoryReplayCache) SeenBefore(ctx context.Context, key ReplayKey, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := c.now().UnixNano()
	exp := until.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now, 2)
	if e, ok := c.entries[key]; ok && e > now {
		return true, nil
	}
	if exp <= now {
		// Already outside its window: Verify never gets here, but an
		// entry that expires at once protects nothing.
		return false, nil
	}
	if c.n == len(c.ring) {
		c.expire(now, 1)
	}
	if c.n == len(c.ring) {
		if len(c.ring) == c.max {
			return false, ErrReplayCacheFull
		}
		c.grow()
	}
	c.entries[key] = exp
	c.ring[(c.head+c.n)%len(c.ring)] = ringEntry{key: key, until: exp}
	c.n++
	return false, nil
}

// expire drops up to max expired entries from the ring's head.
func (c *MemoryReplayCache) expire(now int64, max int) {
	for ; max > 0 && c.n > 0; max-- {
		e := &c.ring[c.head]
		if e.until > now {
			return
		}
		// The map may hold a newer expiry for the same key (recorded again
		// after this one expired): that entry is further down the ring.
		if c.entries[e.key] == e.until {
			delete(c.entries, e.key)
		}
		*e = ringEntry{}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
}

// grow doubles the ring (up to the capacity), oldest entry first.
func (c *MemoryReplayCache) grow() {
	ring := make([]ringEntry, min(2*len(c.ring), c.max))
	k := copy(ring, c.ring[c.head:])
	copy(ring[k:], c.ring[:c.head])
	c.ring, c.head = ring, 0
}

// Len reports the number of entries held (live or not yet dropped).
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
