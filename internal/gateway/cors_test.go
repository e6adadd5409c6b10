package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// corsUpstream records every request it receives and answers with its own,
// wider CORS headers, which the gateway must replace.
type corsUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD path"
}

func newCORSUpstream(t *testing.T) *corsUpstream {
	u := &corsUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Method+" "+r.URL.Path)
		u.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
		w.Header().Set("Access-Control-Expose-Headers", "X-Secret")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Page", "1")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *corsUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// TestCORSThroughGateway: on an authenticated jwt route with cors, a
// browser preflight is answered by the gateway (no credentials needed,
// never forwarded), and actual requests still authenticate, with the
// gateway's CORS headers on the 401 and on the upstream's 200.
func TestCORSThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newCORSUpstream(t)
	route := fmt.Sprintf(`  - name: api
    match: {path_prefix: /api, methods: [GET, PUT, DELETE]}
    authenticate: {methods: [jwt]}
    upstream: {targets: [%q]}
    cors:
      allowed_origins: ["https://app.example.com", "https://*.tenant.example.com"]
      allowed_methods: [GET, PUT]
      allowed_headers: [Authorization, Content-Type]
      exposed_headers: [X-Page]
      allow_credentials: true
      max_age: 10m
  - name: any
    match: {path_prefix: /any}
    authenticate: {methods: [jwt]}
    upstream: {targets: [%q]}
    cors: {allowed_origins: ["https://app.example.com"]}
`, up.URL, up.URL)
	tg := startGateway(t, header+"identity_providers:\n"+providerYAML("idp", idp, "")+"routes:\n"+route).serve()
	tg.waitReady(t)

	preflightTo := func(t *testing.T, path, origin, method, headers string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("OPTIONS", tg.url+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		res, _ := do(t, req)
		return res
	}
	preflight := func(t *testing.T, origin, method, headers string) *http.Response {
		t.Helper()
		return preflightTo(t, "/api/items/1", origin, method, headers)
	}

	t.Run("preflight answered without credentials, not forwarded", func(t *testing.T) {
		res := preflight(t, "https://app.example.com", "PUT", "authorization, content-type")
		if res.StatusCode != 204 {
			t.Fatalf("status %d, want 204", res.StatusCode)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "PUT",
			"Access-Control-Allow-Headers":     "authorization, content-type",
			"Access-Control-Max-Age":           "600",
			"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		if res.Header.Get("WWW-Authenticate") != "" {
			t.Error("the preflight was challenged")
		}
	})
	t.Run("any-method authenticated route: 204, not 401", func(t *testing.T) {
		res := preflightTo(t, "/any/x", "https://app.example.com", "POST", "")
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
		}
	})
	t.Run("wildcard subdomain origin, HEAD-as-GET, match.methods without OPTIONS", func(t *testing.T) {
		res := preflight(t, "https://a.b.tenant.example.com", "HEAD", "")
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://a.b.tenant.example.com" {
			t.Fatalf("status %d, allow origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	for _, tc := range []struct{ name, origin, method, headers string }{
		{"disallowed origin", "https://evil.example.net", "PUT", ""},
		{"suffix attack", "https://evil-tenant.example.com", "PUT", ""},
		{"disallowed header", "https://app.example.com", "PUT", "X-Admin"},
		{"method outside cors.allowed_methods", "https://app.example.com", "DELETE", ""},
	} {
		t.Run("refused preflight: "+tc.name, func(t *testing.T) {
			res := preflight(t, tc.origin, tc.method, tc.headers)
			for k := range res.Header {
				if strings.HasPrefix(k, "Access-Control-Allow-") {
					t.Errorf("refused preflight carries %s: %q", k, res.Header.Get(k))
				}
			}
			if res.StatusCode != 204 || res.Header.Get("Vary") == "" {
				t.Fatalf("status %d, Vary %q", res.StatusCode, res.Header.Get("Vary"))
			}
		})
	}
	t.Run("preflight for a method no route serves: routed as OPTIONS, 405 without allow headers", func(t *testing.T) {
		res := preflight(t, "https://app.example.com", "POST", "")
		if res.StatusCode != 405 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
		}
	})
	if got := up.requests(); len(got) != 0 {
		t.Fatalf("preflights reached the upstream: %v", got)
	}

	t.Run("actual request without a token: 401 with CORS headers", func(t *testing.T) {
		res, body := bearer(t, tg.url+"/api/items/1", "", map[string]string{"Origin": "https://app.example.com"})
		problemBody(t, res, body, 401, "unauthorized")
		if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			res.Header.Get("Access-Control-Allow-Credentials") != "true" || res.Header.Get("Vary") != "Origin" {
			t.Fatalf("headers %v", res.Header)
		}
	})
	t.Run("actual request with a token: upstream's CORS headers replaced", func(t *testing.T) {
		tok := idp.ClientCredentialsToken(t, "openid")
		res, body := bearer(t, tg.url+"/api/items/1", tok, map[string]string{"Origin": "https://app.example.com"})
		if res.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		h := res.Header
		if h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" ||
			h.Get("Access-Control-Expose-Headers") != "X-Page" || h.Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("headers %v", h)
		}
		if v := h.Values("Access-Control-Allow-Origin"); len(v) != 1 {
			t.Fatalf("Access-Control-Allow-Origin %q", v)
		}
		if v := strings.Join(h.Values("Vary"), ","); v != "Accept-Encoding,Origin" {
			t.Fatalf("Vary %q", v)
		}
	})
	t.Run("disallowed origin: answered, but no allow headers, upstream's removed", func(t *testing.T) {
		tok := idp.ClientCredentialsToken(t, "openid")
		res, _ := bearer(t, tg.url+"/api/items/1", tok, map[string]string{"Origin": "https://example.com.evil.net"})
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		for k := range res.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %q", k, res.Header.Get(k))
			}
		}
	})
	t.Run("no Origin: upstream's CORS headers removed, Vary: Origin", func(t *testing.T) {
		tok := idp.ClientCredentialsToken(t, "openid")
		res, _ := bearer(t, tg.url+"/api/items/1", tok, nil)
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "" ||
			!strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
		}
	})
	t.Run("plain OPTIONS (not a preflight) is authenticated as before", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", tg.url+"/api/items/1", nil)
		req.Header.Set("Origin", "https://app.example.com")
		res, _ := do(t, req)
		if res.StatusCode != 405 {
			t.Fatalf("status %d, want 405 (match.methods does not list OPTIONS)", res.StatusCode)
		}
	})
}
