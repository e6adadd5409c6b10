// Package redistest holds helpers for tests against the real Redis
// (127.0.0.1:6379, or GATEHOUSE_TEST_REDIS_ADDR): skipped when it is
// unreachable unless GATEHOUSE_REQUIRE_SERVICES=1, a key prefix of its
// own per test, and a TCP proxy a test can stop and start to play an
// outage. A separate package so the gateway binary never links testing.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn"
)

// DefaultAddr is the server tests use when GATEHOUSE_TEST_REDIS_ADDR is
// unset: the CI service.
const DefaultAddr = "127.0.0.1:6379"

var reach sync.Map // addr → error of the first check (nil: reachable)

// Addr returns the test server's address after checking that it
// answers; if it does not, the test is skipped, or fails when
// GATEHOUSE_REQUIRE_SERVICES=1 (as in CI).
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("GATEHOUSE_TEST_REDIS_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	v, ok := reach.Load(addr)
	if !ok {
		v, _ = reach.LoadOrStore(addr, ping(addr))
	}
	if err, _ := v.(error); err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("Redis test server unreachable (GATEHOUSE_REQUIRE_SERVICES=1): %v", err)
		}
		tb.Skipf("Redis test server unreachable, skipping (set GATEHOUSE_TEST_REDIS_ADDR, or GATEHOUSE_REQUIRE_SERVICES=1 to fail): %v", err)
	}
	return addr
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// Config returns a redis block for addr with a key prefix unique to the
// test; the test's keys are deleted when it ends.
func Config(tb testing.TB, addr string) config.Redis {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg := config.DefaultRedis()
	cfg.Addresses = []string{addr}
	cfg.KeyPrefix = "gatehouse-test:" + hex.EncodeToString(b[:]) + ":"
	prefix := cfg.KeyPrefix
	tb.Cleanup(func() { deleteKeys(tb, Addr(tb), prefix) })
	return cfg
}

// Client returns a Client on the test server with a key prefix of its
// own, closed when the test ends.
func Client(tb testing.TB) *redisconn.Client {
	tb.Helper()
	return ClientFor(tb, Config(tb, Addr(tb)))
}

// ClientFor returns a Client for cfg, closed when the test ends.
func ClientFor(tb testing.TB, cfg config.Redis) *redisconn.Client {
	tb.Helper()
	c, err := redisconn.New(cfg, redisconn.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func deleteKeys(tb testing.TB, addr, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Logf("redistest: deleting keys %s*: %v", prefix, err)
	}
}

// Proxy is a TCP proxy on 127.0.0.1 in front of a Redis server. Stop
// plays an outage (the listener closes and every connection is cut),
// Start ends it on the same address.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target; it is stopped when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	tb.Cleanup(func() { p.Stop(); p.wg.Wait() })
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.addr }

// Start listens again after Stop.
func (p *Proxy) Start() error {
	p.mu.Lock()
	running := p.ln != nil
	p.mu.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

// Stop closes the listener and cuts every connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // stopped meanwhile
				p.mu.Unlock()
				_ = in.Close()
				_ = out.Close()
				return
			}
			p.conns[in], p.conns[out] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
}
