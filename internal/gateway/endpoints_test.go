package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestGatewayServedRoutes drives a real gateway with a direct_response
// health route, a 410 on an authenticated route, and a route described by
// RFC 9728 metadata: the documents, the challenge naming them, CORS on a
// gateway-served answer, the access log (no upstream) and the metrics
// (route label from the configuration).
func TestGatewayServedRoutes(t *testing.T) {
	idp := testidp.Start(t)
	idp2 := testidp.Start(t)
	up := newUpstream(t, "orders")
	cfgText := header + adminTokenYAML() + "identity_providers:\n" + providerYAML("idp", idp, "") + providerYAML("other", idp2, "") + `
protected_resource_metadata:
  resource_documentation: https://developer.example.com/orders
  cache_max_age: 10m
routes:
  - name: health
    public: true
    match: {path: /healthz, methods: [GET]}
    direct_response:
      body: "ok\n"
      headers: {X-Health: "green"}
    cors: {allowed_origins: ["https://app.example.com"]}
  - name: orders-v1
    match: {path_prefix: /v1/orders}
    authenticate: {methods: [jwt]}
    direct_response:
      status: 410
      content_type: application/json
      body: '{"error":"retired"}'
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [jwt], providers: [idp]}
    upstream: {targets: ["` + up.URL + `"]}
    protected_resource:
      resource: https://api.example.test/orders
      scopes_supported: [orders.read]
      resource_name: Orders
  - name: orders-writes
    match: {path_prefix: /orders, methods: [POST]}
    authenticate: {methods: [jwt], providers: [idp]}
    authorize: {scopes: {all_of: [orders.write]}}
    upstream: {targets: ["` + up.URL + `"]}
    protected_resource:
      resource: https://api.example.test/orders
      scopes_supported: [orders.read]
      resource_name: Orders
  - name: root
    match: {path_prefix: /}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["` + up.URL + `"]}
    protected_resource:
      resource: https://api.example.test
      authorization_servers: ["https://as.example.test"]
`
	tg := startGateway(t, cfgText).serve()
	tg.waitReady(t)
	tok := idp.Mint(t, map[string]any{"sub": "alice"})
	meta := "https://api.example.test/.well-known/oauth-protected-resource"

	for _, tc := range []struct {
		name, method, path, token string
		hdr                       map[string]string
		status                    int
		want                      map[string]string
		prefix                    map[string]string // headers that must start with
		body                      string
	}{
		{name: "health", method: "GET", path: "/healthz", status: 200,
			want: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Health": "green", "Content-Length": "3"}, body: "ok\n"},
		{name: "health, cross-origin", method: "GET", path: "/healthz", hdr: map[string]string{"Origin": "https://app.example.com"}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Vary": "Origin"}, body: "ok\n"},
		{name: "health, HEAD", method: "HEAD", path: "/healthz", status: 200, want: map[string]string{"Content-Length": "3"}},
		{name: "health, another method: the authenticated catch-all", method: "POST", path: "/healthz", status: 401},
		{name: "retired, no token", method: "GET", path: "/v1/orders/1", status: 401,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse"`}},
		{name: "retired, with token", method: "GET", path: "/v1/orders/1", token: tok, status: 410,
			want: map[string]string{"Content-Type": "application/json"}, body: `{"error":"retired"}`},
		{name: "metadata of /orders", method: "GET", path: "/.well-known/oauth-protected-resource/orders", status: 200,
			want: map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=600"},
			body: `{"resource":"https://api.example.test/orders","authorization_servers":["` + idp.Issuer + `"],"scopes_supported":["orders.read"],"bearer_methods_supported":["header"],"resource_name":"Orders","resource_documentation":"https://developer.example.com/orders"}` + "\n"},
		{name: "metadata of the root resource", method: "GET", path: "/.well-known/oauth-protected-resource", status: 200,
			body: `{"resource":"https://api.example.test","authorization_servers":["https://as.example.test"],"bearer_methods_supported":["header"],"resource_documentation":"https://developer.example.com/orders"}` + "\n"},
		{name: "metadata ignores the Host header", method: "GET", path: "/.well-known/oauth-protected-resource/orders",
			hdr: map[string]string{"Host": "evil.example", "X-Forwarded-Host": "evil.example"}, status: 200, body: `"resource":"https://api.example.test/orders"`},
		{name: "no metadata for another path", method: "GET", path: "/.well-known/oauth-protected-resource/nothing", status: 401},
		{name: "challenge names the metadata", method: "GET", path: "/orders/1", status: 401,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse", resource_metadata="` + meta + `/orders"`}},
		{name: "bad token challenge names it too", method: "GET", path: "/orders/1", token: "not-a-jwt", status: 401,
			prefix: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse", resource_metadata="` + meta + `/orders", error="invalid_token", error_description="`}},
		{name: "second route of the resource", method: "POST", path: "/orders", status: 401,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse", resource_metadata="` + meta + `/orders"`}},
		{name: "root resource challenge", method: "GET", path: "/x", status: 401,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse", resource_metadata="` + meta + `"`}},
		{name: "route without metadata", method: "GET", path: "/v1/orders", status: 401,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse"`}},
		{name: "proxied with a token", method: "GET", path: "/orders/1", token: tok, status: 200},
		{name: "insufficient scope names the metadata", method: "POST", path: "/orders", token: tok, status: 403,
			want: map[string]string{"Www-Authenticate": `Bearer realm="gatehouse", error="insufficient_scope", scope="orders.write", resource_metadata="` + meta + `/orders"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tg.url+tc.path, nil)
			for k, v := range tc.hdr {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, body := do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			for k, v := range tc.want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tc.prefix {
				if got := res.Header.Get(k); !strings.HasPrefix(got, v) {
					t.Errorf("%s = %q, want it to start with %q", k, got, v)
				}
			}
			if tc.body != "" && !strings.Contains(string(body), tc.body) {
				t.Errorf("body\n got %s\nwant %s", body, tc.body)
			}
			if strings.HasPrefix(tc.path, "/.well-known/") && tc.status == 200 {
				var doc map[string]any
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatalf("metadata is not JSON: %v", err)
				}
			}
		})
	}

	// The access log: one line per gateway-served answer, with its route
	// and no upstream.
	waitFor(t, "access log lines", 3*time.Second, func() bool {
		return strings.Contains(tg.accessLog.String(), `"status":410`)
	})
	var served, metadata int
	for _, l := range tg.accessLog.lines(t) {
		if l["msg"] != "request" {
			continue // an audit event
		}
		switch l["route"] {
		case "health", "orders-v1":
			served++
			if _, ok := l["upstream"]; ok {
				t.Errorf("gateway-served answer logged with an upstream: %v", l)
			}
		case "orders:protected_resource_metadata", "root:protected_resource_metadata":
			metadata++
		}
	}
	if served != 6 || metadata != 3 {
		t.Errorf("access log: %d gateway-served lines, %d metadata lines; want 6 and 3:\n%s", served, metadata, tg.accessLog.String())
	}

	s := tg.scrape(t)
	s.want(t, "gatehouse_requests_total", labels{"route": "health", "method": "GET", "status_class": "2xx"}, 2)
	s.want(t, "gatehouse_requests_total", labels{"route": "orders-v1", "method": "GET", "status_class": "4xx"}, 3)
	s.want(t, "gatehouse_requests_total", labels{"route": "orders:protected_resource_metadata", "method": "GET", "status_class": "2xx"}, 2)
	if _, ok := s.value("gatehouse_upstream_duration_seconds", labels{"route": "health"}); ok {
		t.Error("a gateway-served route has an upstream duration")
	}
	// Labels stay bounded: a route per configured route and endpoint.
	var routeLabels []string
	for _, m := range s["gatehouse_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && !slices.Contains(routeLabels, l.GetValue()) {
				routeLabels = append(routeLabels, l.GetValue())
			}
		}
	}
	for _, l := range routeLabels {
		if !slices.Contains([]string{"health", "orders-v1", "orders", "orders-writes", "root", "orders:protected_resource_metadata",
			"root:protected_resource_metadata", "_unmatched"}, l) {
			t.Errorf("unexpected route label %q", l)
		}
	}
}

// TestServedRouteConfigErrors: an endpoint of the gateway that a route
// also claims is refused at load, as gatehouse validate reports it.
func TestServedRouteConfigErrors(t *testing.T) {
	idp := testidp.Start(t)
	for _, tc := range []struct{ name, routes, want string }{
		{"metadata path taken by a route", `
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "https://api.example.test/orders"}
  - name: wk
    public: true
    match: {path: "/.well-known/oauth-protected-resource/orders"}
    direct_response: {}
`, "endpoint /.well-known/oauth-protected-resource/orders of this route is also matched by routes[1] (wk)"},
		{"one resource described two ways", `
  - name: a
    match: {path_prefix: /orders}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "https://api.example.test/orders", scopes_supported: [a]}
  - name: b
    match: {path_prefix: /orders, methods: [POST]}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "https://api.example.test/orders", scopes_supported: [b]}
`, "routes[1]: endpoint /.well-known/oauth-protected-resource/orders: also served for routes[0] (a): two owners of one path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/gatehouse.yaml"
			text := header + "identity_providers:\n" + providerYAML("idp", idp, "") + "routes:" + tc.routes
			err := validateText(t, path, text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// validateText checks a configuration as gatehouse validate does.
func validateText(t *testing.T, name, text string) error {
	t.Helper()
	cfg, file, err := config.Parse(name, []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	p, err := pipeline.Build(cfg, file, pipeline.Options{Validating: true, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		return err
	}
	p.Close()
	return nil
}
