package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisconn"
)

// FailurePolicy is a brute-force threshold: Threshold failures within
// Window lock the key out for Lockout.
type FailurePolicy struct {
	// Threshold is the number of failures that locks the key out.
	Threshold int
	// Window is the fixed window failures are counted in; it starts at
	// the first failure.
	Window time.Duration
	// Lockout is how long a locked-out key is refused.
	Lockout time.Duration
}

// Validate reports a policy that cannot work.
func (p FailurePolicy) Validate() error {
	if p.Threshold < 1 || p.Window <= 0 || p.Lockout <= 0 {
		return fmt.Errorf("ratelimit: failure policy needs threshold ≥ 1, window > 0 and lockout > 0")
	}
	return nil
}

// FailureCounter counts failed authentications per key (a client
// address, a credential id) and locks a key out past a threshold. The
// stage asks Blocked before any expensive check, and reports each
// failure with Fail. Implementations: LocalFailures and RedisFailures.
type FailureCounter interface {
	// Blocked reports whether key is locked out at now, and for how
	// long still. An error means the store did not answer: the caller
	// applies its policy (see docs/rate-limits.md); it must not treat
	// the error as "not blocked" silently.
	Blocked(ctx context.Context, key string, now time.Time) (blocked bool, retryAfter time.Duration, err error)
	// Fail counts one failure for key. lockedNow is true exactly when
	// this failure started a lockout (audit authn.lockout once, not per
	// refused request); retryAfter is then the lockout.
	Fail(ctx context.Context, key string, now time.Time) (lockedNow bool, retryAfter time.Duration, err error)
	// Reset forgets key's failures (not its lockout): a success ends a
	// run of typos.
	Reset(ctx context.Context, key string) error
}

// LocalFailures is a FailureCounter in memory, bounded: past MaxKeys,
// keys with neither a live window nor a lockout are dropped, then the
// oldest window among a sample (never a lockout: an attacker filling
// the table must not free himself).
type LocalFailures struct {
	policy   FailurePolicy
	perShard int
	seed     maphash.Seed
	shards   [shardCount]failShard
}

type failEntry struct {
	count       int
	windowEnd   int64 // ns
	lockedUntil int64 // ns
}

type failShard struct {
	mu      sync.Mutex
	entries map[string]failEntry
	_       [40]byte
}

var _ FailureCounter = (*LocalFailures)(nil)

// NewLocalFailures returns a FailureCounter in memory holding at most
// maxKeys keys (default DefaultMaxKeys).
func NewLocalFailures(p FailurePolicy, maxKeys int) (*LocalFailures, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	f := &LocalFailures{policy: p, perShard: max(maxKeys/shardCount, 1), seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].entries = make(map[string]failEntry)
	}
	return f, nil
}

func (f *LocalFailures) shard(key string) *failShard {
	return &f.shards[maphash.String(f.seed, key)&(shardCount-1)]
}

// Blocked implements FailureCounter; it never fails.
func (f *LocalFailures) Blocked(_ context.Context, key string, now time.Time) (bool, time.Duration, error) {
	t := now.UnixNano()
	s := f.shard(key)
	s.mu.Lock()
	e, ok := s.entries[key]
	s.mu.Unlock()
	if ok && e.lockedUntil > t {
		return true, time.Duration(e.lockedUntil - t), nil
	}
	return false, 0, nil
}

// Fail implements FailureCounter; it never fails.
func (f *LocalFailures) Fail(_ context.Context, key string, now time.Time) (bool, time.Duration, error) {
	t := now.UnixNano()
	s := f.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if ok && e.lockedUntil > t {
		return false, time.Duration(e.lockedUntil - t), nil
	}
	if !ok && len(s.entries) >= f.perShard {
		f.makeRoom(s, t)
	}
	if !ok {
		key = strings.Clone(key) // not the request's memory
	}
	if e.windowEnd <= t {
		e = failEntry{windowEnd: t + int64(f.policy.Window)}
	}
	e.count++
	if e.count >= f.policy.Threshold {
		e = failEntry{lockedUntil: t + int64(f.policy.Lockout)}
		s.entries[key] = e
		return true, f.policy.Lockout, nil
	}
	s.entries[key] = e
	return false, 0, nil
}

// Reset implements FailureCounter.
func (f *LocalFailures) Reset(_ context.Context, key string) error {
	s := f.shard(key)
	s.mu.Lock()
	if e, ok := s.entries[key]; ok && e.lockedUntil == 0 {
		delete(s.entries, key)
	}
	s.mu.Unlock()
	return nil
}

func (f *LocalFailures) makeRoom(s *failShard, now int64) {
	for k, e := range s.entries {
		if e.windowEnd <= now && e.lockedUntil <= now {
			delete(s.entries, k)
		}
	}
	if len(s.entries) < f.perShard {
		return
	}
	victim, oldest, n := "", int64(0), 0
	for k, e := range s.entries {
		if e.lockedUntil > now {
			continue
		}
		if victim == "" || e.windowEnd < oldest {
			victim, oldest = k, e.windowEnd
		}
		if n++; n == evictSample {
			break
		}
	}
	if victim != "" {
		delete(s.entries, victim)
	}
	// A shard full of lockouts grows past its bound until they end:
	// forgetting a lockout would be the attacker's reward.
}

