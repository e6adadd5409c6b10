package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// testDecision is a decision API on the default path, callers on
// 127.0.0.1.
func testDecision(t testing.TB) *decisionAPI {
	t.Helper()
	return &decisionAPI{path: "/.gatehouse/decide"}
}

// checkRequest is a decision API request as a caller sends it.
func checkRequest(target string, h map[string][]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = "127.0.0.1:5000"
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

func TestDecisionOriginal(t *testing.T) {
	d := testDecision(t)
	fwd := func(method, uri, host, proto string) map[string][]string {
		return map[string][]string{"X-Forwarded-Method": {method}, "X-Forwarded-Uri": {uri},
			"X-Forwarded-Host": {host}, "X-Forwarded-Proto": {proto}}
	}
	for _, tc := range []struct {
		name                      string
		req                       *http.Request
		err                       error
		dialect                   dialect
		method, path, query, host string
		rawPath                   string
	}{
		{name: "traefik", req: checkRequest("/.gatehouse/decide", fwd("DELETE", "/orders/1?a=b&c", "api.example.com", "https")),
			dialect: dialectForwarded, method: "DELETE", path: "/orders/1", query: "a=b&c", host: "api.example.com"},
		{name: "encoded path kept as sent", req: checkRequest("/.gatehouse/decide", fwd("GET", "/a%2Fb/c%20d", "h", "http")),
			dialect: dialectForwarded, method: "GET", path: "/a/b/c d", rawPath: "/a%2Fb/c%20d", host: "h"},
		{name: "nginx", req: checkRequest("/.gatehouse/decide", map[string][]string{"X-Original-Method": {"POST"},
			"X-Original-Uri": {"/x"}, "X-Forwarded-Host": {"h:8443"}, "X-Forwarded-Proto": {"HTTPS"}}),
			dialect: dialectNginx, method: "POST", path: "/x", host: "h:8443"},
		{name: "envoy", req: func() *http.Request {
			r := checkRequest("/.gatehouse/decide/orders/%2e%2e/x?q=1", map[string][]string{"X-Forwarded-Proto": {"https"}})
			r.Method, r.Host = "PATCH", "api.example.com"
			return r
		}(), dialect: dialectEnvoy, method: "PATCH", path: "/orders/../x", rawPath: "/orders/%2e%2e/x", query: "q=1", host: "api.example.com"},
		{name: "envoy root", req: checkRequest("/.gatehouse/decide/", map[string][]string{"X-Forwarded-Proto": {"http"}}),
			dialect: dialectEnvoy, method: "GET", path: "/", host: "example.com"},
		{name: "absolute URL", req: checkRequest("/.gatehouse/decide", fwd("GET", "https://evil/x", "h", "http")), err: errDecisionURI},
		{name: "authority form", req: checkRequest("/.gatehouse/decide", fwd("GET", "evil:443", "h", "http")), err: errDecisionURI},
		{name: "CR", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x\r\nX: y", "h", "http")), err: errDecisionURI},
		{name: "NUL", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x\x00", "h", "http")), err: errDecisionURI},
		{name: "DEL", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x\x7f", "h", "http")), err: errDecisionURI},
		{name: "bad escape", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x%zz", "h", "http")), err: errDecisionURI},
		{name: "empty method", req: checkRequest("/.gatehouse/decide", fwd("", "/x", "h", "http")), err: errDecisionMissing},
		{name: "method with a slash", req: checkRequest("/.gatehouse/decide", fwd("GET/", "/x", "h", "http")), err: errDecisionMethod},
		{name: "long method", req: checkRequest("/.gatehouse/decide", fwd(strings.Repeat("A", 33), "/x", "h", "http")), err: errDecisionMethod},
		{name: "proto", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x", "h", "ws")), err: errDecisionProto},
		{name: "proto list", req: checkRequest("/.gatehouse/decide", fwd("GET", "/x", "h", "https, http")), err: errDecisionProto},
		{name: "nothing", req: checkRequest("/.gatehouse/decide", nil), err: errDecisionMissing},
		{name: "mixed", req: checkRequest("/.gatehouse/decide", map[string][]string{"X-Forwarded-Uri": {"/a"}, "X-Original-Method": {"GET"}}), err: errDecisionMixed},
		{name: "envoy without proto", req: checkRequest("/.gatehouse/decide/x", nil), err: errDecisionMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, dl, err := d.original(tc.req)
			if tc.err != nil || err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if dl != tc.dialect || r.Method != tc.method || r.URL.Path != tc.path || r.URL.RawQuery != tc.query ||
				r.Host != tc.host || r.URL.RawPath != tc.rawPath {
				t.Fatalf("got %v %s %q raw %q query %q host %q", dl, r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host)
			}
			for _, n := range []string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Original-Method", "X-Original-Uri"} {
				if _, ok := r.Header[n]; ok {
					t.Errorf("%s left on the rebuilt request", n)
				}
			}
			if !isDecisionRequest(r) || isDecisionRequest(tc.req) {
				t.Error("only the rebuilt request is marked as a decision")
			}
			if r.Body != http.NoBody || r.ContentLength != 0 {
				t.Error("the rebuilt request has a body")
			}
		})
	}
}

// FuzzDecisionOriginal: whatever a caller sends, a rebuilt request is
// one a request line could have carried (an absolute path, a method
// token, printable ASCII), or it is refused; it never panics.
func FuzzDecisionOriginal(f *testing.F) {
	for _, s := range []string{"/orders/1?x=1", "/a/../b", "//evil", "http://x/", "*", "/%2F", "/\r\n", "", "/a#b", "/?%zz"} {
		f.Add("GET", s, "h.example", "https", false)
	}
	f.Add("PATCH", "/x", "[::1]:8080", "http", true)
	d := &decisionAPI{path: "/.gatehouse/decide"}
	f.Fuzz(func(t *testing.T, method, uri, host, proto string, nginx bool) {
		h := http.Header{}
		if nginx {
			h["X-Original-Method"], h["X-Original-Uri"] = []string{method}, []string{uri}
		} else {
			h["X-Forwarded-Method"], h["X-Forwarded-Uri"] = []string{method}, []string{uri}
		}
		h["X-Forwarded-Host"], h["X-Forwarded-Proto"] = []string{host}, []string{proto}
		cr := httptest.NewRequest(http.MethodGet, "/.gatehouse/decide", nil)
		cr.Header = h
		r, _, err := d.original(cr)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Type.Status != http.StatusBadRequest {
				t.Fatalf("refusal %v is not a 400 RequestError", err)
			}
			return
		}
		if r.Method != method || !methodToken(r.Method) || r.RequestURI != uri || r.Host != host {
			t.Fatalf("rebuilt %q %q %q from %q %q %q", r.Method, r.RequestURI, r.Host, method, uri, host)
		}
		if !strings.HasPrefix(r.URL.Path, "/") || r.URL.Scheme != "" || r.URL.Host != "" {
			t.Fatalf("rebuilt URL %#v from %q", r.URL, uri)
		}
		for i := 0; i < len(uri); i++ {
			if c := uri[i]; c <= 0x20 || c >= 0x7f {
				t.Fatalf("accepted byte %#x in %q", c, uri)
			}
		}
		if len(r.URL.Path) > len(uri) {
			t.Fatalf("path %q longer than the target %q", r.URL.Path, uri)
		}
	})
}

// TestDecisionOnlyRouteNotProxied: a decision_only route is 404 to
// ServeHTTP (before authentication: no 401 to tell it exists), and
// decided by Decide.
func TestDecisionOnlyRouteNotProxied(t *testing.T) {
	p := buildPlan(t, `
decision_api: {trusted_callers: [127.0.0.1]}
routes:
  - name: only
    match: {path_prefix: /only}
    public: true
    decision_only: true
`)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/only/1", nil)
	if p.IsDecision(r, "main") {
		t.Fatal("/only/1 taken for a decision request")
	}
	p.ServeHTTP(w, r, "main")
	if w.Code != http.StatusNotFound {
		t.Fatalf("proxy path: %d, want 404", w.Code)
	}
	w = httptest.NewRecorder()
	cr := checkRequest("http://gw.test/.gatehouse/decide", map[string][]string{"X-Forwarded-Method": {"GET"},
		"X-Forwarded-Uri": {"/only/1"}, "X-Forwarded-Host": {"gw.test"}, "X-Forwarded-Proto": {"https"}})
	if !p.IsDecision(cr, "main") {
		t.Fatal("the decision path is not taken for one")
	}
	p.Decide(w, cr, "main")
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("decision: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	for _, path := range []string{"/.gatehouse/decided", "/.gatehouse", "/x/.gatehouse/decide"} {
		if p.IsDecision(httptest.NewRequest(http.MethodGet, path, nil), "main") {
			t.Errorf("%s taken for a decision request", path)
		}
	}
}

// BenchmarkDecide is the cost of one allowed decision (API key), to
// compare with BenchmarkServeHTTP/api_key.
func BenchmarkDecide(b *testing.B) {
	keys, key := benchAPIKeys(b)
	p := buildPlanWith(b, benchLogs+`
decision_api: {trusted_callers: [192.0.2.0/24]}
routes:
  - name: r
    match: {path_prefix: /api}
    authenticate: {methods: [api_key]}
    decision_only: true
`, withKeys(Options{}, keys))
	br := newBenchRequest("http://gw.test/.gatehouse/decide", map[string]string{"X-Api-Key": key,
		"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/users/42?page=2", "X-Forwarded-Host": "gw.test",
		"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
	w := &benchResponse{header: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		p.Decide(w, br.reset(), "bench")
		if w.status != http.StatusOK {
			b.Fatal(fmt.Sprintf("status %d", w.status))
		}
	}
}
