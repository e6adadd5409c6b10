package pipeline

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCORSPreflightRouting: a preflight is routed as the method it asks
// about, through request hygiene and the route's opt-ins.
func TestCORSPreflightRouting(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: dav
    public: true
    match: {path_prefix: /dav, methods: [PROPFIND, GET]}
    upstream: {targets: ["http://127.0.0.1:1"]}
    cors: {allowed_origins: ["https://app.example.com"], allowed_methods: [PROPFIND, GET]}
  - name: files
    public: true
    match: {path_prefix: /files}
    upstream: {targets: ["http://127.0.0.1:1"]}
    cors: {allowed_origins: ["https://app.example.com"]}
  - name: plain
    public: true
    match: {path_prefix: /plain}
    upstream: {targets: ["builtin:echo"]}
`)
	for _, tc := range []struct {
		name, path, method string
		status             int
		allowed            bool
	}{
		{"extension method listed by the route", "/dav/x", "PROPFIND", 204, true},
		{"extension method not listed anywhere: not a preflight, OPTIONS routed (match.methods lacks it)", "/dav/x", "MKCOL", 405, false},
		{"encoded slash refused as for the actual request", "/files/a%2Fb", "POST", 400, false},
		{"route without cors: OPTIONS goes upstream as before", "/plain/x", "PUT", 200, false},
		{"method the gateway refuses (fetch sends \"patch\" as is): answered, refused", "/files/x", "patch", 204, false},
		{"method another route serves: answered by this cors route, refused", "/files/x", "PROPFIND", 204, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("OPTIONS", "http://gw.test"+tc.path, nil)
			req.Header.Set("Origin", "https://app.example.com")
			req.Header.Set("Access-Control-Request-Method", tc.method)
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req, "test")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin") != ""; got != tc.allowed {
				t.Fatalf("allow origin %q, headers %v", rec.Header().Get("Access-Control-Allow-Origin"), rec.Header())
			}
		})
	}
}

// TestResponsePhaseOnGatewayErrors: the gateway's own answers on a cors
// route (413 before the upstream, 502 when it is down) carry the CORS
// headers, so a script can read them.
func TestResponsePhaseOnGatewayErrors(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: files
    public: true
    match: {path_prefix: /files}
    max_body_bytes: 10
    upstream: {targets: ["http://127.0.0.1:1"]}
    cors: {allowed_origins: ["https://*.example.com"], exposed_headers: [X-Request-Id]}
`)
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"413", strings.Repeat("x", 11), 413},
		{"502", "", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "http://gw.test/files/x", strings.NewReader(tc.body))
			req.Header.Set("Origin", "https://a.example.com")
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req, "test")
			h := rec.Header()
			if rec.Code != tc.status || h.Get("Access-Control-Allow-Origin") != "https://a.example.com" ||
				h.Get("Access-Control-Expose-Headers") != "X-Request-Id" || h.Get("Vary") != "Origin" ||
				h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, headers %v", rec.Code, h)
			}
		})
	}
}

// TestResponsePhaseEdits: the edits apply in order, once, on the final
// status only.
func TestResponsePhaseEdits(t *testing.T) {
	var x Exchange
	x.RemoveResponseHeaders("Access-Control-")
	x.SetResponseHeader("Access-Control-Allow-Origin", "https://a.example")
	x.AddResponseHeader("Vary", "Origin")
	rw := httptest.NewRecorder()
	rw.Header().Set("Access-Control-Allow-Origin", "*")
	rw.Header().Set("Access-Control-Allow-Methods", "DELETE")
	rw.Header().Set("Vary", "Accept")
	rec := &recorder{ResponseWriter: rw, x: &x}
	rec.WriteHeader(http.StatusEarlyHints)
	if rw.Header().Get("Access-Control-Allow-Methods") == "" {
		t.Fatal("edits applied to a 1xx")
	}
	rec.WriteHeader(200)
	h := rw.Header()
	if h.Get("Access-Control-Allow-Origin") != "https://a.example" || h.Get("Access-Control-Allow-Methods") != "" ||
		strings.Join(h.Values("Vary"), ",") != "Accept,Origin" {
		t.Fatalf("headers %v", h)
	}
}

// TestInspectPreflight: explain shows that a preflight is the gateway's.
func TestInspectPreflight(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: api
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["builtin:echo"]}
    cors: {allowed_origins: ["https://app.example.com"]}
`)
	req := httptest.NewRequest("OPTIONS", "http://gw.test/api/x", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	out := p.Inspect(req, nil, true)
	if out.Status != 204 || out.Route != "api" || !strings.Contains(strings.Join(out.Steps, "\n"), "cors preflight") {
		t.Fatalf("%+v", out)
	}
}
