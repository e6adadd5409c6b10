package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// startGatewayAt is startGateway with the pipeline's clock.
func startGatewayAt(t *testing.T, path string, now func() time.Time) *testGateway {
	t.Helper()
	cfg, file, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	access, stderr, oplog := &syncBuffer{}, &syncBuffer{}, &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(oplog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(cfg, file, Options{
		ConfigPath: path, Log: logger, RetireDelay: 2 * time.Second,
		Pipeline: pipeline.Options{Log: logger, Stdout: access, Stderr: stderr, Now: now},
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	tg := &testGateway{Gateway: g, t: t, path: path, accessLog: access, stderr: stderr, opLog: oplog}
	tg.url = "http://" + g.Addr("main").String()
	tg.adminURL = "http://" + g.AdminAddr().String()
	tg.Serve()
	return tg
}

func (tg *testGateway) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQuotasThroughGateway: a monthly calendar quota per consumer, in the
// embedded store and in Redis: the quota's headers, 429 quota-exceeded
// with Retry-After to the first of next month, one audit event per
// period, the admin API's usage, counts that survive a restart (same
// file, same Redis), and the reset at the period's end (injected clock).
func TestQuotasThroughGateway(t *testing.T) {
	for _, store := range []string{"embedded", "postgres", "redis"} {
		t.Run(store, func(t *testing.T) {
			testQuotas(t, store)
		})
	}
}

func testQuotas(t *testing.T, store string) {
	up := newUpstream(t, "orders")
	dir := t.TempDir()
	extra := ""
	if store == "redis" {
		rc := redistest.Config(t, redistest.Addr(t))
		extra = fmt.Sprintf("redis: {addresses: [%q], key_prefix: %q}\n", rc.Addresses[0], rc.KeyPrefix)
	}
	keyStore := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(dir, "keys.db"))
	if store == "postgres" {
		dsn := pgtest.TestDSN(t)
		keyStore = fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s}\n", dsn, pgtest.FreshSchema(t, dsn))
	}
	cfg := header + adminTokenYAML() + extra + "audit: {output: stderr}\napi_keys:\n" + keyStore + fmt.Sprintf(`
rate_limits:
  policies:
    metered:
      limits: [{name: burst, rate: 100, per: 1s}]
      quotas:
        - {name: monthly, limit: 3, period: month, key: consumer}
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    rate_limit: metered
    upstream: {targets: [%q]}
`, up.URL)
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }

	tg := startGatewayAt(t, path, now)
	key, _, consumer := issueKey(t, tg, "metered-co", nil)
	other, _, _ := issueKey(t, tg, "other-co", nil)

	for i := 1; i <= 3; i++ {
		res, body := keyCall(t, tg.url+"/orders/1", key, "")
		if res.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
		if got, want := res.Header.Get("RateLimit-Policy"), `"burst";q=100;w=1, "monthly";q=3;w=2592000`; got != want {
			t.Errorf("RateLimit-Policy %q, want %q", got, want)
		}
		// 36 hours to 2026-12-01T00:00Z.
		if got, want := res.Header.Get("RateLimit"), fmt.Sprintf(`;t=129600`); !strings.Contains(got, fmt.Sprintf(`"monthly";r=%d`, 3-i)) || !strings.HasSuffix(got, want) {
			t.Errorf("request %d: RateLimit %q", i, got)
		}
	}
	for range 2 {
		res, body := keyCall(t, tg.url+"/orders/1", key, "")
		p := problemBody(t, res, body, 429, "quota-exceeded")
		if p["title"] != "Quota exceeded" {
			t.Errorf("title %v", p["title"])
		}
		if ra := res.Header.Get("Retry-After"); ra != "129600" {
			t.Errorf("Retry-After %q, want 129600 (to the first of next month)", ra)
		}
		if rl := res.Header.Get("RateLimit"); !strings.Contains(rl, `"monthly";r=0;t=129600`) {
			t.Errorf("429 RateLimit %q", rl)
		}
	}
	// Another consumer has its own quota.
	if res, _ := keyCall(t, tg.url+"/orders/1", other, ""); res.StatusCode != 200 {
		t.Errorf("other consumer: %d", res.StatusCode)
	}
	exceeded := 0
	for _, ev := range tg.auditEvents(t) {
		if ev["event"] == "quota.exceeded" {
			exceeded++
			if ev["reason"] != "quota_exceeded" || ev["rule"] != "monthly" || ev["policy"] != "metered" || ev["subject"] != consumer.ID {
				t.Errorf("audit event %v", ev)
			}
		}
	}
	if exceeded != 1 {
		t.Errorf("%d quota.exceeded events for two refusals, want 1 per period", exceeded)
	}
	usage := func(tg *testGateway, want int) {
		t.Helper()
		res, body := adminCall(t, tg.adminURL, http.MethodGet, "/v1/consumers/metered-co/usage", nil)
		var u struct {
			Consumer string `json:"consumer"`
			Quotas   []struct {
				Name  string    `json:"name"`
				Limit int64     `json:"limit"`
				Used  int64     `json:"used"`
				Reset time.Time `json:"reset"`
			} `json:"quotas"`
		}
		if res.StatusCode != 200 || json.Unmarshal(body, &u) != nil || len(u.Quotas) != 1 {
			t.Fatalf("usage: %d %s", res.StatusCode, body)
		}
		q := u.Quotas[0]
		if u.Consumer != consumer.ID || q.Name != "monthly" || q.Limit != 3 || q.Used != int64(want) ||
			!q.Reset.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("usage %s, want used %d", body, want)
		}
	}
	usage(tg, 3)

	// Restart: the counts are where the store keeps them.
	tg.stop(t)
	tg = startGatewayAt(t, path, now)
	defer tg.stop(t)
	if res, body := keyCall(t, tg.url+"/orders/1", key, ""); res.StatusCode != 429 {
		t.Fatalf("after a restart: %d %s (the count was lost)", res.StatusCode, body)
	}
	usage(tg, 3)
	for _, ev := range tg.auditEvents(t) {
		if ev["event"] == "quota.exceeded" {
			t.Errorf("quota.exceeded again after a restart, in the same period: %v", ev)
		}
	}

	// The first of next month: a new quota.
	clock.Store(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC).UnixNano())
	res, body := keyCall(t, tg.url+"/orders/1", key, "")
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("RateLimit"), `"monthly";r=2;t=`+strconv.Itoa(31*86400-1)) {
		t.Fatalf("next month: %d %q %s", res.StatusCode, res.Header.Get("RateLimit"), body)
	}
}

