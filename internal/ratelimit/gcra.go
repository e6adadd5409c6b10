package ratelimit

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// shardCount is a power of two: enough shards that 2-64 cores rarely
// meet on a lock, few enough that the array stays small.
const shardCount = 64

// DefaultMaxKeys bounds the keys a GCRA holds when Options.MaxKeys is 0.
const DefaultMaxKeys = 100_000

// evictSample is how many keys are looked at to pick one to evict when a
// shard is full of live keys (an approximation of least-recently-needed,
// as Redis does for its LRU).
const evictSample = 8

// GCRAOptions tune a GCRA.
type GCRAOptions struct {
	// MaxKeys bounds the keys held. Past it, keys whose TAT is in the
	// past are dropped, then (when every key is live) the key nearest to
	// replenishment among a small sample is: that key is forgotten,
	// which admits at most its remaining burst early. Default
	// DefaultMaxKeys.
	MaxKeys int
}

// GCRA is one limit kept in memory for many keys. It is safe for
// concurrent use; a decision on a key already held allocates nothing
// (a new key costs one small allocation).
type GCRA struct {
	limit     Limit
	interval  int64 // T, nanoseconds
	tolerance int64 // τ = Burst·T, nanoseconds
	perShard  int
	seed      maphash.Seed
	shards    [shardCount]shard
}

type shard struct {
	mu sync.Mutex
	// tats maps a key to its TAT in Unix nanoseconds, through a pointer
	// so that an update is a store, not a second map lookup.
	tats map[string]*int64
	// noExpiryBefore: no key of this shard has a TAT before it (from
	// the last sweep), so a sweep before then frees nothing.
	noExpiryBefore int64
	_              [24]byte // keep shards on separate cache lines
}

// NewGCRA returns an in-memory limiter for l.
func NewGCRA(l Limit, o GCRAOptions) (*GCRA, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	g := &GCRA{
		limit:    l,
		interval: int64(l.Interval()),
		perShard: max(maxKeys/shardCount, 1),
		seed:     maphash.MakeSeed(),
	}
	g.tolerance = g.interval * int64(l.burst())
	for i := range g.shards {
		g.shards[i].tats = make(map[string]*int64)
	}
	return g, nil
}

// Limit is the limit this GCRA enforces.
func (g *GCRA) Limit() Limit { return g.limit }

// Allow decides whether an event of the given cost for key fits the
// limit at now, and counts it if so. A cost below 1 counts as 1.
func (g *GCRA) Allow(key string, now time.Time, cost int) Decision {
	cost = g.limit.clampCost(cost)
	t := now.UnixNano()
	s := &g.shards[maphash.String(g.seed, key)&(shardCount-1)]
	s.mu.Lock()
	p := s.tats[key]
	var tat int64
	if p != nil {
		tat = *p
	}
	d, newTAT := g.decide(tat, t, cost)
	if d.Allowed {
		if p != nil {
			*p = newTAT
		} else {
			if len(s.tats) >= g.perShard {
				g.makeRoom(s, t)
			}
			np := new(int64)
			*np = newTAT
			// A copy: the caller's key may share memory with a whole
			// request, which the map would otherwise keep alive.
			s.tats[strings.Clone(key)] = np
		}
	}
	s.mu.Unlock()
	return d
}

// decide is GCRA's arithmetic, shared with the tests; the Redis script
// is the same in Lua.
func (g *GCRA) decide(tat, now int64, cost int) (Decision, int64) {
	if tat < now {
		tat = now
	}
	increment := g.interval * int64(cost)
	newTAT := tat + increment
	allowAt := newTAT - g.tolerance
	diff := now - allowAt
	if diff < 0 {
		d := Decision{
			Remaining:  int(max(now+g.tolerance-tat, 0) / g.interval),
			RetryAfter: time.Duration(-diff),
			ResetAfter: time.Duration(tat - now),
		}
		if increment > g.tolerance {
			// Never fits: say when the limit is full again.
			d.RetryAfter = time.Duration(tat - now + g.tolerance)
		}
		return d, tat
	}
	return Decision{
		Allowed:    true,
		Remaining:  int(diff / g.interval),
		ResetAfter: time.Duration(newTAT - now),
	}, newTAT
}

// Refund gives back an event of the given cost counted for key (an
// all-or-nothing check of several limits undoing its earlier steps).
func (g *GCRA) Refund(key string, now time.Time, cost int) {
	cost = max(cost, 1)
	t := now.UnixNano()
	s := &g.shards[maphash.String(g.seed, key)&(shardCount-1)]
	s.mu.Lock()
	if p := s.tats[key]; p != nil {
		*p -= g.interval * int64(cost)
		if *p <= t {
			delete(s.tats, key)
		}
	}
	s.mu.Unlock()
}

// makeRoom frees one place in a full shard: it drops every replenished
// key (at most once until one can have become so), and when none was,
// the key nearest to replenishment among a sample. s.mu is held.
func (g *GCRA) makeRoom(s *shard, now int64) {
	if now >= s.noExpiryBefore {
		g.sweepShard(s, now)
		if len(s.tats) < g.perShard {
			return
		}
	}
	victim, victimTAT, n := "", int64(0), 0
	for k, p := range s.tats {
		if n == 0 || *p < victimTAT {
			victim, victimTAT = k, *p
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(s.tats, victim)
}

// sweepShard drops the keys whose TAT is past. s.mu is held.
func (g *GCRA) sweepShard(s *shard, now int64) int {
	dropped := 0
	minTAT := int64(1<<63 - 1)
	for k, p := range s.tats {
		if *p <= now {
			delete(s.tats, k)
			dropped++
		} else if *p < minTAT {
			minTAT = *p
		}
	}
	s.noExpiryBefore = minTAT
	return dropped
}

// Sweep drops every key that is fully replenished at now and returns how
// many were dropped. Allow sweeps a shard when it fills; calling Sweep
// periodically keeps memory at what live keys need.
func (g *GCRA) Sweep(now time.Time) int {
	t := now.UnixNano()
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += g.sweepShard(s, t)
		s.mu.Unlock()
	}
	return n
}

// Len is the number of keys held.
func (g *GCRA) Len() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}
