package redisconn_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// syncBuffer is a log destination safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Redis)
		want string
	}{
		{"no address", func(c *config.Redis) { c.Addresses = nil }, "no redis.addresses"},
		{"missing CA file", func(c *config.Redis) { c.TLS = &config.RedisTLS{CAFile: "/nonexistent/ca.pem"} }, "tls.ca_file"},
		{"CA file without certificates", func(c *config.Redis) {
			c.TLS = &config.RedisTLS{CAFile: writeFile(t, "not a certificate")}
		}, "no PEM certificate"},
		{"client key missing", func(c *config.Redis) {
			c.TLS = &config.RedisTLS{CertFile: writeFile(t, "x"), KeyFile: "/nonexistent/key.pem"}
		}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.DefaultRedis()
			cfg.Addresses = []string{"127.0.0.1:6379"}
			tc.edit(&cfg)
			c, err := redisconn.New(cfg, redisconn.Options{})
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := t.TempDir() + "/file.pem"
	if err := writeString(f, content); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPingAndPrefix(t *testing.T) {
	c := redistest.Client(t)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if !strings.HasPrefix(c.Prefix(), "gatehouse-test:") {
		t.Fatalf("prefix %q", c.Prefix())
	}
	if st := c.Stats(); st.Breaker != redisconn.BreakerClosed || st.Errors != 0 || st.Pool == nil {
		t.Fatalf("stats %+v", st)
	}
}

// A server that answers with an error is alive: its errors are not
// ErrUnavailable and never open the breaker.
func TestAnswerErrorsDoNotTrip(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		err := c.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
			return rdb.Eval(ctx, "return redis.error_reply('BOOM test')", nil).Err()
		})
		if err == nil || errors.Is(err, redisconn.ErrUnavailable) || !strings.Contains(err.Error(), "BOOM") {
			t.Fatalf("call %d: %v", i, err)
		}
		err = c.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
			return rdb.Get(ctx, c.Prefix()+"missing").Err()
		})
		if !errors.Is(err, redis.Nil) || errors.Is(err, redisconn.ErrUnavailable) {
			t.Fatalf("GET of a missing key: %v", err)
		}
	}
	if s := c.State(); s != redisconn.BreakerClosed {
		t.Fatalf("breaker %v after answers", s)
	}
}

func TestClosedPortFailsAndOpensBreaker(t *testing.T) {
	var logs syncBuffer
	cfg := config.DefaultRedis()
	cfg.Addresses = []string{closedPort(t)}
	cfg.Password = "s3cret-never-logged"
	cfg.Breaker = config.RedisBreaker{Failures: 3, CoolDown: config.Duration(time.Hour)}
	c, err := redisconn.New(cfg, redisconn.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), WarnInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		err := c.Ping(ctx)
		if !errors.Is(err, redisconn.ErrUnavailable) || errors.Is(err, redisconn.ErrBreakerOpen) {
			t.Fatalf("call %d: %v, want ErrUnavailable from the dial", i, err)
		}
	}
	if s := c.State(); s != redisconn.BreakerOpen {
		t.Fatalf("breaker %v after 3 failures, want open", s)
	}
	for i := 0; i < 5; i++ {
		if err := c.Ping(ctx); !errors.Is(err, redisconn.ErrBreakerOpen) || !errors.Is(err, redisconn.ErrUnavailable) {
			t.Fatalf("call with the breaker open: %v", err)
		}
	}
	st := c.Stats()
	if st.Errors != 3 || st.FastFails != 5 || st.BreakerOpens != 1 {
		t.Fatalf("stats %+v, want 3 errors, 5 fast fails, 1 opening", st)
	}
	out := logs.String()
	if n := strings.Count(out, "redis: call failed"); n != 1 {
		t.Fatalf("%d failure warnings, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "circuit breaker open") {
		t.Fatalf("no breaker warning:\n%s", out)
	}
	if strings.Contains(out, cfg.Password) {
		t.Fatal("the password was logged")
	}
}

// The breaker opens during an outage and closes once Redis is back.
func TestOutageAndRecovery(t *testing.T) {
	addr := redistest.Addr(t)
	proxy := redistest.NewProxy(t, addr)
	cfg := redistest.Config(t, proxy.Addr())
	cfg.Breaker = config.RedisBreaker{Failures: 2, CoolDown: config.Duration(50 * time.Millisecond)}
	c := redistest.ClientFor(t, cfg)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping through the proxy: %v", err)
	}

	proxy.Stop()
	for i := 0; i < 2; i++ {
		if err := c.Ping(ctx); !errors.Is(err, redisconn.ErrUnavailable) {
			t.Fatalf("Ping during the outage: %v", err)
		}
	}
	if s := c.State(); s != redisconn.BreakerOpen {
		t.Fatalf("breaker %v during the outage", s)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Redis back, but calls still fail; breaker %v", c.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := c.State(); s != redisconn.BreakerClosed {
		t.Fatalf("breaker %v after recovery", s)
	}
}

func TestAcquireSharesOneClient(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	reg := resource.New()
	s1, s2 := reg.Scope(), reg.Scope()
	c1, err := redisconn.Acquire(s1, cfg, redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := redisconn.Acquire(s2, cfg, redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c1 != c2 {
		t.Fatal("two plans with the same redis block got two clients")
	}
	other := cfg
	other.Password = "different"
	c3, err := redisconn.Acquire(s2, other, redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c3 == c1 {
		t.Fatal("a changed password reused the client")
	}
	for _, k := range reg.Keys() {
		if strings.Contains(k, "different") {
			t.Fatalf("resource key %q shows the password", k)
		}
	}
	s1.Close()
	if err := c1.Ping(context.Background()); err != nil {
		t.Fatalf("client closed while a scope holds it: %v", err)
	}
	s2.Close()
	if reg.Len() != 0 {
		t.Fatalf("%d resources left open", reg.Len())
	}
}

// Callers that give up (a client disconnecting) say nothing about Redis.
func TestCancelledCallersDoNotTrip(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	cfg.Breaker.Failures = 2
	c := redistest.ClientFor(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 5; i++ {
		if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Ping with a cancelled context: %v", err)
		}
	}
	if s := c.State(); s != redisconn.BreakerClosed {
		t.Fatalf("breaker %v after cancelled calls", s)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
