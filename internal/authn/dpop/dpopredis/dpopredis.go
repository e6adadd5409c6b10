// Package dpopredis is the DPoP replay cache shared by every replica
// through Redis (dpop.replay_cache.store: redis): a proof accepted by one
// gateway process is refused as a replay by all the others, which the
// per-process memory cache cannot do.
package dpopredis

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/redisconn"
)

// Cache implements dpop.ReplayCache on a shared Redis.
type Cache struct {
	client *redisconn.Client
	prefix string
}

var _ dpop.ReplayCache = (*Cache)(nil)

// New returns the cache on client. Keys are
// <redis.key_prefix>dpop:{<base64url SHA-256 of thumbprint and jti>}: one
// hash tag per key, so Redis Cluster can place each anywhere.
func New(client *redisconn.Client) *Cache {
	return &Cache{client: client, prefix: client.Prefix() + "dpop:{"}
}

// SeenBefore records key until the given time and reports whether it was
// already there, in one atomic command (SET NX with an absolute expiry).
// Redis not answering (down, breaker open, timeout) is an error: the
// verifier then refuses the proof with 503 (fail closed), never accepts
// it unchecked.
func (c *Cache) SeenBefore(ctx context.Context, key dpop.ReplayKey, until time.Time) (bool, error) {
	k := c.prefix + key.String() + "}"
	var stored bool
	err := c.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		res, err := rdb.SetArgs(ctx, k, 1, redis.SetArgs{Mode: "NX", ExpireAt: until}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			stored = false // NX refused: the key exists
			return nil
		case err != nil:
			return err
		}
		stored = res == "OK"
		return nil
	})
	if err != nil {
		return false, err
	}
	return !stored, nil
}
