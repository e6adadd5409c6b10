package ssf

import (
	"sync"
	"time"
)

// ReplayCache remembers the jtis a transmitter has used, each until it
// could no longer pass the age check, in bounded memory: when full, the
// oldest entry makes room (a SET replayed after that is still refused by
// its age once it is old enough; within that time, acting on it again
// only repeats a revocation).
type ReplayCache struct {
	mu    sync.Mutex
	limit int
	seen  map[string]time.Time // jti → forget after
	order []string             // insertion order (a ring over limit)
	head  int
}

// NewReplayCache returns a cache of at most limit jtis (DefaultReplaySize
// when limit <= 0). Keep one per transmitter across reloads, so that a
// reload does not forget what was received.
func NewReplayCache(limit int) *ReplayCache {
	if limit <= 0 {
		limit = DefaultReplaySize
	}
	return &ReplayCache{limit: limit, seen: make(map[string]time.Time, min(limit, 1024))}
}

// seenAt reports whether jti is remembered at now.
func (c *ReplayCache) seenAt(jti string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.seen[jti]
	return ok && now.Before(until)
}

// add remembers jti until forget.
func (c *ReplayCache) add(jti string, forget time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[jti]; ok {
		c.seen[jti] = forget
		return
	}
	if len(c.order) < c.limit {
		c.order = append(c.order, jti)
	} else {
		delete(c.seen, c.order[c.head])
		c.order[c.head] = jti
		c.head = (c.head + 1) % c.limit
	}
	c.seen[jti] = forget
}
