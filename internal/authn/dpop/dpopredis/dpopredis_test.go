package dpopredis_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpopredis"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

func key(s string) dpop.ReplayKey { return dpop.ReplayKey(sha256.Sum256([]byte(s))) }

// TestReplayAcrossReplicas: two replicas (two clients, one Redis): a
// proof recorded by one is a replay for the other; distinct proofs are
// not; the entry expires when the proof's window ends.
func TestReplayAcrossReplicas(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	a := dpopredis.New(redistest.ClientFor(t, cfg))
	b := dpopredis.New(redistest.ClientFor(t, cfg))
	ctx := context.Background()
	until := time.Now().Add(90 * time.Second)

	for _, tc := range []struct {
		name  string
		cache *dpopredis.Cache
		key   string
		seen  bool
	}{
		{"first use on replica A", a, "proof-1", false},
		{"replayed to replica B", b, "proof-1", true},
		{"replayed to replica A", a, "proof-1", true},
		{"another proof on B", b, "proof-2", false},
	} {
		seen, err := tc.cache.SeenBefore(ctx, key(tc.key), until)
		if err != nil || seen != tc.seen {
			t.Fatalf("%s: seen=%v err=%v, want seen=%v", tc.name, seen, err, tc.seen)
		}
	}

	// The entry lives until the proof's window ends, not forever.
	c := redistest.ClientFor(t, cfg)
	ttl, err := c.Redis().PTTL(ctx, cfg.KeyPrefix+"dpop:{"+key("proof-1").String()+"}").Result()
	if err != nil || ttl <= 0 || ttl > 91*time.Second {
		t.Fatalf("ttl %v err %v: want at most the proof's window", ttl, err)
	}
}

// TestRedisDownFailsClosed: with Redis unreachable the cache answers an
// error (the verifier refuses the proof with 503), never "not seen".
func TestRedisDownFailsClosed(t *testing.T) {
	proxy := redistest.NewProxy(t, redistest.Addr(t))
	cfg := redistest.Config(t, proxy.Addr())
	c := dpopredis.New(redistest.ClientFor(t, cfg))
	ctx := context.Background()
	if _, err := c.SeenBefore(ctx, key("before"), time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("with Redis up: %v", err)
	}
	proxy.Stop()
	seen, err := c.SeenBefore(ctx, key("during"), time.Now().Add(time.Minute))
	if err == nil || !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Redis down: seen=%v err=%v, want ErrUnavailable", seen, err)
	}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
}
