package metrics

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}

// request is one typical authenticated, authorized, forwarded request as
// the pipeline reports it.
func request(o pipeline.RouteObserver) {
	o.Authentication(pipeline.Authentication{Method: "jwt", Outcome: "allow", Reason: "ok", Provider: "idp"})
	o.Authorization(pipeline.Authorization{Outcome: "allow", Reason: "ok"})
	o.Upstream(pipeline.UpstreamExchange{Duration: 3 * time.Millisecond})
	o.Done(pipeline.RequestDone{MethodClass: 0, Status: 200, Duration: 4 * time.Millisecond, Overhead: 50 * time.Microsecond})
}

// TestObserverDoesNotAllocate: once a route has seen a label combination,
// observing a request allocates nothing.
func TestObserverDoesNotAllocate(t *testing.T) {
	m := New(Options{})
	o := m.Route("api", methods)
	request(o) // resolves the children
	m.JWTCache(true)
	m.APIKeyCache("embedded", true)
	if n := testing.AllocsPerRun(1000, func() {
		request(o)
		m.JWTCache(true)
		m.APIKeyCache("embedded", true)
	}); n != 0 {
		t.Fatalf("%v allocations per observed request, want 0", n)
	}
}

func BenchmarkRouteObserver(b *testing.B) {
	m := New(Options{})
	o := m.Route("api", methods)
	request(o) // resolves the children
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			request(o)
		}
	})
}

// TestLabels checks the label values the observer derives: classes, the
// unmatched route, "none" for no credential method.
func TestLabels(t *testing.T) {
	m := New(Options{})
	o := m.Route("api", methods)
	for _, d := range []pipeline.RequestDone{
		{MethodClass: 0, Status: 101}, {MethodClass: 2, Status: 204}, {MethodClass: 7, Status: 302},
		{MethodClass: 99, Status: 499}, {MethodClass: 1, Status: 503}, {MethodClass: 0, Status: 0},
	} {
		o.Done(d)
	}
	o.Authentication(pipeline.Authentication{Outcome: "deny", Reason: "credential_missing"})
	o.Upstream(pipeline.UpstreamExchange{Error: pipeline.UpstreamTimeout})
	m.Route(pipeline.UnmatchedRoute, methods).Done(pipeline.RequestDone{MethodClass: 7, Status: 404})
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"api", "GET", "1xx"}, 1},
		{[]string{"api", "POST", "2xx"}, 1},
		{[]string{"api", "_other", "3xx"}, 1},
		{[]string{"api", "_other", "4xx"}, 1},
		{[]string{"api", "HEAD", "5xx"}, 1},
		{[]string{"api", "GET", "5xx"}, 1}, // a status outside 100..599
		{[]string{"_unmatched", "_other", "4xx"}, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.authn.WithLabelValues("api", "none", "deny", "credential_missing")); got != 1 {
		t.Errorf("authentication without a method: %v", got)
	}
	if got := testutil.ToFloat64(m.upstreamErrors.WithLabelValues("api", "timeout")); got != 1 {
		t.Errorf("upstream timeout: %v", got)
	}
}

// TestRetain: a route a reload removed stops being exported; one that
// stays keeps its counts, also through the observer of the new plan.
func TestRetain(t *testing.T) {
	m := New(Options{})
	a, b := m.Route("a", methods), m.Route("b", methods)
	request(a)
	request(b)
	m.Retain([]string{"a"})
	if n := testutil.CollectAndCount(m.requests); n != 1 {
		t.Fatalf("%d requests_total series after Retain, want 1 (route a)", n)
	}
	a2 := m.Route("a", methods) // the next plan's observer of route a
	request(a2)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("a", "GET", "2xx")); got != 2 {
		t.Fatalf("route a counted %v, want 2", got)
	}
	for _, v := range m.perRoute {
		if err := testutil.CollectAndCompare(v, strings.NewReader("")); err != nil && strings.Contains(err.Error(), `route="b"`) {
			t.Fatalf("route b is still exported: %v", err)
		}
	}
	// A request still in flight on the old plan's observer of b, with a
	// label combination b had not met, recreates a series; the next
	// reload's Retain drops it.
	b.Done(pipeline.RequestDone{MethodClass: 1, Status: 500})
	m.Retain([]string{"a"})
	if n := testutil.CollectAndCount(m.requests); n != 1 {
		t.Fatalf("%d requests_total series after the second Retain, want 1", n)
	}
}

