package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisconn"
)

// gcraScript is GCRA over several keys, all or nothing, in one atomic
// step. Times are integer microseconds (Lua numbers are doubles: exact
// to 2^53, far past any Unix time in µs).
//
//	KEYS[i]       the TAT key of limit i
//	ARGV[1]       now (µs)            ARGV[2] cost
//	ARGV[2i+1]    interval of limit i ARGV[2i+2] tolerance of limit i
//
// It returns {allowed, then per limit: allowed, remaining, retry_after,
// reset_after}. A key is written only when every limit admits, with a
// TTL that ends when it is replenished: idle keys vanish.
var gcraScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local res = {1}
local tats = {}
local all = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2*i+1])
  local tol = tonumber(ARGV[2*i+2])
  local tat = tonumber(redis.call("GET", KEYS[i]) or now)
  if tat < now then tat = now end
  local inc = interval * cost
  local newtat = tat + inc
  local diff = now - (newtat - tol)
  if diff < 0 then
    all = false
    local retry = -diff
    if inc > tol then retry = tat - now + tol end
    local rem = math.floor((now + tol - tat) / interval)
    if rem < 0 then rem = 0 end
    res[#res+1] = 0
    res[#res+1] = rem
    res[#res+1] = retry
    res[#res+1] = tat - now
  else
    res[#res+1] = 1
    res[#res+1] = math.floor(diff / interval)
    res[#res+1] = 0
    res[#res+1] = newtat - now
    tats[i] = newtat
  end
end
if all then
  for i = 1, #KEYS do
    redis.call("SET", KEYS[i], tats[i], "PX", math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
else
  res[1] = 0
end
return res
`)

// refundScript gives back cost events on each key (KEYS), in µs:
// ARGV[1] now, ARGV[2] cost, ARGV[2+i] interval of key i.
var refundScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call("GET", KEYS[i]))
  if tat then
    tat = tat - tonumber(ARGV[2+i]) * cost
    if tat <= now then
      redis.call("DEL", KEYS[i])
    else
      redis.call("SET", KEYS[i], tat, "PX", math.max(1, math.ceil((tat - now) / 1000)))
    end
  end
end
return 0
`)

// RedisOptions tune a Redis limiter.
type RedisOptions struct {
	// Namespace separates this limiter's keys from others' with the same
	// limit names (a route or policy name). Keys are
	// <key_prefix>rl:<namespace>:{<limit name>:<key>}.
	Namespace string
}

// Redis is a Limiter whose counts live in Redis, shared by every replica
// using the same Redis, key prefix and namespace. One decision is one
// script call (one round trip) for all its limits on a standalone or
// Sentinel Redis; in a Redis Cluster the limits' keys live in different
// slots, so each limit is one script call, all of them pipelined, and a
// denial gives back what the others counted with a second pipeline.
//
// Replicas pass their own clock (now): keep them synchronised (NTP). A
// skew of δ between two replicas moves at most δ/T events between them.
type Redis struct {
	client   *redisconn.Client
	limits   []Limit
	prefixes []string // per limit: <prefix>rl:<namespace>:{<name>:
	args     []int64  // per limit: interval, tolerance (µs)
	cluster  bool
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter for limits counted in Redis.
func NewRedis(c *redisconn.Client, limits []Limit, o RedisOptions) (*Redis, error) {
	if len(limits) == 0 {
		return nil, fmt.Errorf("ratelimit: no limits")
	}
	r := &Redis{client: c, limits: append([]Limit(nil), limits...)}
	_, r.cluster = c.Redis().(*redis.ClusterClient)
	for _, l := range limits {
		if err := l.Validate(); err != nil {
			return nil, err
		}
		interval := l.Interval().Microseconds()
		r.prefixes = append(r.prefixes, c.Prefix()+"rl:"+o.Namespace+":{"+l.Name+":")
		r.args = append(r.args, interval, interval*int64(l.burst()))
	}
	return r, nil
}

// Limits are the limits checked, in order.
func (r *Redis) Limits() []Limit { return r.limits }

// Key is the Redis key of limit i for key (tests, operations).
func (r *Redis) Key(i int, key string) string { return r.prefixes[i] + key + "}" }

// Allow implements Limiter. Errors wrap redisconn.ErrUnavailable when
// Redis did not answer.
func (r *Redis) Allow(ctx context.Context, keys []string, now time.Time, cost int, out []Decision) (bool, error) {
	if len(keys) != len(r.limits) || len(out) < len(r.limits) {
		return false, fmt.Errorf("ratelimit: %d keys and %d decisions for %d limits", len(keys), len(out), len(r.limits))
	}
	// Costs above the largest burst never fit; clamping keeps the
	// script's arithmetic far from the limits of exact doubles.
	maxBurst := 0
	for _, l := range r.limits {
		maxBurst = max(maxBurst, l.burst())
	}
	cost = min(max(cost, 1), maxBurst+1)
	nowUS := now.UnixMicro()
	if !r.cluster || len(r.limits) == 1 {
		rkeys := make([]string, len(keys))
		for i, k := range keys {
			rkeys[i] = r.Key(i, k)
		}
		argv := make([]any, 0, 2+len(r.args))
		argv = append(argv, nowUS, cost)
		for _, a := range r.args {
			argv = append(argv, a)
		}
		var res []int64
		err := r.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
			var err error
			res, err = gcraScript.Run(ctx, rdb, rkeys, argv...).Int64Slice()
			return err
		})
		if err != nil {
			return false, fmt.Errorf("ratelimit: %w", err)
		}
		return decode(res, out, len(keys))
	}
	// Cluster: the limits' keys live in different slots, so one script
	// call per limit, pipelined (one round trip per node), then a second
	// pipeline giving back what was counted when a limit refused.
	allowed := true
	err := r.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		cmds, err := r.pipeline(ctx, rdb, gcraScript, keys, func(i int) []any {
			return []any{nowUS, cost, r.args[2*i], r.args[2*i+1]}
		}, func(int) bool { return true })
		if err != nil {
			return err
		}
		for i, cmd := range cmds {
			res, err := cmd.Int64Slice()
			if err != nil {
				return err
			}
			if _, err := decode(res, out[i:i+1], 1); err != nil {
				return err
			}
			if !out[i].Allowed {
				allowed = false
			}
		}
		if !allowed {
			// Best effort: a failed refund leaves the events counted,
			// which errs on the side of limiting.
			_, _ = r.pipeline(ctx, rdb, refundScript, keys, func(i int) []any {
				return []any{nowUS, cost, r.args[2*i]}
			}, func(i int) bool { return out[i].Allowed })
			for i := range out[:len(keys)] {
				out[i].Allowed = false
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ratelimit: %w", err)
	}
	return allowed, nil
}

// pipeline runs script once per selected key in one pipeline, with
// EVALSHA; the calls a node refused with NOSCRIPT (it did not know the
// script yet, so they did nothing) are sent again with EVAL. The others
// ran and must not run twice.
func (r *Redis) pipeline(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, keys []string,
	args func(i int) []any, selected func(i int) bool) ([]*redis.Cmd, error) {
	idx := make([]int, 0, len(keys))
	for i := range keys {
		if selected(i) {
			idx = append(idx, i)
		}
	}
	cmds := make([]*redis.Cmd, len(idx))
	pipe := rdb.Pipeline()
	for j, i := range idx {
		cmds[j] = script.EvalSha(ctx, pipe, []string{r.Key(i, keys[i])}, args(i)...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return cmds, err
	}
	pipe = rdb.Pipeline()
	for j, i := range idx {
		if redis.HasErrorPrefix(cmds[j].Err(), "NOSCRIPT") {
			cmds[j] = script.Eval(ctx, pipe, []string{r.Key(i, keys[i])}, args(i)...)
		}
	}
	_, err = pipe.Exec(ctx)
	return cmds, err
}

func decode(res []int64, out []Decision, n int) (bool, error) {
	if len(res) != 1+4*n {
		return false, fmt.Errorf("ratelimit: script returned %d values for %d limits", len(res), n)
	}
	for i := 0; i < n; i++ {
		v := res[1+4*i:]
		out[i] = Decision{
			Allowed:    v[0] == 1 && res[0] == 1,
			Remaining:  int(v[1]),
			RetryAfter: time.Duration(v[2]) * time.Microsecond,
			ResetAfter: time.Duration(v[3]) * time.Microsecond,
		}
	}
	return res[0] == 1, nil
}

// IsUnavailable reports whether err means Redis did not answer (as
// opposed to a bug): the caller applies its fallback either way.
func IsUnavailable(err error) bool { return errors.Is(err, redisconn.ErrUnavailable) }
