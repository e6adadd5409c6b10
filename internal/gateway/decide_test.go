package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// decisionConfig is a gateway with a decision API (callers on
// 127.0.0.1), a static API key, and one route per answer class.
func decisionConfig(t *testing.T, upstream, extra string) (cfg, key string) {
	t.Helper()
	store, plain := staticKeyStore(t)
	return header + "audit: {output: stderr}\napi_keys:\n" + store + `
decision_api:
  trusted_callers: [127.0.0.1]
` + extra + `
rate_limits:
  policies:
    one-per-ip:
      limits: [{name: per-ip, rate: 1, per: 1h, key: ip}]
routes:
` + fmt.Sprintf(`  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    upstream: {targets: [%[1]q]}
  - name: admin
    match: {path_prefix: /admin}
    authenticate: {methods: [api_key]}
    authorize: {scopes: {all_of: ["admin:write"]}}
    upstream: {targets: [%[1]q]}
  - name: limited
    match: {path_prefix: /limited}
    public: true
    rate_limit: one-per-ip
    upstream: {targets: [%[1]q]}
  - name: reports
    match: {path_prefix: /reports, methods: [GET]}
    authenticate: {methods: [api_key]}
    upstream: {targets: [%[1]q]}
  - name: maintenance
    match: {path: /maintenance}
    public: true
    direct_response: {status: 503, body: "back soon"}
  - name: only
    match: {path_prefix: /only}
    authenticate: {methods: [api_key]}
    decision_only: true
`, upstream), plain
}

// askForwarded asks the decision API in the Traefik/Caddy dialect about
// method target on host, with the original request's headers.
func askForwarded(t *testing.T, base, method, target, host string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/.gatehouse/decide", nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Uri", target)
	req.Header.Set("X-Forwarded-Host", host)
	req.Header.Set("X-Forwarded-Proto", "http")
	return do(t, req)
}