// Len is the number of keys held.
func (f *LocalFailures) Len() int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// failScript counts one failure: KEYS[1] the counter, KEYS[2] the lock;
// ARGV[1] threshold, ARGV[2] window (ms), ARGV[3] lockout (ms). Returns
// {state, ms}: 0 counted, 1 already locked (ms left), 2 locked now.
// Redis's own clock times the window and lockout (PX), so replicas'
// clocks do not matter.
var failScript = redis.NewScript(`
local left = redis.call("PTTL", KEYS[2])
if left > 0 then return {1, left} end
local n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call("SET", KEYS[2], "1", "PX", ARGV[3])
  redis.call("DEL", KEYS[1])
  return {2, tonumber(ARGV[3])}
end
return {0, 0}
`)

// RedisFailures is a FailureCounter in Redis, shared by the replicas.
// Keys are <key_prefix>bf:<namespace>:{<key>}:n and …:lock (one hash
// tag, one cluster slot); both expire on their own.
type RedisFailures struct {
	client *redisconn.Client
	policy FailurePolicy
	prefix string
}

var _ FailureCounter = (*RedisFailures)(nil)

// NewRedisFailures returns a FailureCounter in Redis; namespace
// separates counters of different policies.
func NewRedisFailures(c *redisconn.Client, p FailurePolicy, namespace string) (*RedisFailures, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &RedisFailures{client: c, policy: p, prefix: c.Prefix() + "bf:" + namespace + ":{"}, nil
}

func (f *RedisFailures) keys(key string) (count, lock string) {
	base := f.prefix + key + "}"
	return base + ":n", base + ":lock"
}

// Blocked implements FailureCounter. Errors wrap
// redisconn.ErrUnavailable when Redis did not answer.
func (f *RedisFailures) Blocked(ctx context.Context, key string, _ time.Time) (bool, time.Duration, error) {
	_, lock := f.keys(key)
	var left time.Duration
	err := f.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		left, err = rdb.PTTL(ctx, lock).Result()
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: %w", err)
	}
	if left > 0 {
		return true, left, nil
	}
	return false, 0, nil
}

// Fail implements FailureCounter.
func (f *RedisFailures) Fail(ctx context.Context, key string, _ time.Time) (bool, time.Duration, error) {
	count, lock := f.keys(key)
	var res []int64
	err := f.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		res, err = failScript.Run(ctx, rdb, []string{count, lock},
			f.policy.Threshold, f.policy.Window.Milliseconds(), max(f.policy.Lockout.Milliseconds(), 1)).Int64Slice()
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("ratelimit: failure script returned %d values", len(res))
	}
	left := time.Duration(res[1]) * time.Millisecond
	switch res[0] {
	case 2:
		return true, left, nil
	case 1:
		return false, left, nil
	}
	return false, 0, nil
}

// Reset implements FailureCounter.
func (f *RedisFailures) Reset(ctx context.Context, key string) error {
	count, _ := f.keys(key)
	err := f.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Del(ctx, count).Err()
	})
	if err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}

// FallbackFailures is a FailureCounter that uses a shared counter
// (Redis) and, when it fails, a local one: during an outage each
// replica counts and locks out on its own, so brute-force protection
// weakens by at most the number of replicas and never switches off. It
// never returns an error.
type FallbackFailures struct {
	primary  FailureCounter
	local    *LocalFailures
	degraded atomic.Uint64
}

var _ FailureCounter = (*FallbackFailures)(nil)

// NewFallbackFailures wraps primary with a local counter of the same
// policy holding at most maxKeys keys.
func NewFallbackFailures(primary FailureCounter, p FailurePolicy, maxKeys int) (*FallbackFailures, error) {
	local, err := NewLocalFailures(p, maxKeys)
	if err != nil {
		return nil, err
	}
	return &FallbackFailures{primary: primary, local: local}, nil
}

// Degraded counts the calls answered locally (a metric).
func (f *FallbackFailures) Degraded() uint64 { return f.degraded.Load() }

// Blocked implements FailureCounter: blocked if the shared counter says
// so, or (during an outage) the local one does. A lockout recorded
// locally during an outage keeps applying after Redis is back, until it
// ends.
func (f *FallbackFailures) Blocked(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	if blocked, left, _ := f.local.Blocked(ctx, key, now); blocked {
		return true, left, nil
	}
	blocked, left, err := f.primary.Blocked(ctx, key, now)
	if err != nil {
		f.degraded.Add(1)
		return false, 0, nil // the local answer, above
	}
	return blocked, left, nil
}

// Fail implements FailureCounter.
func (f *FallbackFailures) Fail(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
	locked, left, err := f.primary.Fail(ctx, key, now)
	if err != nil {
		f.degraded.Add(1)
		return f.local.Fail(ctx, key, now)
	}
	return locked, left, nil
}

// Reset implements FailureCounter.
func (f *FallbackFailures) Reset(ctx context.Context, key string) error {
	_ = f.local.Reset(ctx, key)
	if err := f.primary.Reset(ctx, key); err != nil {
		f.degraded.Add(1)
	}
	return nil
}
