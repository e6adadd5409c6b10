package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// adminToken is the admin token of the metrics and pprof tests, and
// adminTokenYAML configures its hash.
const adminToken = "gha_metrics-test-admin-token"

func adminTokenYAML() string {
	sum := sha256.Sum256([]byte(adminToken))
	return "  token_hash: \"sha256:" + hex.EncodeToString(sum[:]) + "\"\n"
}

// scrape is one GET /metrics, parsed.
type scrape map[string]*dto.MetricFamily

func (tg *testGateway) scrape(t *testing.T) scrape {
	t.Helper()
	res, body := get(t, tg.adminURL+"/metrics")
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics: not the Prometheus text format: %v\n%s", err, body)
	}
	return fams
}

// value is the value of the sample of family name whose labels include
// want (counters, gauges; histograms: the sample count), summed over the
// samples that match; ok is false when none does.
func (s scrape) value(name string, want map[string]string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if labels[k] != w {
				continue next
			}
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

func (s scrape) want(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := s.value(name, labels)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func (s scrape) atLeast(t *testing.T, name string, labels map[string]string, least float64) {
	t.Helper()
	got, ok := s.value(name, labels)
	if !ok || got < least {
		t.Errorf("%s%v = %v (present %v), want at least %v", name, labels, got, ok, least)
	}
}

// series lists every gatehouse_ series as name{labels}: what a flood of
// requests must not grow.
func (s scrape) series() []string {
	var out []string
	for name, f := range s {
		if !strings.HasPrefix(name, "gatehouse_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out = append(out, name+"{"+strings.Join(ls, ",")+"}")
		}
	}
	sort.Strings(out)
	return out
}

type labels = map[string]string

// TestMetricsThroughGateway drives a real gateway (public route, JWT route
// with a policy, a real OpenID Provider, unknown paths), scrapes GET
// /metrics over HTTP, parses the text format and checks the families and
// their values; then floods it with distinct paths and distinct bogus
// tokens and checks that no series was added; then reloads.
func TestMetricsThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	routes := "routes:\n" + authedRoute("api", "/api", up.URL, "") +
		"  - name: admin-only\n    match: {path_prefix: /admin}\n    authenticate: {methods: [jwt]}\n" +
		"    authorize: {roles: {any_of: [admin]}}\n    upstream: {targets: [\"" + up.URL + "\"]}\n" +
		routeYAML("open", "{path_prefix: /open}", `{targets: ["`+up.URL+`"]}`)
	cfgText := header + adminTokenYAML() + "identity_providers:\n" + providerYAML("idp", idp, "") + routes
	tg := startGateway(t, cfgText).serve()
	tg.waitReady(t)

	status := func(url, token string) int {
		t.Helper()
		res, body := bearer(t, url, token, nil)
		_ = body
		return res.StatusCode
	}
	tok := idp.Mint(t, map[string]any{"sub": "alice"})
	for _, c := range []struct {
		url, token string
		want       int
	}{
		{tg.url + "/open/a", "", 200},
		{tg.url + "/open/b", "", 200},
		{tg.url + "/open/c", "", 200},
		{tg.url + "/api/x", tok, 200},
		{tg.url + "/api/y", tok, 200}, // the same token again: a cache hit
		{tg.url + "/api/x", "", 401},
		{tg.url + "/api/x", "not-a-jwt!", 401},
		{tg.url + "/admin/x", tok, 403},
		{tg.url + "/nowhere", "", 404},
	} {
		if got := status(c.url, c.token); got != c.want {
			t.Fatalf("GET %s: %d, want %d", c.url, got, c.want)
		}
	}
	req, _ := http.NewRequest("PROPFIND", tg.url+"/open/x", nil)
	if res, _ := do(t, req); res.StatusCode != 501 {
		t.Fatalf("PROPFIND: %d, want 501", res.StatusCode)
	}
	// Refused by the listener before routing (Plan.Refuse): _unmatched too.
	req, _ = http.NewRequest("GET", tg.url+"/open/x", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 66000))
	if res, _ := do(t, req); res.StatusCode != 431 {
		t.Fatalf("oversized header: %d, want 431", res.StatusCode)
	}

	s := tg.scrape(t)
	for _, name := range []string{
		"gatehouse_requests_total", "gatehouse_request_duration_seconds", "gatehouse_gateway_duration_seconds",
		"gatehouse_upstream_duration_seconds", "gatehouse_authentication_decisions_total",
		"gatehouse_authorization_decisions_total", "gatehouse_jwt_cache_lookups_total", "gatehouse_jwks_fetches_total",
		"gatehouse_jwks_last_success_age_seconds", "gatehouse_jwks_ready", "gatehouse_jwks_keys",
		"gatehouse_config_info", "gatehouse_config_last_reload_successful", "gatehouse_config_last_reload_success_timestamp_seconds",
		"gatehouse_build_info", "go_goroutines", "go_memstats_alloc_bytes", "process_open_fds",
	} {
		if s[name] == nil {
			t.Errorf("family %s is missing", name)
		}
	}
	s.want(t, "gatehouse_requests_total", labels{"route": "open", "method": "GET", "status_class": "2xx"}, 3)
	s.want(t, "gatehouse_requests_total", labels{"route": "api", "method": "GET", "status_class": "2xx"}, 2)
	s.want(t, "gatehouse_requests_total", labels{"route": "api", "method": "GET", "status_class": "4xx"}, 2)
	s.want(t, "gatehouse_requests_total", labels{"route": "admin-only", "method": "GET", "status_class": "4xx"}, 1)
	s.want(t, "gatehouse_requests_total", labels{"route": "_unmatched", "method": "GET", "status_class": "4xx"}, 2) // 404, 431
	s.want(t, "gatehouse_requests_total", labels{"route": "_unmatched", "method": "_other", "status_class": "5xx"}, 1)
	s.want(t, "gatehouse_request_duration_seconds", labels{"route": "open", "status_class": "2xx"}, 3)
	s.want(t, "gatehouse_upstream_duration_seconds", labels{"route": "open"}, 3)
	s.want(t, "gatehouse_gateway_duration_seconds", labels{"route": "api"}, 2)
	s.want(t, "gatehouse_authentication_decisions_total", labels{"route": "api", "method": "jwt", "outcome": "allow", "reason": "ok"}, 2)
	s.want(t, "gatehouse_authentication_decisions_total", labels{"route": "api", "outcome": "deny", "reason": "credential_missing"}, 1)
	s.want(t, "gatehouse_authentication_decisions_total", labels{"route": "api", "method": "jwt", "outcome": "deny", "reason": "token_malformed"}, 1)
	s.want(t, "gatehouse_authorization_decisions_total", labels{"route": "admin-only", "outcome": "deny", "reason": "role_missing"}, 1)
	s.atLeast(t, "gatehouse_jwt_cache_lookups_total", labels{"result": "hit"}, 2) // /api/y and /admin/x
	s.atLeast(t, "gatehouse_jwt_cache_lookups_total", labels{"result": "miss"}, 1)
	s.atLeast(t, "gatehouse_jwks_fetches_total", labels{"provider": "idp", "result": "success"}, 1)
	s.want(t, "gatehouse_jwks_ready", labels{"provider": "idp"}, 1)
	if age, ok := s.value("gatehouse_jwks_last_success_age_seconds", labels{"provider": "idp"}); !ok || age < 0 || age > 60 {
		t.Errorf("key age %v (present %v)", age, ok)
	}
	data, err := os.ReadFile(tg.path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	s.want(t, "gatehouse_config_info", labels{"hash": hex.EncodeToString(sum[:])}, 1)
	s.want(t, "gatehouse_config_last_reload_successful", nil, 1)
	if _, ok := s.value("gatehouse_build_info", labels{"goversion": runtime.Version()}); !ok {
		t.Errorf("gatehouse_build_info has no goversion label")
	}

	t.Run("a flood of distinct paths and tokens adds no series", func(t *testing.T) {
		before := tg.scrape(t).series()
		for i := range 60 {
			for _, c := range []struct{ url, token string }{
				{fmt.Sprintf("%s/open/p-%d", tg.url, i), ""},
				{fmt.Sprintf("%s/nowhere-%d/x", tg.url, i), ""},
				{fmt.Sprintf("%s/api/p-%d", tg.url, i), fmt.Sprintf("bogus!%d", i)},
				{fmt.Sprintf("%s/api/q-%d", tg.url, i), ""},
				{fmt.Sprintf("%s/api/r-%d", tg.url, i), tok},
			} {
				status(c.url, c.token)
			}
		}
		after := tg.scrape(t)
		if got := after.series(); !slices.Equal(before, got) {
			t.Fatalf("series changed:\nbefore %d: %v\nafter %d: %v", len(before), before, len(got), got)
		}
		after.want(t, "gatehouse_requests_total", labels{"route": "open", "method": "GET", "status_class": "2xx"}, 63)
		after.want(t, "gatehouse_authentication_decisions_total", labels{"route": "api", "method": "jwt", "outcome": "deny", "reason": "token_malformed"}, 61)
	})

	t.Run("reload: counted, hash updated, removed route's series dropped", func(t *testing.T) {
		next := header + adminTokenYAML() + "identity_providers:\n" + providerYAML("idp", idp, "") +
			"routes:\n" + authedRoute("api", "/api", up.URL, "")
		tg.writeConfig(next)
		if err := tg.Reload(); err != nil {
			t.Fatal(err)
		}
		tg.writeConfig("routes: [this is not a route]\n")
		if err := tg.Reload(); err == nil {
			t.Fatal("a broken configuration reloaded")
		}
		s := tg.scrape(t)
		s.want(t, "gatehouse_config_reloads_total", labels{"result": "success"}, 1)
		s.want(t, "gatehouse_config_reloads_total", labels{"result": "failure"}, 1)
		s.want(t, "gatehouse_config_last_reload_successful", nil, 0)
		sum := sha256.Sum256([]byte(next))
		s.want(t, "gatehouse_config_info", labels{"hash": hex.EncodeToString(sum[:])}, 1)
		if n := len(s["gatehouse_config_info"].GetMetric()); n != 1 {
			t.Errorf("%d config_info series, want 1", n)
		}
		if _, ok := s.value("gatehouse_requests_total", labels{"route": "open"}); ok {
			t.Error("the removed route open is still exported")
		}
		// Routes that stay keep counting from where they were.
		s.atLeast(t, "gatehouse_requests_total", labels{"route": "api", "status_class": "2xx"}, 62)
		if status(tg.url+"/api/x", tok) != 200 {
			t.Fatal("api after reload")
		}
		tg.scrape(t).atLeast(t, "gatehouse_requests_total", labels{"route": "api", "status_class": "2xx"}, 63)
	})
}

// TestAdminDebugEndpoints: pprof is off by default (404) and, when on,
// answers only with the admin token; /metrics can require the token too,
// and is absent when metrics are off.
func TestAdminDebugEndpoints(t *testing.T) {
	up := newUpstream(t, "api")
	routes := "routes:\n" + routeYAML("open", "{path_prefix: /}", `{targets: ["`+up.URL+`"]}`)
	getWith := func(t *testing.T, url, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, _ := do(t, req)
		return res.StatusCode
	}
	for _, tc := range []struct {
		name, extra string
		path, token string
		want        int
	}{
		{"pprof off by default", "", "/debug/pprof/", adminToken, 404},
		{"pprof without token", "  pprof: true\n", "/debug/pprof/", "", 401},
		{"pprof with a wrong token", "  pprof: true\n", "/debug/pprof/", "gha_wrong", 401},
		{"pprof index with token", "  pprof: true\n", "/debug/pprof/", adminToken, 200},
		{"pprof heap with token", "  pprof: true\n", "/debug/pprof/heap?debug=1", adminToken, 200},
		{"pprof cmdline with token", "  pprof: true\n", "/debug/pprof/cmdline", adminToken, 200},
		{"metrics open by default", "", "/metrics", "", 200},
		{"metrics require_token without token", "metrics: {require_token: true}\n", "/metrics", "", 401},
		{"metrics require_token with token", "metrics: {require_token: true}\n", "/metrics", adminToken, 200},
		{"metrics disabled", "metrics: {enabled: false}\n", "/metrics", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// header ends inside the admin block: the token and pprof
			// lines continue it, a metrics block follows it.
			tg := startGateway(t, header+adminTokenYAML()+tc.extra+routes).serve()
			if got := getWith(t, tg.adminURL+tc.path, tc.token); got != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

// TestAPIKeyMetrics: the API-key cache and store metrics through a real
// gateway with a static key, and a flood of distinct unknown and
// malformed keys adds no series.
func TestAPIKeyMetrics(t *testing.T) {
	up := newUpstream(t, "orders")
	format := apikey.Format{}
	plain, _ := format.Generate()
	unknown, _ := format.Generate()
	hasher, _ := apikey.NewHasher(nil)
	store := fmt.Sprintf("  store: {type: static}\n  static:\n    - {id: k1, consumer: partner, hash: \"sha256:%x\"}\n", hasher.Hash(plain))
	tg := startGateway(t, apiKeyConfig(store, up.URL)).serve()
	call := func(key string) int {
		t.Helper()
		r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		r.Header.Set("X-API-Key", key)
		res, _ := do(t, r)
		return res.StatusCode
	}
	for _, c := range []struct {
		key  string
		want int
	}{{plain, 200}, {plain, 200}, {unknown, 401}, {unknown, 401}, {"not a key", 401}} {
		if got := call(c.key); got != c.want {
			t.Fatalf("key %.8s…: %d, want %d", c.key, got, c.want)
		}
	}
	s := tg.scrape(t)
	s.want(t, "gatehouse_apikey_cache_lookups_total", labels{"store": "static", "result": "hit"}, 2)
	s.want(t, "gatehouse_apikey_cache_lookups_total", labels{"store": "static", "result": "miss"}, 2)
	s.want(t, "gatehouse_apikey_store_lookups_total", labels{"store": "static", "result": "found"}, 1)
	s.want(t, "gatehouse_apikey_store_lookups_total", labels{"store": "static", "result": "not_found"}, 1)
	s.want(t, "gatehouse_apikey_store_lookup_duration_seconds", labels{"store": "static"}, 2)
	s.want(t, "gatehouse_authentication_decisions_total", labels{"route": "orders", "method": "api_key", "outcome": "allow", "reason": "ok"}, 2)

	before := s.series()
	for i := range 50 {
		k, _ := format.Generate()
		call(k)
		call(fmt.Sprintf("bogus-%d", i))
	}
	if got := tg.scrape(t).series(); !slices.Equal(before, got) {
		t.Fatalf("series changed:\nbefore %d: %v\nafter %d: %v", len(before), before, len(got), got)
	}
}