// TestDecisionMatchesProxyPath: the same request, sent through the proxy
// and asked about through the decision API, gets the same status,
// WWW-Authenticate and problem type; an allowed one is 200 with the
// identity headers and no body.
func TestDecisionMatchesProxyPath(t *testing.T) {
	up := newUpstream(t, "orders")
	cfg, key := decisionConfig(t, up.URL, "")
	tg := startGateway(t, cfg).serve()
	host := strings.TrimPrefix(tg.url, "http://")
	withKey := http.Header{"X-Api-Key": {key}}
	badKey := http.Header{"X-Api-Key": {"gh_bad_" + strings.Repeat("x", 40)}}

	for _, tc := range []struct {
		name, method, target string
		hdr                  http.Header
		want                 int
	}{
		{"allowed", "GET", "/orders/7?x=1", withKey, 200},
		{"no credential", "GET", "/orders/7", nil, 401},
		{"bad credential", "GET", "/orders/7", badKey, 401},
		{"policy refuses", "GET", "/admin/users", withKey, 403},
		{"method not allowed", "POST", "/reports/1", withKey, 405},
		{"no route", "GET", "/nowhere", withKey, 404},
		{"method outside the allow-list", "BREW", "/orders/7", withKey, 501},
		{"dot segments", "GET", "/orders/../admin/users", withKey, 400},
		{"encoded slash", "GET", "/orders/a%2Fb", withKey, 400},
		{"double encoding", "GET", "/orders/%252e%252e/admin", withKey, 400},
		{"encoded control character", "GET", "/orders/%0d%0aX-Injected:%201", withKey, 400},
		{"repeated slash", "GET", "//orders/7", withKey, 400},
		{"gateway-served route", "GET", "/maintenance", nil, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The proxy path, with the target written as is (a raw
			// request line: Go's client would clean some of these).
			pres, pbody := rawRequest(t, host, tc.method, tc.target, tc.hdr)
			dres, dbody := askForwarded(t, tg.url, tc.method, tc.target, host, tc.hdr)
			if pres.StatusCode != tc.want || dres.StatusCode != tc.want {
				t.Fatalf("proxy %d, decision %d, want %d both; decision body %s", pres.StatusCode, dres.StatusCode, tc.want, dbody)
			}
			if p, d := pres.Header.Get("WWW-Authenticate"), dres.Header.Get("WWW-Authenticate"); p != d {
				t.Errorf("WWW-Authenticate: proxy %q, decision %q", p, d)
			}
			if p, d := problemSlug(t, pres, pbody), problemSlug(t, dres, dbody); p != d {
				t.Errorf("problem type: proxy %q, decision %q", p, d)
			}
			if tc.want == 200 {
				got := decodeReceived(t, pbody)
				if dres.Header.Get("X-Auth-Subject") == "" || dres.Header.Get("X-Auth-Subject") != got.Headers.Get("X-Auth-Subject") ||
					dres.Header.Get("X-Auth-Method") != got.Headers.Get("X-Auth-Method") {
					t.Errorf("identity headers: decision %v, upstream received %v", dres.Header, got.Headers)
				}
				if len(dbody) != 0 || dres.Header.Get("X-Request-Id") == "" {
					t.Errorf("allowed decision: body %q, X-Request-Id %q", dbody, dres.Header.Get("X-Request-Id"))
				}
			}
		})
	}

	// The access log describes the original request, on its route
	// (buffered: written shortly after).
	waitFor(t, "the access log lines of /orders/7", 5*time.Second, func() bool {
		n := 0
		for _, l := range tg.accessLog.lines(t) {
			if l["path"] == "/orders/7" && l["route"] == "orders" && l["status"] == float64(200) && l["query"] == "x=1" {
				n++
			}
		}
		return n == 2 // proxied and decided
	})
	// Metrics: the decisions count under the route, as proxied requests
	// do (the allowed one twice: proxied and decided).
	sc := tg.scrape(t)
	sc.want(t, "gatehouse_requests_total", labels{"route": "orders", "method": "GET", "status_class": "2xx"}, 2)
	sc.want(t, "gatehouse_requests_total", labels{"route": "admin", "method": "GET", "status_class": "4xx"}, 2)

	// A 429: the same answer on both paths. The decision has no
	// X-Forwarded-For, so the client is the caller, 127.0.0.1, whose one
	// request an hour the proxy path has just spent.
	if res, _ := rawRequest(t, host, "GET", "/limited/1", nil); res.StatusCode != 200 {
		t.Fatalf("first limited request: %d", res.StatusCode)
	}
	pres, pbody := rawRequest(t, host, "GET", "/limited/1", nil)
	dres, dbody := askForwarded(t, tg.url, "GET", "/limited/1", host, nil)
	if pres.StatusCode != 429 || dres.StatusCode != 429 || problemSlug(t, pres, pbody) != problemSlug(t, dres, dbody) ||
		pres.Header.Get("RateLimit-Policy") != dres.Header.Get("RateLimit-Policy") || dres.Header.Get("Retry-After") == "" {
		t.Errorf("429: proxy %d %v, decision %d %v", pres.StatusCode, pres.Header, dres.StatusCode, dres.Header)
	}

	// Audit: the same authentication and authorization events for both.
	waitFor(t, "the audit events of /admin/users", 5*time.Second, func() bool {
		return strings.Count(tg.stderr.String(), `"path":"/admin/users"`) == 4 // authn + authz, twice
	})
}