// TestKeysAndStore covers the families fed outside the request observer.
func TestKeysAndStore(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m := New(Options{Now: func() time.Time { return now }, Providers: func() []keyset.Health {
		return []keyset.Health{
			{Provider: "idp", Source: "https://idp/jwks", Keys: 2, LastRefresh: now.Add(-90 * time.Second), Ready: true},
			{Provider: "local", Source: "static", Keys: 1, Ready: true},
			{Provider: "down", Source: "https://down/jwks"},
		}
	}})
	m.KeyFetch("idp", nil)
	m.KeyFetch("idp", errors.New("boom"))
	m.APIKeyStore("postgres", 2*time.Millisecond, authnapikey.StoreFound)
	m.APIKeyStore("postgres", 0, authnapikey.StoreBusy)
	m.Reloaded(nil, "abc")
	m.Reloaded(errors.New("bad"), "")
	expected := `
# HELP gatehouse_jwks_last_success_age_seconds Seconds since the last successful fetch of a provider's keys (fetched key sets only; absent until the first success).
# TYPE gatehouse_jwks_last_success_age_seconds gauge
gatehouse_jwks_last_success_age_seconds{provider="idp"} 90
# HELP gatehouse_jwks_ready 1 if a provider's keys can verify tokens (fetched and not past max_stale), 0 if not.
# TYPE gatehouse_jwks_ready gauge
gatehouse_jwks_ready{provider="down"} 0
gatehouse_jwks_ready{provider="idp"} 1
gatehouse_jwks_ready{provider="local"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(expected), keyAgeName, keyReadyName); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.keyFetches.WithLabelValues("idp", "success")), 1, "fetch success"},
		{testutil.ToFloat64(m.keyFetches.WithLabelValues("idp", "failure")), 1, "fetch failure"},
		{testutil.ToFloat64(m.storeLookups.WithLabelValues("postgres", "busy")), 1, "store busy"},
		{float64(testutil.CollectAndCount(m.storeDuration)), 1, "store duration series"},
		{testutil.ToFloat64(m.reloads.WithLabelValues("success")), 1, "reload success"},
		{testutil.ToFloat64(m.reloads.WithLabelValues("failure")), 1, "reload failure"},
		{testutil.ToFloat64(m.reloadSuccess), 0, "last reload successful"},
		{testutil.ToFloat64(m.configInfo.WithLabelValues("abc")), 1, "config info"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestEveryMetricDocumented: docs/observability.md has a table row for
// every gatehouse_ family, and names none that does not exist.
func TestEveryMetricDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	names := New(Options{}).Names()
	if len(names) < 18 {
		t.Fatalf("only %d families: %v", len(names), names)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
		if !strings.Contains(page, "| `"+n+"` |") {
			t.Errorf("docs/observability.md has no table row for %s", n)
		}
	}
	for _, m := range regexp.MustCompile("\\| `(gatehouse_[a-z_]+)` \\|").FindAllStringSubmatch(page, -1) {
		if !known[m[1]] {
			t.Errorf("docs/observability.md documents %s, which does not exist", m[1])
		}
	}
}

// TestIntrospection: a provider's introspection observer counts into its
// own series, and a cache lookup allocates nothing.
func TestIntrospection(t *testing.T) {
	m := New(Options{})
	o := m.Introspection("hydra")
	o.CacheLookup(true)
	o.CacheLookup(true)
	o.CacheLookup(false)
	o.Call(3*time.Millisecond, introspect.ResultActive)
	o.Call(time.Second, introspect.ResultError)
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.introCache.WithLabelValues("hydra", "hit")), 2, "hits"},
		{testutil.ToFloat64(m.introCache.WithLabelValues("hydra", "miss")), 1, "misses"},
		{testutil.ToFloat64(m.introCalls.WithLabelValues("hydra", "active")), 1, "active"},
		{testutil.ToFloat64(m.introCalls.WithLabelValues("hydra", "error")), 1, "errors"},
		{testutil.ToFloat64(m.introCalls.WithLabelValues("hydra", "inactive")), 0, "inactive"},
		{float64(testutil.CollectAndCount(m.introDuration)), 1, "duration series"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { o.CacheLookup(true) }); n != 0 {
		t.Errorf("a cache lookup allocates %v times", n)
	}
}
