package gateway

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// outageConfig is a gateway on a PostgreSQL key store reached through
// viaProxy, with short deadlines so the test is quick. extra is appended to
// the routes (a reload changes it).
func outageConfig(dsn, schema, upstream, extra string) string {
	return header + "audit: {output: stderr}\napi_keys:\n" +
		fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s, connect_timeout: 300ms, acquire_timeout: 200ms, statement_timeout: 300ms}\n", dsn+"&pool_max_conns=4", schema) +
		"  lookup_timeout: 300ms\n  max_concurrent_lookups: 8\n  cache_ttl: 1m\n" +
		"routes:\n" + fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", upstream) + extra
}

// TestAPIKeyStoreBlackholed: with PostgreSQL partitioned (a proxy that
// accepts connections and then forwards nothing), requests with uncached
// keys get 503 problem+json within the lookup bound, a burst of hundreds
// of them leaves goroutines and sockets where they were, the warning is
// logged a bounded number of times, keys cached before the outage keep
// working, also across a reload, and revocation still evicts them.
func TestAPIKeyStoreBlackholed(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	up := newUpstream(t, "orders")
	tg := startGateway(t, outageConfig(viaProxy, schema, up.URL, "")).serve()
	good, goodKey, _ := issueKey(t, tg, "acme", nil)
	other, otherKey, _ := issueKey(t, tg, "globex", nil)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	call := func(key string) (int, string, time.Duration) {
		r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		r.Header.Set("X-API-Key", key)
		start := time.Now()
		res, err := client.Do(r)
		if err != nil {
			t.Errorf("request: %v", err)
			return 0, "", 0
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, res.Header.Get("Content-Type"))
		return res.StatusCode, b.String(), time.Since(start)
	}
	// The creations' notifications drop the new keys from the cache when
	// they arrive; let them arrive before caching the keys.
	time.Sleep(500 * time.Millisecond)
	for _, k := range []string{good, other} {
		if code, _, _ := call(k); code != 200 {
			t.Fatalf("before the outage: %d", code)
		}
	}

	proxy.Blackhole()
	runtime.GC()
	baseline := runtime.NumGoroutine()
	const lookupBound = 300 * time.Millisecond
	for round := range 2 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		var slowest time.Duration
		keys := make(chan string, 300)
		for i := range 300 {
			if i%10 == 0 {
				keys <- "gate_live_" // malformed: 401 without the store, never 503
				continue
			}
			k, _ := tg.APIKeys().Format.Generate() // well formed, unknown, not cached
			if i%3 == 0 {
				k = "shared" // one key asked by many: one lookup
			}
			keys <- k
		}
		close(keys)
		shared, _ := tg.APIKeys().Format.Generate()
		for range 50 {
			wg.Go(func() {
				for k := range keys {
					if k == "shared" {
						k = shared
					}
					code, ctype, took := call(k)
					mu.Lock()
					codes[code]++
					slowest = max(slowest, took)
					mu.Unlock()
					if code == 503 && ctype != "application/problem+json" {
						t.Errorf("503 with Content-Type %q", ctype)
					}
				}
			})
		}
		wg.Wait()
		if codes[503]+codes[401] != 300 || codes[401] != 30 {
			t.Fatalf("round %d: statuses %v, want 270×503 and 30×401", round, codes)
		}
		// The bound: one lookup deadline, plus scheduling on a busy machine.
		if slowest > lookupBound+2*time.Second {
			t.Fatalf("round %d: slowest request took %s; the lookup deadline is %s", round, slowest, lookupBound)
		}
		client.CloseIdleConnections()
		var n int
		waitFor(t, "goroutines to settle", 10*time.Second, func() bool {
			n = runtime.NumGoroutine()
			return n <= baseline+40
		})
		// The pool's connections (and pgx's cancel connections for
		// queries it gave up on) and the listener: bounded by the pool
		// size, not by the hundreds of requests.
		if open := proxy.Open(); open > 2*4+2 {
			t.Fatalf("round %d: %d connections to the database open after the burst", round, open)
		}
		t.Logf("round %d: %v, slowest %s, goroutines %d (baseline %d), database connections %d", round, codes, slowest, n, baseline, proxy.Open())
	}

	// Cached keys keep working through the outage.
	if code, _, _ := call(good); code != 200 {
		t.Fatalf("cached key during the outage: %d", code)
	}
	// The warning was not logged per request.
	if n := strings.Count(tg.opLog.String(), "authentication unavailable"); n < 1 || n > 3 {
		t.Fatalf("%d 'authentication unavailable' log lines for 540 failed requests; want 1 to 3", n)
	}

	// A reload during the outage keeps the cache: still 200, not 503.
	tg.writeConfig(outageConfig(viaProxy, schema, up.URL, fmt.Sprintf("  - name: extra\n    match: {path_prefix: /extra}\n    public: true\n    upstream: {targets: [%q]}\n", up.URL)))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{good, other} {
		if code, _, _ := call(k); code != 200 {
			t.Fatalf("cached key after a reload during the outage: %d", code)
		}
	}
	// Revocation still evicts a cached key (the admin API calls
	// Invalidate; NOTIFY from other replicas does the same).
	tg.APIKeys().Invalidate(otherKey.ID)
	if code, _, _ := call(other); code != 503 {
		t.Fatalf("evicted key during the outage: %d, want 503 (it must be looked up again)", code)
	}

	proxy.Heal()
	now := time.Now().UTC()
	goodKey.Status, goodKey.RevokedAt = apikey.StatusRevoked, &now
	waitFor(t, "the store to answer again", 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return tg.APIKeys().Store.UpdateKey(ctx, goodKey) == nil
	})
	tg.APIKeys().Invalidate(goodKey.ID)
	if code, _, _ := call(good); code != 401 {
		t.Fatalf("revoked key after the reload: %d, want 401", code)
	}
	waitFor(t, "the other key to work again", 15*time.Second, func() bool {
		code, _, _ := call(other)
		return code == 200
	})
}
