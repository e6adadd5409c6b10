package quota_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/quota"
	"github.com/gatehouse/gatehouse/internal/quota/quotatest"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// TestRedisStore runs the conformance suite on the real Redis; a
// "restart" is a new client on the same server and key prefix.
func TestRedisStore(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	open := func(t *testing.T) quota.Store { return quota.NewRedis(redistest.ClientFor(t, cfg)) }
	quotatest.Run(t, t.Name(), open, func(t *testing.T, _ quota.Store) quota.Store { return open(t) })
}

// BenchmarkRedisTake measures one count: one script call, one round trip.
func BenchmarkRedisTake(b *testing.B) {
	s := quota.NewRedis(redistest.Client(b))
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Take(ctx, quota.Take{Key: "bench", Window: 1, Prev: 0, Limit: 1 << 40, ExpireAt: exp}); err != nil {
			b.Fatal(err)
		}
	}
}
