package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// countingUpstream is a real backend that counts the TCP connections the
// gateway opens to it.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

// resourceKinds counts the registry's open resources by kind.
func resourceKinds(g *Gateway) map[string]int {
	out := map[string]int{}
	for _, k := range g.Resources().Keys() {
		out[pipeline.ResourceKind(k)]++
	}
	return out
}

// stormConfig is the storm's configuration: a public, a JWT and an
// API-key route on one upstream, plus a route that differs between
// variants (a harmless change: no shared resource depends on it).
func stormConfig(variant int, upstream, jwks, store string) string {
	return header + adminTokenYAML() + fmt.Sprintf(`audit: {disabled: true}
access_log: {disabled: true}
identity_providers:
  - name: idp
    issuer: %q
    jwks_uri: %q
    insecure_allow_http: true
    audiences: [reload-api]
api_keys:
  store: {type: embedded, path: %q}
routes:
  - name: open
    public: true
    match: {path_prefix: /open}
    upstream: {targets: [%q]}
  - name: jwt
    match: {path_prefix: /jwt}
    authenticate: {methods: [jwt]}
    upstream: {targets: [%q]}
  - name: keys
    match: {path_prefix: /keys}
    authenticate: {methods: [api_key]}
    upstream: {targets: [%q]}
  - name: variant-%d
    public: true
    match: {path_prefix: /variant-%d}
    upstream: {targets: [%q]}
`, reloadIssuer, jwks, store, upstream, upstream, upstream, variant, variant, upstream)
}

