package quota_test

import (
	"testing"

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