// rawRequest sends one request with target written verbatim on the
// request line (Go's client would clean or rewrite some of the hostile
// ones), and reads the answer.
func rawRequest(t *testing.T, host, method, target string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

// TestDecisionHostile: what a caller forwards is read strictly; anything
// ambiguous or malformed is refused, never guessed.
func TestDecisionHostile(t *testing.T) {
	up := newUpstream(t, "orders")
	cfg, key := decisionConfig(t, up.URL, "")
	tg := startGateway(t, cfg).serve()
	host := strings.TrimPrefix(tg.url, "http://")
	ask := func(mutate func(h http.Header)) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/.gatehouse/decide", nil)
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/orders/1")
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Proto", "https")
		mutate(req.Header)
		return do(t, req)
	}
	set := func(name, value string) func(http.Header) {
		return func(h http.Header) { h.Set(name, value) }
	}
	for _, tc := range []struct {
		name   string
		mutate func(http.Header)
		status int
		slug   string
	}{
		{"baseline", func(http.Header) {}, 200, ""},
		{"absolute URL", set("X-Forwarded-Uri", "http://evil.example/orders/1"), 400, "decision-request-invalid"},
		{"relative URI", set("X-Forwarded-Uri", "orders/1"), 400, "decision-request-invalid"},
		{"asterisk", set("X-Forwarded-Uri", "*"), 400, "decision-request-invalid"},
		{"space in URI", set("X-Forwarded-Uri", "/orders/1 HTTP/1.1"), 400, "decision-request-invalid"},
		{"tab in URI", set("X-Forwarded-Uri", "/orders/\t1"), 400, "decision-request-invalid"},
		{"non-ASCII URI", set("X-Forwarded-Uri", "/orders/\xc3\xa9"), 400, "decision-request-invalid"},
		{"dot segments", set("X-Forwarded-Uri", "/orders/../admin"), 400, "bad-request"},
		{"encoded dot segments", set("X-Forwarded-Uri", "/orders/%2e%2e/admin"), 400, "bad-request"},
		{"encoded slash", set("X-Forwarded-Uri", "/orders/a%2Fb"), 400, "path-encoded-separator"},
		{"encoded slash with dot segments", set("X-Forwarded-Uri", "/orders%2F..%2Fadmin"), 400, "bad-request"},
		{"encoded CRLF", set("X-Forwarded-Uri", "/orders/%0d%0a"), 400, "path-control-character"},
		{"backslash", set("X-Forwarded-Uri", `/orders\..\admin`), 400, "path-backslash"},
		{"duplicate URI", func(h http.Header) { h.Add("X-Forwarded-Uri", "/admin") }, 400, "decision-request-invalid"},
		{"duplicate method", func(h http.Header) { h.Add("X-Forwarded-Method", "DELETE") }, 400, "decision-request-invalid"},
		{"duplicate host", func(h http.Header) { h.Add("X-Forwarded-Host", "evil.example") }, 400, "decision-request-invalid"},
		{"empty URI", set("X-Forwarded-Uri", ""), 400, "decision-request-invalid"},
		{"missing host", func(h http.Header) { h.Del("X-Forwarded-Host") }, 400, "decision-request-invalid"},
		{"missing proto", func(h http.Header) { h.Del("X-Forwarded-Proto") }, 400, "decision-request-invalid"},
		{"missing method", func(h http.Header) { h.Del("X-Forwarded-Method") }, 400, "decision-request-invalid"},
		{"proto not http(s)", set("X-Forwarded-Proto", "gopher"), 400, "decision-request-invalid"},
		{"method with a space", set("X-Forwarded-Method", "GET /admin"), 400, "decision-request-invalid"},
		{"method not allowed anywhere", set("X-Forwarded-Method", "TRACE"), 501, "method-not-implemented"},
		{"bad host", set("X-Forwarded-Host", "evil.example:abc"), 400, "invalid-host"},
		{"host list", set("X-Forwarded-Host", "a.example, b.example"), 400, "invalid-host"},
		{"mixed dialects", set("X-Original-Uri", "/public"), 400, "decision-request-invalid"},
		{"mixed dialects: nginx method beside Traefik's URI", set("X-Original-Method", "GET"), 400, "decision-request-invalid"},
		{"decision-only route is decided", set("X-Forwarded-Uri", "/only/1"), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := ask(tc.mutate)
			if res.StatusCode != tc.status || problemSlug(t, res, body) != tc.slug {
				t.Fatalf("%d %q, want %d %q; body %s", res.StatusCode, problemSlug(t, res, body), tc.status, tc.slug, body)
			}
		})
	}

	t.Run("oversize URI", func(t *testing.T) {
		res, body := ask(set("X-Forwarded-Uri", "/orders/"+strings.Repeat("a", 70<<10)))
		problemBody(t, res, body, 431, "request-header-too-large")
	})
	t.Run("decision-only route is 404 on the proxy path", func(t *testing.T) {
		res, body := keyCall(t, tg.url+"/only/1", key, "")
		problemBody(t, res, body, 404, "route-not-found")
	})
	t.Run("untrusted caller", func(t *testing.T) {
		// 127.0.0.2 is loopback too, but not a trusted caller.
		client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext}}
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/.gatehouse/decide", nil)
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/orders/1")
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Proto", "http")
		res, err := client.Do(req)
		if err != nil {
			t.Skipf("cannot connect from 127.0.0.2 on this machine: %v", err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		p := problemBody(t, res, body, 403, "decision-caller-untrusted")
		if res.Header.Get("X-Auth-Subject") != "" {
			t.Errorf("an untrusted caller got identity headers: %v (%v)", res.Header, p)
		}
		// Its forwarded headers were never read: the access log shows
		// the request as it came, not /orders/1.
		waitFor(t, "the access log line of the refused caller", 5*time.Second, func() bool {
			for _, l := range tg.accessLog.lines(t) {
				if l["status"] == float64(403) && l["path"] == "/.gatehouse/decide" && l["error"] == "decision-caller-untrusted" {
					return true
				}
			}
			return false
		})
	})
}