// TestReloadStormUnderLoad: 100 reloads while clients keep calling a
// public, a JWT and an API-key route. Shared resources make a reload
// invisible to traffic: no request fails, no token or key is verified
// again (zero cache misses caused by reloads), the upstream connection
// pool is kept (no new upstream connections), and the process's file
// descriptors stay flat.
func TestReloadStormUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("reload storm: a few seconds of load")
	}
	up, upConns := countingUpstream(t)
	key := newSigningKey(t, "storm")
	js := newJWKSServer(t, key)
	store := filepath.Join(t.TempDir(), "keys.db")
	tg := startGateway(t, stormConfig(0, up.URL, js.URL, store)).serve()
	tg.waitReady(t)
	apiKey, _, _ := issueKey(t, tg, "storm", nil)
	token := key.token(t, "alice")

	type target struct {
		path, header, value string
	}
	targets := []target{
		{"/open/x", "", ""},
		{"/jwt/x", "Authorization", "Bearer " + token},
		{"/keys/x", "X-API-Key", apiKey},
	}
	const clientsPerRoute = 3
	var (
		stop              atomic.Bool
		ok, failed        atomic.Int64
		firstFailure      atomic.Pointer[string]
		wg                sync.WaitGroup
		warm              = make(chan struct{})
		warmOnce          sync.Once
		clientTransports  []*http.Transport
		clientTransportMu sync.Mutex
	)
	for _, tc := range targets {
		for range clientsPerRoute {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			clientTransportMu.Lock()
			clientTransports = append(clientTransports, tr)
			clientTransportMu.Unlock()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			wg.Go(func() {
				for !stop.Load() {
					req, _ := http.NewRequest("GET", tg.url+tc.path, nil)
					if tc.header != "" {
						req.Header.Set(tc.header, tc.value)
					}
					res, err := client.Do(req)
					var why string
					if err != nil {
						why = err.Error()
					} else {
						body, _ := io.ReadAll(res.Body)
						_ = res.Body.Close()
						if res.StatusCode != 200 {
							why = fmt.Sprintf("%s: %d %s", tc.path, res.StatusCode, body)
						}
					}
					if why != "" {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, &why)
						continue
					}
					if ok.Add(1) == 300 {
						warmOnce.Do(func() { close(warm) })
					}
				}
			})
		}
	}
	t.Cleanup(func() {
		for _, tr := range clientTransports {
			tr.CloseIdleConnections()
		}
	})
	finish := func() {
		stop.Store(true)
		wg.Wait()
	}
	select {
	case <-warm:
	case <-time.After(20 * time.Second):
		finish()
		t.Fatalf("no warm traffic: %d ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstFailure.Load())
	}
	// Warm: every client has its connections, the pool its upstream
	// connections, the caches the token and the key.
	time.Sleep(200 * time.Millisecond)
	before := tg.scrape(t)
	jwtMisses, _ := before.value("gatehouse_jwt_cache_lookups_total", labels{"result": "miss"})
	keyMisses, _ := before.value("gatehouse_apikey_cache_lookups_total", labels{"result": "miss"})
	fdsBefore, connsBefore, okBefore := openFDs(t), upConns.Load(), ok.Load()
	goroutinesBefore := runtime.NumGoroutine()

	// Sample the descriptors while reloading: the peak is what a storm
	// costs (retired plans keep theirs until RetireDelay has passed).
	peak := atomic.Int64{}
	peak.Store(int64(fdsBefore))
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := int64(openFDs(t)); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	start := time.Now()
	for i := 1; i <= 100; i++ {
		tg.writeConfig(stormConfig(i%2, up.URL, js.URL, store))
		if err := tg.Reload(); err != nil {
			close(sampling)
			finish()
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond) // traffic on the last plan
	close(sampling)
	<-sampled
	finish()
	after := tg.scrape(t)

	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the storm; first: %s", failed.Load(), ok.Load()+failed.Load(), *firstFailure.Load())
	}
	if ok.Load()-okBefore < 100 {
		t.Fatalf("only %d requests during the storm: not under load", ok.Load()-okBefore)
	}
	if got, _ := after.value("gatehouse_jwt_cache_lookups_total", labels{"result": "miss"}); got != jwtMisses {
		t.Errorf("JWT cache misses went from %v to %v during the storm: a reload dropped the token cache", jwtMisses, got)
	}
	if got, _ := after.value("gatehouse_apikey_cache_lookups_total", labels{"result": "miss"}); got != keyMisses {
		t.Errorf("API-key cache misses went from %v to %v during the storm: a reload dropped the key cache", keyMisses, got)
	}
	// One connection per concurrent request at most is in the pool; a
	// reload must not add any (before, each reload dialled anew).
	if grew := upConns.Load() - connsBefore; grew > clientsPerRoute*int64(len(targets)) {
		t.Errorf("the gateway opened %d new upstream connections during 100 reloads: the pool did not survive", grew)
	}
	// Slack: the JWKS refetch of each reload may open a connection of the
	// key set's HTTP client while the previous one is being closed, and
	// the runtime may briefly hold an epoll or pipe descriptor; a pool
	// rebuilt per reload costs hundreds.
	const fdSlack = 16
	if p := int(peak.Load()); p > fdsBefore+fdSlack {
		t.Errorf("open descriptors peaked at %d during the storm, %d before (slack %d)", p, fdsBefore, fdSlack)
	}
	t.Logf("100 reloads in %v under load: %d requests, 0 failed; fds %d before, peak %d; upstream connections +%d; jwt misses %v, key misses %v",
		took.Round(time.Millisecond), ok.Load()-okBefore, fdsBefore, peak.Load(), upConns.Load()-connsBefore, jwtMisses, keyMisses)

	// Retired plans let go: one of each shared resource stays open, held
	// by the plan serving now, and no goroutine is left behind.
	waitFor(t, "retired plans to close", 10*time.Second, func() bool {
		k := resourceKinds(tg.Gateway)
		return len(tg.Resources().Keys()) == 6 && k["keyset"] == 1 && k["jwt.token_cache"] == 1 &&
			k["upstream.transport"] == 1 && k["apikeys.runtime"] == 1 && k["apikeys.store"] == 1 &&
			k["dpop.replay_cache"] == 1
	})
	final := tg.scrape(t)
	for _, kind := range []string{"keyset", "jwt.token_cache", "upstream.transport", "apikeys.runtime", "apikeys.store", "dpop.replay_cache"} {
		final.want(t, "gatehouse_shared_resources", labels{"kind": kind}, 1)
	}
	waitFor(t, "goroutines of retired plans to end", 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= goroutinesBefore+2
	})
	if n := openFDs(t); n > fdsBefore+fdSlack {
		t.Errorf("%d descriptors open after the storm, %d before", n, fdsBefore)
	}
}

