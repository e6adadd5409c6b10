package main

// The scenarios of issue 14: jwt-rs256-warm on a route with a rate limit,
// counted in memory (the main Gatehouse) and in the real Redis (a variant
// Gatehouse with a redis block), each measured beside the bare proxy like
// the others. The limits are far above what the load generator can send,
// so no request is refused: what is measured is the decision and the
// RateLimit headers.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultRedisAddr is the Redis of the jwt-ratelimit-redis scenario when
// GATEHOUSE_TEST_REDIS_ADDR is unset, as for the tests.
const defaultRedisAddr = "127.0.0.1:6379"

// tinyLimit is the rate per minute of the self-check's policy (bench-tiny
// in rateLimitConfig): its tinyLimit+1th request must be refused.
const tinyLimit = 3

// rateLimitConfig is appended to the main Gatehouse's configuration: a
// policy that never refuses during a phase (a million per second: the
// GCRA's finest emission interval, 1 µs) and a tiny one for the
// self-check, each on a JWT route of its own. Without a redis block they
// are counted in memory; the gatehouse-redis variant adds one, which
// makes Redis their store.
const rateLimitConfig = `rate_limits:
  policies:
    bench-high:
      limits:
        - {name: high, rate: 1000000, per: 1s, key: subject}
    bench-tiny:
      limits:
        - {name: tiny, rate: 3, per: 1m, key: subject}
`

// rateLimitRoutes are the routes of rateLimitConfig, appended to the
// main configuration's routes.
const rateLimitRoutes = `  - name: jwt-limited
    match: {path_prefix: /limited}
    authenticate: {methods: [jwt]}
    rate_limit: bench-high
    upstream: {targets: ["{{upstream}}"]}
  - name: jwt-tiny
    match: {path_prefix: /tiny}
    authenticate: {methods: [jwt]}
    rate_limit: bench-tiny
    upstream: {targets: ["{{upstream}}"]}
`

// redisVariantSettings is the gatehouse-redis variant's redis block; the
// key prefix is the run's own, so runs never share counts.
const redisVariantSettings = "redis:\n  addresses: [\"{{redis_addr}}\"]\n  key_prefix: \"{{redis_prefix}}\"\n"

func (b *bed) rateLimitScenarios(warmRS256 func(int) (credentials, error)) []*scenario {
	return []*scenario{
		{Name: "jwt-ratelimit-local", Kind: kindWarm, server: "gatehouse", path: "/limited/x", header: "Authorization",
			credential: warmRS256, reportOnly: true, check: b.checkRateLimit,
			Description: "jwt-rs256-warm on a route with a rate limit counted in memory (GCRA, key: subject), high enough never to refuse: the decision and the RateLimit headers."},
		{Name: "jwt-ratelimit-redis", Kind: kindWarm, server: "gatehouse-redis", path: "/limited/x", header: "Authorization",
			credential: warmRS256, reportOnly: true, check: b.checkRateLimit, needs: b.redisReachable,
			Description: "jwt-ratelimit-local with the limit counted in Redis (one script call per request on loopback, shared by replicas); skipped when Redis is unreachable."},
	}
}

// redisAddr is the Redis the redis scenario uses.
func redisAddr() string {
	if a := os.Getenv("GATEHOUSE_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return defaultRedisAddr
}

// redisReachable says why the redis scenario cannot run, if it cannot,
// and picks the run's key prefix.
func (b *bed) redisReachable(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), DialTimeout: 2 * time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("Redis at %s unreachable (set GATEHOUSE_TEST_REDIS_ADDR): %w", redisAddr(), err)
	}
	if b.redisPrefix == "" {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		b.redisPrefix = "gatehouse-bench:" + hex.EncodeToString(r[:]) + ":"
	}
	return nil
}

// checkRateLimit proves the limit is applied: the measured route answers
// with the RateLimit headers of its policy, and on the tiny policy's
// route of the same Gatehouse a fresh caller's request past the limit is
// refused with 429 and Retry-After. In Redis, the counts must be there.
func (b *bed) checkRateLimit(ctx context.Context, s *scenario) error {
	toks, err := b.mint("rs256", 1)
	if err != nil {
		return err
	}
	h := http.Header{"Authorization": {"Bearer " + toks[0]}}
	res, err := get(ctx, b.url(s), h)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("RateLimit-Policy"), `"high"`) || res.Header.Get("RateLimit") == "" {
		return fmt.Errorf("measured route: status %d, RateLimit-Policy %q, RateLimit %q; want 200 and the headers of policy bench-high",
			res.StatusCode, res.Header.Get("RateLimit-Policy"), res.Header.Get("RateLimit"))
	}
	tiny := "http://" + b.server(s).Addr + "/tiny/x"
	for i := 1; i <= tinyLimit+1; i++ {
		res, err := get(ctx, tiny, h)
		if err != nil {
			return err
		}
		switch {
		case i <= tinyLimit && res.StatusCode != http.StatusOK:
			return fmt.Errorf("tiny limit of %d: request %d answered %d, want 200", tinyLimit, i, res.StatusCode)
		case i > tinyLimit && (res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == ""):
			return fmt.Errorf("tiny limit of %d: request %d answered %d (Retry-After %q), want 429 with Retry-After",
				tinyLimit, i, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	if s.server != "gatehouse-redis" {
		return nil
	}
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), MaxRetries: -1})
	defer c.Close()
	keys, _, err := c.Scan(ctx, 0, b.redisPrefix+"rl:*", 100).Result()
	if err != nil {
		return fmt.Errorf("reading the counts in Redis: %w", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("no rate-limit key under %s in Redis: the limits were not counted there", b.redisPrefix)
	}
	return nil
}

// get sends one request and returns the answer, body read and closed.
func get(ctx context.Context, url string, h http.Header) (*http.Response, error) {
	c := newClient(1)
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	return res, nil
}
