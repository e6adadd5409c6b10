package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// A decision on a key already held: the hot path. Target < 150 ns, 0 allocs.
func BenchmarkGCRAAllow(b *testing.B) {
	g, err := ratelimit.NewGCRA(ratelimit.Limit{Name: "b", Rate: 1_000_000, Period: time.Second}, ratelimit.GCRAOptions{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	g.Allow("consumer-42", now, 1)
	b.ReportAllocs()
	for b.Loop() {
		// One interval later each time: every decision admits and writes.
		now = now.Add(time.Microsecond)
		if !g.Allow("consumer-42", now, 1).Allowed {
			b.Fatal("refused")
		}
	}
}

func BenchmarkGCRAAllowParallel(b *testing.B) {
	g, err := ratelimit.NewGCRA(ratelimit.Limit{Name: "b", Rate: 1_000_000, Period: time.Second}, ratelimit.GCRAOptions{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("consumer-", i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			g.Allow(keys[i&1023], now, 1)
			i++
		}
	})
}

// Two limits of one request (burst and daily), all or nothing.
func BenchmarkLocalAllowTwoLimits(b *testing.B) {
	l, err := ratelimit.NewLocal([]ratelimit.Limit{
		{Name: "burst", Rate: 1_000_000, Period: time.Second},
		{Name: "daily", Rate: 1_000_000_000, Period: 24 * time.Hour},
	}, ratelimit.GCRAOptions{})
	if err != nil {
		b.Fatal(err)
	}
	keys := []string{"consumer-42", "consumer-42"}
	out := make([]ratelimit.Decision, 2)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if ok, _ := l.Allow(ctx, keys, now, 1, out); !ok {
			b.Fatal("refused")
		}
	}
}

// One round trip to the real Redis per decision (reported as µs/op).
func BenchmarkRedisAllow(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("limits=%d", n), func(b *testing.B) {
			limits := []ratelimit.Limit{
				{Name: "burst", Rate: 1_000_000, Period: time.Second},
				{Name: "daily", Rate: 1_000_000_000, Period: 24 * time.Hour},
			}[:n]
			l, err := ratelimit.NewRedis(redistest.Client(b), limits, ratelimit.RedisOptions{Namespace: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			keys := []string{"consumer-42", "consumer-42"}[:n]
			out := make([]ratelimit.Decision, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Allow(ctx, keys, time.Now(), 1, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConcurrency(b *testing.B) {
	c := ratelimit.NewConcurrency(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if c.Acquire("route-a") {
			c.Release("route-a")
		}
	}
}

func BenchmarkAppendRateLimit(b *testing.B) {
	limits := []ratelimit.Limit{{Name: "burst", Rate: 20, Period: time.Second}, {Name: "daily", Rate: 10000, Period: 24 * time.Hour}}
	ds := []ratelimit.Decision{{Remaining: 19, ResetAfter: time.Second}, {Remaining: 9876, ResetAfter: time.Hour}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = ratelimit.AppendRateLimit(buf[:0], limits, ds)
	}
}
