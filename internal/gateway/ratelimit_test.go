package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// keyCall sends GET url with an API key (none if empty) from the client
// address ip (through the trusted loopback proxy; none if empty).
func keyCall(t *testing.T, url, key, ip string) (*http.Response, []byte) {
	t.Helper()
	r, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	if ip != "" {
		r.Header.Set("X-Forwarded-For", ip)
	}
	return do(t, r)
}

// TestRateLimitsThroughGateway: per-consumer buckets, tiers picked by the
// key's tier, exemptions by consumer and address, several limits all or
// nothing, the 429 answer and the RateLimit headers, switchable.
func TestRateLimitsThroughGateway(t *testing.T) {
	up := newUpstream(t, "orders")
	store := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
	cfg := header + "forwarding: {trusted_proxies: [127.0.0.1]}\naudit: {output: stderr}\napi_keys:\n" + store + `
rate_limits:
  policies:
    std:
      exempt: {consumers: [vip-co], ips: [10.9.0.0/16]}
      tiers:
        - when: {claim: rate_limit_tier, equals: gold}
          limits: [{name: burst, rate: 4, per: 1h}]
      limits: [{name: burst, rate: 2, per: 1h, key: consumer}]
    quiet:
      headers: false
      limits: [{name: burst, rate: 1, per: 1h}]
    anon:
      limits: [{name: per-ip, rate: 1, per: 1h, key: ip}]
    multi:
      limits:
        - {name: per-ip, rate: 2, per: 1h, key: ip}
        - {name: per-consumer, rate: 3, per: 1h, key: consumer}
routes:
` + fmt.Sprintf(`  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    rate_limit: std
    upstream: {targets: [%[1]q]}
  - name: quiet
    match: {path_prefix: /quiet}
    authenticate: {methods: [api_key]}
    rate_limit: quiet
    upstream: {targets: [%[1]q]}
  - name: open
    match: {path_prefix: /open}
    public: true
    rate_limit: anon
    upstream: {targets: [%[1]q]}
  - name: multi
    match: {path_prefix: /multi}
    authenticate: {methods: [api_key]}
    rate_limit: multi
    upstream: {targets: [%[1]q]}
`, up.URL)
	tg := startGateway(t, cfg).serve()
	keyA, _, _ := issueKey(t, tg, "a-co", nil)
	keyB, _, _ := issueKey(t, tg, "b-co", nil)
	gold, _, _ := issueKey(t, tg, "gold-co", func(k *apikey.Key) { k.Tier = "gold" })
	vip, _, _ := issueKey(t, tg, "vip-co", nil)
	keyM, _, _ := issueKey(t, tg, "m-co", nil)

	statuses := func(path, key, ip string, n int) string {
		t.Helper()
		var out []string
		for range n {
			res, _ := keyCall(t, tg.url+path, key, ip)
			out = append(out, strconv.Itoa(res.StatusCode))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name, path, key, ip, want string
	}{
		{"consumer a: its own bucket", "/orders/1", keyA, "", "200,200,429,429"},
		{"consumer b: its own bucket", "/orders/1", keyB, "", "200,200,429"},
		{"gold tier", "/orders/1", gold, "", "200,200,200,200,429"},
		{"exempt consumer", "/orders/1", vip, "", "200,200,200,200,200"},
		{"exempt address (a is over its limit elsewhere)", "/orders/1", keyA, "10.9.3.4", "200,200,200"},
		{"all or nothing: the ip limit refuses the third", "/multi/1", keyM, "192.0.2.1", "200,200,429,429"},
		// Had the refusals been counted by per-consumer, m-co would be
		// out already; it has exactly one left.
		{"all or nothing: per-consumer counted only the admitted", "/multi/1", keyM, "192.0.2.2", "200,429"},
		{"public route, per address", "/open/1", "", "192.0.2.50", "200,429"},
		{"public route, another address", "/open/1", "", "192.0.2.51", "200,429"},
	} {
		if got := statuses(tc.path, tc.key, tc.ip, strings.Count(tc.want, ",")+1); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}

	// Headers on an admitted answer, and the 429.
	keyC, _, _ := issueKey(t, tg, "c-co", nil)
	res, _ := keyCall(t, tg.url+"/orders/1", keyC, "")
	if res.StatusCode != 200 || res.Header.Get("RateLimit-Policy") != `"burst";q=2;w=3600` ||
		!strings.HasPrefix(res.Header.Get("RateLimit"), `"burst";r=1;t=`) {
		t.Errorf("admitted: %d RateLimit-Policy %q RateLimit %q", res.StatusCode, res.Header.Get("RateLimit-Policy"), res.Header.Get("RateLimit"))
	}
	keyCall(t, tg.url+"/orders/1", keyC, "")
	res, body := keyCall(t, tg.url+"/orders/1", keyC, "")
	problemBody(t, res, body, 429, "too-many-requests")
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 1800 {
		t.Errorf("Retry-After %q: want 1..1800 seconds (one of 2 per hour)", res.Header.Get("Retry-After"))
	}
	if !strings.HasPrefix(res.Header.Get("RateLimit"), `"burst";r=0;t=`) || res.Header.Get("RateLimit-Policy") == "" {
		t.Errorf("429 RateLimit %q, RateLimit-Policy %q", res.Header.Get("RateLimit"), res.Header.Get("RateLimit-Policy"))
	}
	// An exempt caller gets no headers: no limit applies to it.
	if res, _ := keyCall(t, tg.url+"/orders/1", vip, ""); res.Header.Get("RateLimit") != "" {
		t.Errorf("exempt caller got RateLimit %q", res.Header.Get("RateLimit"))
	}
	// headers: false: limited all the same, silently.
	if got := statuses("/quiet/1", keyA, "", 2); got != "200,429" {
		t.Errorf("headers off: %s, want 200,429", got)
	}
	res, _ = keyCall(t, tg.url+"/quiet/1", keyA, "")
	if res.Header.Get("RateLimit") != "" || res.Header.Get("RateLimit-Policy") != "" || res.Header.Get("Retry-After") == "" {
		t.Errorf("headers off: RateLimit %q, RateLimit-Policy %q, Retry-After %q", res.Header.Get("RateLimit"), res.Header.Get("RateLimit-Policy"), res.Header.Get("Retry-After"))
	}
	// An unauthenticated request is refused by authentication, never
	// counted or admitted by a limit.
	if res, _ := keyCall(t, tg.url+"/orders/1", "", ""); res.StatusCode != 401 {
		t.Errorf("no key: %d, want 401", res.StatusCode)
	}
	s := tg.scrape(t)
	s.atLeast(t, "gatehouse_ratelimit_decisions_total", labels{"route": "orders", "policy": "std", "limit": "burst", "result": "limited"}, 4)
	s.atLeast(t, "gatehouse_ratelimit_decisions_total", labels{"route": "orders", "policy": "std", "limit": "burst", "result": "allowed"}, 8)
	s.atLeast(t, "gatehouse_ratelimit_decisions_total", labels{"route": "orders", "policy": "std", "result": "exempt"}, 8)
	s.want(t, "gatehouse_ratelimit_decisions_total", labels{"route": "multi", "limit": "per-consumer", "result": "limited"}, 1)
	s.want(t, "gatehouse_ratelimit_decisions_total", labels{"route": "multi", "limit": "per-ip", "result": "limited"}, 2)
	if _, ok := s.value("gatehouse_redis_breaker_state", nil); ok {
		t.Error("gatehouse_redis_breaker_state exported without a Redis store")
	}
}

// staticKeyStore is an api_keys block with one static key; it returns the key.
func staticKeyStore(t *testing.T) (block, plain string) {
	t.Helper()
	plain, _ = apikey.Format{}.Generate()
	hasher, _ := apikey.NewHasher(nil)
	return fmt.Sprintf("  store: {type: static}\n  static:\n    - {id: k1, consumer: partner, hash: \"sha256:%x\"}\n", hasher.Hash(plain)), plain
}

// TestRateLimitsSharedThroughRedis: two gateways sharing one Redis admit
// the shared limit between them, not each.
func TestRateLimitsSharedThroughRedis(t *testing.T) {
	rc := redistest.Config(t, redistest.Addr(t))
	up := newUpstream(t, "orders")
	store, plain := staticKeyStore(t)
	cfg := header + fmt.Sprintf("redis: {addresses: [%q], key_prefix: %q}\n", rc.Addresses[0], rc.KeyPrefix) +
		"api_keys:\n" + store + `
rate_limits:
  policies:
    std: {limits: [{name: shared, rate: 5, per: 1h, key: consumer, on_redis_error: deny}]}
routes:
` + fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    rate_limit: std\n    upstream: {targets: [%q]}\n", up.URL)
	a, b := startGateway(t, cfg).serve(), startGateway(t, cfg).serve()
	admitted := 0
	for i := range 10 {
		g := a
		if i%2 == 1 {
			g = b
		}
		res, body := keyCall(t, g.url+"/orders/1", plain, "")
		switch res.StatusCode {
		case 200:
			admitted++
		case 429:
		default:
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
	}
	if admitted != 5 {
		t.Errorf("two gateways admitted %d of a shared limit of 5", admitted)
	}
}

// TestRateLimitsRedisDown: while Redis is unreachable each limit follows
// its on_redis_error (local: the limit divided by expected_replicas;
// deny: 429), authentication is still required, and when Redis is back
// shared limits resume without a restart.
func TestRateLimitsRedisDown(t *testing.T) {
	proxy := redistest.NewProxy(t, redistest.Addr(t))
	rc := redistest.Config(t, redistest.Addr(t))
	up := newUpstream(t, "orders")
	store, plain := staticKeyStore(t)
	cfg := header + fmt.Sprintf(`redis:
  addresses: [%q]
  key_prefix: %q
  timeouts: {dial: 200ms, read: 200ms, write: 200ms, pool: 200ms}
  breaker: {failures: 2, cool_down: 200ms}
`, proxy.Addr(), rc.KeyPrefix) + "api_keys:\n" + store + `
rate_limits:
  expected_replicas: 50
  policies:
    soft: {limits: [{name: soft, rate: 100, per: 1h, on_redis_error: local}]}
    hard: {limits: [{name: hard, rate: 100, per: 1h, on_redis_error: deny}]}
routes:
` + fmt.Sprintf(`  - name: soft
    match: {path_prefix: /soft}
    authenticate: {methods: [api_key]}
    rate_limit: soft
    upstream: {targets: [%[1]q]}
  - name: hard
    match: {path_prefix: /hard}
    authenticate: {methods: [api_key]}
    rate_limit: hard
    upstream: {targets: [%[1]q]}
`, up.URL)
	tg := startGateway(t, cfg).serve()
	for _, p := range []string{"/soft/1", "/hard/1"} {
		if res, body := keyCall(t, tg.url+p, plain, ""); res.StatusCode != 200 {
			t.Fatalf("%s with Redis up: %d %s", p, res.StatusCode, body)
		}
	}

	proxy.Stop()
	var got []string
	for range 4 {
		res, _ := keyCall(t, tg.url+"/soft/1", plain, "")
		got = append(got, strconv.Itoa(res.StatusCode))
	}
	// 100/h over 50 replicas: 2 per hour in this replica.
	if strings.Join(got, ",") != "200,200,429,429" {
		t.Errorf("local fallback: %v, want 200,200,429,429", got)
	}
	for range 3 {
		res, body := keyCall(t, tg.url+"/hard/1", plain, "")
		if res.StatusCode != 429 {
			t.Fatalf("deny policy with Redis down: %d %s", res.StatusCode, body)
		}
		problemBody(t, res, body, 429, "too-many-requests")
	}
	for _, key := range []string{"", "gate_live_notakey", plain[:len(plain)-1] + "x"} {
		if res, _ := keyCall(t, tg.url+"/soft/1", key, "192.0.2.9"); res.StatusCode != 401 {
			t.Errorf("bad key %q with Redis down: %d, want 401", key, res.StatusCode)
		}
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	s := tg.scrape(t)
	s.atLeast(t, "gatehouse_ratelimit_degraded_decisions_total", nil, 7)
	s.atLeast(t, "gatehouse_redis_errors_total", nil, 1)
	s.atLeast(t, "gatehouse_redis_breaker_opens_total", nil, 1)

	waitFor(t, "shared limits to resume", 10*time.Second, func() bool {
		res, _ := keyCall(t, tg.url+"/hard/1", plain, "")
		return res.StatusCode == 200
	})
	tg.scrape(t).want(t, "gatehouse_redis_breaker_state", nil, 0)
}

// TestBruteForceLockout: failed keys from one address lock it out after
// the threshold, before any store lookup; the lockout is audited once;
// the right key is refused from that address, with the same answer; other
// addresses are unaffected.
func TestBruteForceLockout(t *testing.T) {
	up := newUpstream(t, "orders")
	store, plain := staticKeyStore(t)
	cfg := header + "forwarding: {trusted_proxies: [127.0.0.1]}\naudit: {output: stderr}\napi_keys:\n" + store + `
rate_limits:
  brute_force: {threshold: 3, window: 1m, lockout: 1m, keys: [ip, credential]}
routes:
` + fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", up.URL)
	tg := startGateway(t, cfg).serve()
	lookups := func() float64 {
		t.Helper()
		v, _ := tg.scrape(t).value("gatehouse_apikey_store_lookups_total", labels{"store": "static"})
		return v
	}
	const attacker, other = "203.0.113.5", "203.0.113.6"
	for i := range 3 {
		bad, _ := apikey.Format{}.Generate()
		if res, body := keyCall(t, tg.url+"/orders/1", bad, attacker); res.StatusCode != 401 {
			t.Fatalf("bad key %d: %d %s", i, res.StatusCode, body)
		}
	}
	before := lookups()
	if before < 3 {
		t.Fatalf("store lookups %v after 3 unknown keys, want ≥ 3", before)
	}
	var bodies []string
	for _, key := range []string{"", plain, "nonsense"} {
		bad, _ := apikey.Format{}.Generate()
		for _, k := range []string{key, bad} {
			res, body := keyCall(t, tg.url+"/orders/1", k, attacker)
			if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
				t.Fatalf("locked-out address, key %.6q…: %d %s", k, res.StatusCode, body)
			}
			problemBody(t, res, body, 429, "too-many-requests")
			bodies = append(bodies, strings.ReplaceAll(string(body), res.Header.Get("X-Request-Id"), ""))
		}
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("locked-out answers differ (they must not tell a good key from a bad one):\n%s\n%s", bodies[0], b)
		}
	}
	if after := lookups(); after != before {
		t.Errorf("a locked-out address caused %v store lookups", after-before)
	}
	if res, body := keyCall(t, tg.url+"/orders/1", plain, other); res.StatusCode != 200 {
		t.Errorf("good key from another address: %d %s", res.StatusCode, body)
	}
	lockouts, lockedOut := 0, 0
	for _, ev := range tg.auditEvents(t) {
		switch {
		case ev["event"] == "authn.lockout":
			lockouts++
			if ev["reason"] != "lockout_ip" || ev["client_ip"] != attacker || ev["outcome"] != "deny" {
				t.Errorf("lockout event: %v", ev)
			}
		case ev["event"] == "authn.decision" && ev["reason"] == "locked_out":
			lockedOut++
			if ev["credential_id"] != nil || ev["subject"] != nil {
				t.Errorf("a locked-out decision names the credential: %v", ev)
			}
		}
	}
	if lockouts != 1 || lockedOut != 6 {
		t.Errorf("%d authn.lockout events (want 1), %d locked_out decisions (want 6)", lockouts, lockedOut)
	}
	s := tg.scrape(t)
	s.want(t, "gatehouse_authn_lockouts_total", labels{"route": "orders", "key": "ip"}, 1)
	s.want(t, "gatehouse_authentication_decisions_total", labels{"route": "orders", "reason": "locked_out"}, 6)
}

// TestMaxInFlight: past max_in_flight requests at a slow upstream, the
// next one gets 503 with Retry-After at once; a slot freed admits again.
func TestMaxInFlight(t *testing.T) {
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	slow := newSlowUpstream(t, arrived, release)
	cfg := header + fmt.Sprintf("routes:\n  - name: fragile\n    public: true\n    max_in_flight: 1\n    match: {path_prefix: /}\n    upstream: {targets: [%q]}\n", slow)
	tg := startGateway(t, cfg).serve()
	var wg sync.WaitGroup
	wg.Add(1)
	first := 0
	go func() {
		defer wg.Done()
		res, err := http.Get(tg.url + "/slow")
		if err == nil {
			first = res.StatusCode
			res.Body.Close()
		}
	}()
	<-arrived
	res, body := get(t, tg.url+"/fast")
	problemBody(t, res, body, 503, "concurrency-limit")
	if res.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	close(release)
	wg.Wait()
	if first != 200 {
		t.Errorf("the request in flight: %d", first)
	}
	if res, body := get(t, tg.url+"/again"); res.StatusCode != 200 {
		t.Errorf("after the slot was freed: %d %s", res.StatusCode, body)
	}
}

// newSlowUpstream answers each request once release is closed, telling
// arrived when one comes in.
func newSlowUpstream(t *testing.T, arrived chan<- struct{}, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBruteForceCredentialLockout: a key that is found but refused (here:
// used on a route it is not allowed on) locks itself out after the
// threshold, whatever the address: refused with 429 where it would pass,
// and still 401 where it fails (the same answer as any bad key, so the
// lockout never tells a found key from an unknown one). Audited once,
// naming the key; other keys from the same addresses are unaffected.
func TestBruteForceCredentialLockout(t *testing.T) {
	up := newUpstream(t, "orders")
	store := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
	cfg := header + "forwarding: {trusted_proxies: [127.0.0.1]}\naudit: {output: stderr}\napi_keys:\n" + store + `
rate_limits:
  brute_force: {threshold: 2, window: 1m, lockout: 1m, keys: [credential]}
routes:
` + fmt.Sprintf(`  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    upstream: {targets: [%[1]q]}
  - name: billing
    match: {path_prefix: /billing}
    authenticate: {methods: [api_key]}
    upstream: {targets: [%[1]q]}
`, up.URL)
	tg := startGateway(t, cfg).serve()
	billingOnly, bk, _ := issueKey(t, tg, "billing-co", func(k *apikey.Key) { k.Routes = []string{"billing"} })
	good, _, _ := issueKey(t, tg, "ok-co", nil)
	call := func(path, key, ip string) string {
		res, _ := keyCall(t, tg.url+path, key, ip)
		return strconv.Itoa(res.StatusCode)
	}
	if got := call("/billing/1", billingOnly, "192.0.2.1"); got != "200" {
		t.Fatalf("key on its route: %s", got)
	}
	got := []string{call("/orders/1", billingOnly, "192.0.2.1"), call("/orders/1", billingOnly, "192.0.2.2"),
		call("/orders/1", billingOnly, "192.0.2.3"), call("/billing/1", billingOnly, "192.0.2.4")}
	if strings.Join(got, ",") != "401,401,401,429" {
		t.Errorf("key on a forbidden route twice, again, then on its route: %v, want 401,401,401,429", got)
	}
	// Counting by credential only: the addresses are not locked out.
	if got := call("/orders/1", good, "192.0.2.1"); got != "200" {
		t.Errorf("another key from the same address: %s", got)
	}
	n := 0
	for _, ev := range tg.auditEvents(t) {
		if ev["event"] == "authn.lockout" {
			n++
			if ev["reason"] != "lockout_credential" || ev["credential_id"] != bk.ID {
				t.Errorf("lockout event: %v", ev)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d authn.lockout events, want 1", n)
	}
	tg.scrape(t).want(t, "gatehouse_authn_lockouts_total", labels{"route": "orders", "key": "credential"}, 1)
}