// TestQuotaStoreOutage: while Redis cannot count, a quota fails closed
// (503 with Retry-After), unlike a limit with on_redis_error: local; once
// Redis is back, the counts resume where they were.
func TestQuotaStoreOutage(t *testing.T) {
	up := newUpstream(t, "orders")
	rc := redistest.Config(t, redistest.Addr(t))
	px := redistest.NewProxy(t, rc.Addresses[0])
	cfg := header + fmt.Sprintf("redis: {addresses: [%q], key_prefix: %q, timeouts: {dial: 200ms, read: 200ms, write: 200ms, pool: 200ms}}\n", px.Addr(), rc.KeyPrefix) +
		"api_keys:\n" + fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db")) + fmt.Sprintf(`
rate_limits:
  policies:
    metered:
      limits: [{name: burst, rate: 100, per: 1s, on_redis_error: local}]
      quotas: [{name: daily, limit: 2, period: day}]
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    rate_limit: metered
    upstream: {targets: [%q]}
`, up.URL)
	tg := startGateway(t, cfg).serve()
	key, _, _ := issueKey(t, tg, "acme", nil)
	if res, body := keyCall(t, tg.url+"/orders/1", key, ""); res.StatusCode != 200 {
		t.Fatalf("before the outage: %d %s", res.StatusCode, body)
	}
	px.Stop()
	res, body := keyCall(t, tg.url+"/orders/1", key, "")
	problemBody(t, res, body, 503, "service-unavailable")
	if res.Header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis is back (the client's breaker may need a moment): one more
	// request fits, then the quota is used up.
	waitFor(t, "Redis back", 10*time.Second, func() bool {
		res, _ := keyCall(t, tg.url+"/orders/1", key, "")
		return res.StatusCode == 200
	})
	res, body = keyCall(t, tg.url+"/orders/1", key, "")
	problemBody(t, res, body, 429, "quota-exceeded")
}

// TestRollingQuotaThroughGateway: a rolling daily quota slides: refused
// with the wait until the window has slid enough, admitted after it.
func TestRollingQuotaThroughGateway(t *testing.T) {
	up := newUpstream(t, "orders")
	dir := t.TempDir()
	cfg := header + "api_keys:\n" + fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(dir, "keys.db")) + fmt.Sprintf(`
rate_limits:
  policies:
    metered:
      quotas: [{name: day, limit: 2, period: day, calendar: false}]
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    rate_limit: metered
    upstream: {targets: [%q]}
`, up.URL)
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	// 18:00 UTC: three quarters into the rolling window of that day.
	start := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	tg := startGatewayAt(t, path, func() time.Time { return time.Unix(0, clock.Load()) })
	defer tg.stop(t)
	key, _, _ := issueKey(t, tg, "acme", nil)
	statuses := func() string {
		var out []string
		for range 3 {
			res, _ := keyCall(t, tg.url+"/orders/1", key, "")
			out = append(out, strconv.Itoa(res.StatusCode))
		}
		return strings.Join(out, ",")
	}
	if got := statuses(); got != "200,200,429" {
		t.Fatalf("first day: %s", got)
	}
	res, body := keyCall(t, tg.url+"/orders/1", key, "")
	problemBody(t, res, body, 429, "quota-exceeded")
	// The 2 of this window must weigh ≤ 1: half-way into the next
	// window, at 12:00 the next day (18 hours).
	if ra := res.Header.Get("Retry-After"); ra != "64800" {
		t.Errorf("Retry-After %q, want 64800", ra)
	}
	// 6 hours into the next window the previous 2 still weigh 1.5 → 1:
	// one request fits.
	clock.Store(start.Add(12 * time.Hour).UnixNano())
	if got := statuses(); got != "200,429,429" {
		t.Errorf("next morning: %s, want 200,429,429", got)
	}
	// Two windows later nothing weighs.
	clock.Store(start.Add(54 * time.Hour).UnixNano())
	if got := statuses(); got != "200,200,429" {
		t.Errorf("two days later: %s", got)
	}
}
