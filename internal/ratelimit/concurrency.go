package ratelimit

import (
	"hash/maphash"
	"sync"
)

// Concurrency bounds the requests in flight per key (a route, or a route
// and a caller), in this process. Memory holds only keys with requests in
// flight. It is safe for concurrent use and allocates nothing once a
// key's map slot exists.
type Concurrency struct {
	max    int
	seed   maphash.Seed
	shards [shardCount]concShard
}

type concShard struct {
	mu       sync.Mutex
	inflight map[string]int
	_        [40]byte
}

// NewConcurrency returns a limiter admitting at most max requests in
// flight per key (at least 1).
func NewConcurrency(max int) *Concurrency {
	c := &Concurrency{max: max1(max), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].inflight = make(map[string]int)
	}
	return c
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Max is the bound per key.
func (c *Concurrency) Max() int { return c.max }

// Acquire takes a slot for key and reports whether one was free. Every
// successful Acquire must be paired with one Release (defer it).
func (c *Concurrency) Acquire(key string) bool {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	n := s.inflight[key]
	ok := n < c.max
	if ok {
		s.inflight[key] = n + 1
	}
	s.mu.Unlock()
	return ok
}

// Release gives back a slot taken by Acquire.
func (c *Concurrency) Release(key string) {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	if n := s.inflight[key]; n <= 1 {
		delete(s.inflight, key)
	} else {
		s.inflight[key] = n - 1
	}
	s.mu.Unlock()
}

// InFlight is the number of requests in flight for key.
func (c *Concurrency) InFlight(key string) int {
	s := &c.shards[maphash.String(c.seed, key)&(shardCount-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[key]
}

// Keys is the number of keys with requests in flight.
func (c *Concurrency) Keys() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.inflight)
		s.mu.Unlock()
	}
	return n
}
