package ratelimit

import (
	"hash/maphash"
	"strings"
	"sync"
)

// Concurrency bounds the requests in flight per key (a route, or a route
// and a caller), in this process. A key with nothing in flight keeps its
// slot (so the hot path is one lookup and a store) until its shard holds
// idleKeysPerShard keys, when idle keys are dropped: memory is bounded by
// the keys in flight plus that slack. It is safe for concurrent use and
// allocates nothing once a key's slot exists.
type Concurrency struct {
	max    int
	seed   maphash.Seed
	shards [shardCount]concShard
}

// idleKeysPerShard is how many keys a shard holds before dropping the
// idle ones.
const idleKeysPerShard = 64

type concShard struct {
	mu       sync.Mutex
	inflight map[string]*int
	_        [40]byte
}

// NewConcurrency returns a limiter admitting at most limit requests in
// flight per key (at least 1).
func NewConcurrency(limit int) *Concurrency {
	c := &Concurrency{max: max(limit, 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].inflight = make(map[string]*int)
	}
	return c
}

// Max is the bound per key.
func (c *Concurrency) Max() int { return c.max }

// Acquire takes a slot for key and reports whether one was free. Every
// successful Acquire must be paired with one Release (defer it).
func (c *Concurrency) Acquire(key string) bool {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.inflight[key]
	if p == nil {
		if len(s.inflight) >= idleKeysPerShard {
			for k, q := range s.inflight {
				if *q == 0 {
					delete(s.inflight, k)
				}
			}
		}
		one := 1
		s.inflight[strings.Clone(key)] = &one
		return true
	}
	if *p >= c.max {
		return false
	}
	*p++
	return true
}

// Release gives back a slot taken by Acquire.
func (c *Concurrency) Release(key string) {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	if p := s.inflight[key]; p != nil && *p > 0 {
		*p--
	}
	s.mu.Unlock()
}

// InFlight is the number of requests in flight for key.
func (c *Concurrency) InFlight(key string) int {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.inflight[key]; p != nil {
		return *p
	}
	return 0
}

// Keys is the number of keys with requests in flight.
func (c *Concurrency) Keys() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, p := range s.inflight {
			if *p > 0 {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// held is the number of slots held, idle ones included (tests).
func (c *Concurrency) held() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.inflight)
		s.mu.Unlock()
	}
	return n
}