// TestDecisionDialects: nginx's X-Original-* headers, Envoy's prefixed
// path, and the nginx status mapping of a 429.
func TestDecisionDialects(t *testing.T) {
	up := newUpstream(t, "orders")
	cfg, key := decisionConfig(t, up.URL, "  nginx_status_mapping: true\n")
	tg := startGateway(t, cfg).serve()
	host := strings.TrimPrefix(tg.url, "http://")

	nginx := func(method, target, xff string, withKey bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/.gatehouse/decide", nil)
		if withKey {
			req.Header.Set("X-Api-Key", key)
		}
		req.Header.Set("X-Original-Method", method)
		req.Header.Set("X-Original-Uri", target)
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Proto", "https")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return do(t, req)
	}
	if res, body := nginx("GET", "/orders/1", "", true); res.StatusCode != 200 || res.Header.Get("X-Auth-Subject") == "" {
		t.Errorf("nginx allowed: %d %v %s", res.StatusCode, res.Header, body)
	}
	if res, _ := nginx("GET", "/orders/1", "", false); res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("nginx, no key: %d WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	// One request an hour per client address; the address is the one
	// the trusted caller forwarded, not the caller's.
	if res, _ := nginx("GET", "/limited/1", "192.0.2.10", false); res.StatusCode != 200 {
		t.Fatalf("first limited: %d", res.StatusCode)
	}
	if res, _ := nginx("GET", "/limited/1", "192.0.2.11", false); res.StatusCode != 200 {
		t.Fatalf("another client address: %d, want 200 (its own bucket)", res.StatusCode)
	}
	res, body := nginx("GET", "/limited/1", "192.0.2.10", false)
	if res.StatusCode != 403 || res.Header.Get("X-Gatehouse-Status") != "429" || res.Header.Get("Retry-After") == "" ||
		problemSlug(t, res, body) != "too-many-requests" {
		t.Errorf("nginx 429 mapped: %d X-Gatehouse-Status %q Retry-After %q body %s", res.StatusCode,
			res.Header.Get("X-Gatehouse-Status"), res.Header.Get("Retry-After"), body)
	}
	// The mapping is nginx's only: Traefik's dialect gets the real 429.
	res, _ = askForwarded(t, tg.url, "GET", "/limited/1", host, http.Header{"X-Forwarded-For": {"192.0.2.10"}})
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || res.Header.Get("X-Gatehouse-Status") != "" {
		t.Errorf("forwarded 429: %d Retry-After %q X-Gatehouse-Status %q", res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("X-Gatehouse-Status"))
	}
	// nginx: 404 mapped too.
	if res, _ := nginx("GET", "/nowhere", "", true); res.StatusCode != 403 || res.Header.Get("X-Gatehouse-Status") != "404" {
		t.Errorf("nginx 404: %d %q", res.StatusCode, res.Header.Get("X-Gatehouse-Status"))
	}

	// Envoy: method, path and Host of the check request are the
	// original's, below the decision path.
	envoy := func(method, pathAndQuery string, withKey bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, tg.url+"/.gatehouse/decide"+pathAndQuery, nil)
		req.Host = "api.example.com"
		req.Header.Set("X-Forwarded-Proto", "https")
		if withKey {
			req.Header.Set("X-Api-Key", key)
		}
		req.Header.Set("X-Auth-Groups", "admins") // a client's copy of an identity header
		return do(t, req)
	}
	res, body = envoy("GET", "/orders/1?page=2", true)
	if res.StatusCode != 200 || res.Header.Get("X-Auth-Subject") == "" {
		t.Fatalf("envoy allowed: %d %v %s", res.StatusCode, res.Header, body)
	}
	rm := res.Header.Get("X-Envoy-Auth-Headers-To-Remove")
	if !strings.Contains(rm, "x-api-key") || !strings.Contains(rm, "x-auth-groups") || strings.Contains(rm, "x-auth-subject") {
		t.Errorf("x-envoy-auth-headers-to-remove %q: want the API key and the unset identity headers, not the set ones", rm)
	}
	if res, _ := envoy("POST", "/reports/1", true); res.StatusCode != 405 {
		t.Errorf("envoy POST /reports/1: %d, want 405 (the check request's method is the original's)", res.StatusCode)
	}
	if res, _ := envoy("GET", "/orders/1", false); res.StatusCode != 401 {
		t.Errorf("envoy, no key: %d", res.StatusCode)
	}
	if res, body := envoy("GET", "/orders/%2e%2e/admin", true); res.StatusCode != 400 {
		t.Errorf("envoy dot segments: %d %s", res.StatusCode, body)
	}
}

