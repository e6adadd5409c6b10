package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisconn"
)

// takeScript counts one request in one atomic step (one round trip).
//
//	KEYS[1] this window's counter   KEYS[2] the previous window's
//	ARGV[1] limit  ARGV[2] weight of the previous window  ARGV[3] expiry (Unix ms)
//
// It returns {ok, cur, prev}. The counter is created by INCR and gets
// its expiry (the end of the period) on creation, so idle callers vanish.
var takeScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local prev = 0
if w > 0 then prev = tonumber(redis.call("GET", KEYS[2]) or "0") end
local cap = limit - math.floor(prev * w)
local n = tonumber(redis.call("GET", KEYS[1]) or "0")
if n >= cap then return {0, n, prev} end
n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIREAT", KEYS[1], ARGV[3]) end
return {1, n, prev}
`)

// Redis is a Store in Redis, shared by every replica. Keys are
// PREFIX "q:{" key "}:" window: the hash tag keeps a caller's windows
// (and its exceeded marks) in one Redis Cluster slot, so the script may
// read both.
type Redis struct {
	client *redisconn.Client
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store in the Redis of client.
func NewRedis(client *redisconn.Client) *Redis { return &Redis{client: client} }

func (r *Redis) key(key string, window int64, kind byte) string {
	b := make([]byte, 0, len(r.client.Prefix())+len(key)+28)
	b = append(b, r.client.Prefix()...)
	b = append(b, "q:{"...)
	b = append(b, key...)
	b = append(b, "}:"...)
	b = append(b, kind)
	b = strconv.AppendInt(b, window, 10)
	return string(b)
}

// Take implements Store.
func (r *Redis) Take(ctx context.Context, t Take) (Result, error) {
	keys := []string{r.key(t.Key, t.Window, 'w'), r.key(t.Key, t.Prev, 'w')}
	var res []int64
	err := r.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		res, err = takeScript.Run(ctx, rdb, keys, t.Limit, strconv.FormatFloat(t.PrevWeight, 'f', -1, 64), t.ExpireAt.UnixMilli()).Int64Slice()
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	if len(res) != 3 {
		return Result{}, fmt.Errorf("%w: redis: script answered %d values", ErrUnavailable, len(res))
	}
	return Result{OK: res[0] == 1, Cur: res[1], Prev: res[2]}, nil
}

// Counts implements Store.
func (r *Redis) Counts(ctx context.Context, key string, window, prev int64) (cur, prevN int64, err error) {
	var vals []any
	err = r.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		vals, err = rdb.MGet(ctx, r.key(key, window, 'w'), r.key(key, prev, 'w')).Result()
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	n := func(v any) int64 {
		s, _ := v.(string)
		i, _ := strconv.ParseInt(s, 10, 64)
		return i
	}
	return n(vals[0]), n(vals[1]), nil
}

// MarkExceeded implements Store (SET NX with the window's expiry).
func (r *Redis) MarkExceeded(ctx context.Context, key string, window int64, expireAt time.Time) (bool, error) {
	var first bool
	err := r.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		err := rdb.SetArgs(ctx, r.key(key, window, 'x'), "1", redis.SetArgs{Mode: "NX", ExpireAt: expireAt}).Err()
		switch {
		case err == nil:
			first = true
		case errors.Is(err, redis.Nil):
			err = nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	return first, nil
}
