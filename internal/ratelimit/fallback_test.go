package ratelimit_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

func TestFallbackPolicies(t *testing.T) {
	limit := ratelimit.Limit{Name: "minute", Rate: 10, Period: time.Minute}
	for _, tc := range []struct {
		name     string
		policy   ratelimit.OnError
		admitted int // of 8 requests at once, Redis down, 2 replicas
	}{
		{"local: the limit divided by the replicas", ratelimit.OnErrorLocal, 5},
		{"deny: fail closed", ratelimit.OnErrorDeny, 0},
		{"allow: the limit is gone", ratelimit.OnErrorAllow, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // a closed port: Redis is down
			cfg := config.DefaultRedis()
			cfg.Addresses = []string{addr}
			cfg.Breaker.Failures = 3
			cfg.Breaker.CoolDown = config.Duration(time.Hour)
			c := redistest.ClientFor(t, cfg)
			primary, err := ratelimit.NewRedis(c, []ratelimit.Limit{limit}, ratelimit.RedisOptions{Namespace: "fb"})
			if err != nil {
				t.Fatal(err)
			}
			f, err := ratelimit.NewFallback(primary, ratelimit.FallbackOptions{
				OnError: []ratelimit.OnError{tc.policy}, Replicas: 2, DenyRetryAfter: 7 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			out := make([]ratelimit.Decision, 1)
			admitted := 0
			for i := 0; i < 8; i++ {
				ok, err := f.Allow(context.Background(), []string{"k"}, now, 1, out)
				if err != nil {
					t.Fatalf("Fallback returned an error: %v", err)
				}
				if ok != out[0].Allowed {
					t.Fatalf("allowed %v but decision %+v", ok, out[0])
				}
				if ok {
					admitted++
				} else if tc.policy == ratelimit.OnErrorDeny && out[0].RetryAfter != 7*time.Second {
					t.Fatalf("deny: retry after %v", out[0].RetryAfter)
				}
			}
			if admitted != tc.admitted {
				t.Fatalf("admitted %d of 8, want %d", admitted, tc.admitted)
			}
			if f.Degraded() != 8 {
				t.Fatalf("Degraded() = %d, want 8", f.Degraded())
			}
			if c.State() != redisconn.BreakerOpen {
				t.Fatalf("breaker %v after 8 failed calls", c.State())
			}
			if st := c.Stats(); st.FastFails != 5 {
				t.Fatalf("%d calls failed fast, want 5 (the breaker opened after 3)", st.FastFails)
			}
		})
	}
}

// Redis goes away and comes back: decisions move to the local fallback
// and back to Redis without a restart.
func TestFallbackOutageAndRecovery(t *testing.T) {
	proxy := redistest.NewProxy(t, redistest.Addr(t))
	cfg := redistest.Config(t, proxy.Addr())
	cfg.Breaker = config.RedisBreaker{Failures: 2, CoolDown: config.Duration(50 * time.Millisecond)}
	c := redistest.ClientFor(t, cfg)
	limit := ratelimit.Limit{Name: "minute", Rate: 100, Period: time.Minute}
	primary, err := ratelimit.NewRedis(c, []ratelimit.Limit{limit}, ratelimit.RedisOptions{Namespace: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ratelimit.NewFallback(primary, ratelimit.FallbackOptions{Replicas: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out := make([]ratelimit.Decision, 1)
	now := time.Now()
	allow := func() bool {
		ok, err := f.Allow(ctx, []string{"k"}, now, 1, out)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := 0; i < 10; i++ {
		allow()
	}
	if f.Degraded() != 0 || out[0].Remaining != 90 {
		t.Fatalf("Redis up: degraded %d, decision %+v", f.Degraded(), out[0])
	}

	proxy.Stop()
	admitted := 0
	for i := 0; i < 40; i++ {
		if allow() {
			admitted++
		}
	}
	if admitted != 25 || f.Degraded() != 40 {
		t.Fatalf("Redis down: admitted %d (want 25, a quarter of the limit), degraded %d", admitted, f.Degraded())
	}
	if c.State() != redisconn.BreakerOpen {
		t.Fatalf("breaker %v", c.State())
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := f.Degraded()
		allow()
		if f.Degraded() == before {
			break // Redis decided
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis is back but decisions stay local; breaker %v", c.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Redis kept its count: 10 before the outage, this one after.
	if out[0].Remaining != 89 {
		t.Fatalf("after recovery: %+v, want the count Redis kept (89 left)", out[0])
	}
}

func TestRedisErrorsAreUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.DefaultRedis()
	cfg.Addresses = []string{addr}
	c := redistest.ClientFor(t, cfg)
	l, err := ratelimit.NewRedis(c, []ratelimit.Limit{gcraLimit}, ratelimit.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := l.Allow(context.Background(), []string{"k"}, time.Now(), 1, make([]ratelimit.Decision, 1))
	if ok || !ratelimit.IsUnavailable(err) || !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Allow with Redis down = %v, %v", ok, err)
	}
}

func TestParseOnError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.OnError
		ok   bool
	}{{"", ratelimit.OnErrorLocal, true}, {"local", ratelimit.OnErrorLocal, true}, {"deny", ratelimit.OnErrorDeny, true},
		{"allow", ratelimit.OnErrorAllow, true}, {"open", 0, false}, {"DENY", 0, false}} {
		got, err := ratelimit.ParseOnError(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Fatalf("ParseOnError(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// With Redis down, a deny limit refuses and the local limit of the same
// request is not consumed (all or nothing in the fallback too).
func TestFallbackMixedPoliciesAllOrNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.DefaultRedis()
	cfg.Addresses = []string{addr}
	limits := []ratelimit.Limit{{Name: "local", Rate: 2, Period: time.Minute}, {Name: "paid", Rate: 5, Period: time.Minute}}
	primary, err := ratelimit.NewRedis(redistest.ClientFor(t, cfg), limits, ratelimit.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ratelimit.NewFallback(primary, ratelimit.FallbackOptions{OnError: []ratelimit.OnError{ratelimit.OnErrorLocal, ratelimit.OnErrorDeny}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]ratelimit.Decision, 2)
	now := time.Now()
	for i := 0; i < 5; i++ {
		if ok, _ := f.Allow(context.Background(), []string{"k", "k"}, now, 1, out); ok || out[0].Allowed || out[1].Allowed {
			t.Fatalf("request %d admitted: %+v", i, out)
		}
	}
	// The local limit (2 a minute) was never consumed: counting one
	// more still leaves one.
	if ok, _ := f.Allow(context.Background(), []string{"k", "k"}, now, 1, out); ok || out[0].Remaining != 1 {
		t.Fatalf("the local limit was consumed by refused requests: %+v", out)
	}
}