// TestDecisionOwnListener: with decision_api.listener, that listener
// answers decisions only, and the other listeners do not.
func TestDecisionOwnListener(t *testing.T) {
	up := newUpstream(t, "orders")
	cfg, key := decisionConfig(t, up.URL, "  listener: decide\n")
	cfg = strings.Replace(cfg, "listeners:\n", "listeners:\n  - name: decide\n    address: \"127.0.0.1:0\"\n", 1)
	tg := startGateway(t, cfg).serve()
	decide := "http://" + tg.Addr("decide").String()
	host := strings.TrimPrefix(tg.url, "http://")
	hdr := http.Header{"X-Api-Key": {key}}
	if res, body := askForwarded(t, decide, "GET", "/orders/1", host, hdr); res.StatusCode != 200 {
		t.Errorf("decision on its listener: %d %s", res.StatusCode, body)
	}
	if res, _ := keyCall(t, decide+"/orders/1", key, ""); res.StatusCode != 404 {
		t.Errorf("proxying on the decision listener: %d, want 404", res.StatusCode)
	}
	// On the main listener the path is an ordinary (unrouted) one.
	if res, _ := askForwarded(t, tg.url, "GET", "/orders/1", host, hdr); res.StatusCode != 404 {
		t.Errorf("decision path on the proxy listener: %d, want 404", res.StatusCode)
	}
	if res, _ := keyCall(t, tg.url+"/orders/1", key, ""); res.StatusCode != 200 {
		t.Errorf("proxy listener: %d", res.StatusCode)
	}
}

// TestDecisionDPoP: a DPoP proof is checked against the original URL the
// caller describes (scheme, host and path), not the decision API's own.
func TestDecisionDPoP(t *testing.T) {
	secret := strings.Repeat("dpop-idp-", 4)
	cfg := header + fmt.Sprintf(`audit: {output: stderr}
decision_api: {trusted_callers: [127.0.0.1]}
identity_providers:
  - {name: corp, issuer: https://idp.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}, dpop: {mode: allowed}}
routes:
  - {name: api, match: {path_prefix: /api}, authenticate: {methods: [jwt], jwt: {dpop: required}}, decision_only: true}
`, secret)
	tg := startGateway(t, cfg).serve()
	client := newDPoPClient(t)
	token := hsToken(t, secret, "https://idp.example", map[string]any{"jkt": client.jkt})
	ask := func(htu, proto string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/.gatehouse/decide", nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", client.proof(t, "GET", htu, token, nil))
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/api/orders")
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		req.Header.Set("X-Forwarded-Proto", proto)
		res, _ := do(t, req)
		return res
	}
	for _, tc := range []struct {
		name, htu, proto string
		want             int
	}{
		{"the original URL", "https://api.example.com/api/orders", "https", 200},
		{"the decision API's URL", tg.url + "/.gatehouse/decide", "https", 401},
		{"another scheme than the original", "https://api.example.com/api/orders", "http", 401},
		{"another path", "https://api.example.com/api/other", "https", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := ask(tc.htu, tc.proto); res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (WWW-Authenticate %q)", res.StatusCode, tc.want, res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestDecisionReload: decision_api follows the configuration: turned on,
// its callers changed, and turned off by a reload.
func TestDecisionReload(t *testing.T) {
	up := newUpstream(t, "orders")
	on, key := decisionConfig(t, up.URL, "")
	off := strings.Replace(on, "decision_api:\n  trusted_callers: [127.0.0.1]\n", "", 1)
	off = strings.Replace(off, "    decision_only: true\n", "    upstream: {targets: [\""+up.URL+"\"]}\n", 1)
	otherCallers := strings.Replace(on, "trusted_callers: [127.0.0.1]", "trusted_callers: [192.0.2.1]", 1)
	tg := startGateway(t, off).serve()
	host := strings.TrimPrefix(tg.url, "http://")
	hdr := http.Header{"X-Api-Key": {key}}
	for _, step := range []struct {
		name, cfg string
		want      int
	}{
		{"off: the path is an ordinary one", "", 404},
		{"turned on", on, 200},
		{"callers changed", otherCallers, 403},
		{"turned off", off, 404},
	} {
		if step.cfg != "" {
			tg.writeConfig(step.cfg)
			if err := tg.Reload(); err != nil {
				t.Fatalf("%s: reload: %v", step.name, err)
			}
		}
		if res, body := askForwarded(t, tg.url, "GET", "/orders/1", host, hdr); res.StatusCode != step.want {
			t.Fatalf("%s: %d, want %d: %s", step.name, res.StatusCode, step.want, body)
		}
	}
}