// TestReloadAddsFirstAPIKeyRouteAndSwitchesStore: api_key needs no
// restart any more. A reload adds the first api_key route (the store opens
// then, and the admin key API starts working), another switches to
// another embedded store file and straight back (the file still held by
// the retiring plan is shared, not opened twice: bbolt's lock would
// refuse), and one that removes the last api_key route closes the store
// once the old plan retires.
func TestReloadAddsFirstAPIKeyRouteAndSwitchesStore(t *testing.T) {
	up := newUpstream(t, "orders")
	dir := t.TempDir()
	storeA, storeB := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	public := header + adminTokenYAML() + "audit: {output: stderr}\nroutes:\n" + routeYAML("open", "{path_prefix: /open}", fmt.Sprintf("{targets: [%q]}", up.URL))
	withKeys := func(store string) string {
		return header + adminTokenYAML() + fmt.Sprintf("audit: {output: stderr}\napi_keys:\n  store: {type: embedded, path: %q}\nroutes:\n", store) +
			routeYAML("open", "{path_prefix: /open}", fmt.Sprintf("{targets: [%q]}", up.URL)) +
			fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", up.URL)
	}
	tg := startGateway(t, public).serve()
	reload := func(text string) {
		t.Helper()
		tg.writeConfig(text)
		if err := tg.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	adminStatus := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", tg.adminURL+"/v1/consumers", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		res, _ := do(t, req)
		return res.StatusCode
	}
	call := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		req.Header.Set("X-API-Key", key)
		res, _ := do(t, req)
		return res.StatusCode
	}
	if tg.APIKeys() != nil || adminStatus() != 503 {
		t.Fatal("without an api_key route, no store should be open and the key API should answer 503")
	}

	reload(withKeys(storeA))
	if tg.APIKeys() == nil {
		t.Fatal("the reload that added the first api_key route opened no store")
	}
	if got := adminStatus(); got != 200 {
		t.Fatalf("key API after the first api_key route: %d", got)
	}
	keyA, _, _ := issueKey(t, tg, "acme", nil)
	if got := call(keyA); got != 200 {
		t.Fatalf("key of store A: %d", got)
	}
	runtimeA := tg.APIKeys()
	reload(withKeys(storeA)) // unchanged settings: the same runtime, warm
	if tg.APIKeys() != runtimeA {
		t.Fatal("a reload with unchanged api_keys settings opened another runtime")
	}

	reload(withKeys(storeB))
	if got := call(keyA); got != 401 {
		t.Fatalf("key of store A after switching to B: %d, want 401", got)
	}
	keyB, _, _ := issueKey(t, tg, "acme", nil)
	if got := call(keyB); got != 200 {
		t.Fatalf("key of store B: %d", got)
	}
	// Straight back to A while the retiring plan still holds it.
	reload(withKeys(storeA))
	if got := call(keyA); got != 200 {
		t.Fatalf("key of store A after switching back: %d", got)
	}
	if got := call(keyB); got != 401 {
		t.Fatalf("key of store B after switching back to A: %d, want 401", got)
	}

	reload(public)
	if tg.APIKeys() != nil || adminStatus() != 503 {
		t.Fatal("after the last api_key route went, the key API should answer 503 again")
	}
	// Once the old plans retire, both files are closed: a second gateway
	// (or gatehouse explain) could open them now.
	waitFor(t, "the stores to close", 10*time.Second, func() bool {
		return !slices.ContainsFunc(tg.Resources().Keys(), func(k string) bool { return strings.HasPrefix(k, "apikeys.") })
	})
	for _, path := range []string{storeA, storeB} {
		ks, err := openStoreFile(path)
		if err != nil {
			t.Fatalf("%s still locked after its plans retired: %v", filepath.Base(path), err)
		}
		_ = ks.Close()
	}
}

// openStoreFile opens an embedded key store file read-only, failing fast
// when a writer holds its lock.
func openStoreFile(path string) (interface{ Close() error }, error) {
	return boltstore.Open(path, boltstore.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
}
