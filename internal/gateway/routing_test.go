package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestRoutingPrecedenceThroughListener drives the precedence rules of
// docs/routing.md through a real listener: each route adds its own name as
// a path prefix, so the upstream's view of the path tells which route won.
func TestRoutingPrecedenceThroughListener(t *testing.T) {
	up := newUpstream(t, "u").URL
	target := func(name string) string { return `{targets: ["` + up + `"], add_prefix: /` + name + `}` }
	var b strings.Builder
	b.WriteString(header + "routes:\n")
	for _, r := range []struct{ name, match string }{
		{"api", `{path_prefix: /api}`},
		{"api-v1", `{path_prefix: /api/v1}`},
		{"user-by-id", `{path: "/api/v1/users/{id}"}`},
		{"user-me", `{path: /api/v1/users/me}`},
		{"user-me-get", `{path: /api/v1/users/me, methods: [GET]}`},
		{"host-exact", `{hosts: [api.example.com], path_prefix: /}`},
		{"host-wild", `{hosts: ["*.example.com"], path_prefix: /}`},
		{"host-wild-eu", `{hosts: ["*.eu.example.com"], path_prefix: /}`},
		{"submit-post", `{path: /submit, methods: [POST]}`},
		{"submit-put", `{path: /submit, methods: [PUT, PATCH]}`},
		{"first-of-tie", `{path: /tie}`},
	} {
		b.WriteString(routeYAML(r.name, r.match, target(r.name)))
	}
	// A second, identical-precedence route on /tie is refused by validation
	// (it could never win); the tie rule is exercised by the route package.
	tg := startGateway(t, b.String()).serve()

	for _, tc := range []struct {
		name, method, host, path string
		wantRoute                string // the upstream path starts with /<wantRoute>/
		wantStatus               int
		wantAllow                string
	}{
		{"prefix", "GET", "", "/api/things", "api", 200, ""},
		{"prefix exact segment", "GET", "", "/api", "api", 200, ""},
		{"prefix is segment-bounded", "GET", "", "/apix", "", 404, ""},
		{"longer prefix wins", "GET", "", "/api/v1/orders", "api-v1", 200, ""},
		{"exact beats prefix", "GET", "", "/api/v1/users/42", "user-by-id", 200, ""},
		{"literal beats param", "DELETE", "", "/api/v1/users/me", "user-me", 200, ""},
		{"method list beats any method", "GET", "", "/api/v1/users/me", "user-me-get", 200, ""},
		{"exact host beats path specificity", "GET", "api.example.com", "/api/v1/users/me", "host-exact", 200, ""},
		{"host match ignores port and case", "GET", "API.Example.com:8443", "/x", "host-exact", 200, ""},
		{"wildcard host", "GET", "shop.example.com", "/", "host-wild", 200, ""},
		{"wildcard spans labels", "GET", "a.b.example.com", "/", "host-wild", 200, ""},
		{"longer wildcard wins", "GET", "shop.eu.example.com", "/", "host-wild-eu", 200, ""},
		{"wildcard needs a label", "GET", "example.com", "/", "", 404, ""},
		{"method routes", "POST", "", "/submit", "submit-post", 200, ""},
		{"method routes 2", "PATCH", "", "/submit", "submit-put", 200, ""},
		{"405 lists allowed methods", "GET", "", "/submit", "", 405, "PATCH, POST, PUT"},
		{"404 no route", "GET", "", "/nothing", "", 404, ""},
		{"trailing slash is distinct for exact paths", "GET", "", "/tie/", "", 404, ""},
		{"exact path", "GET", "", "/tie", "first-of-tie", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tg.url+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			res, body := do(t, req)
			switch tc.wantStatus {
			case 200:
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				got := decodeReceived(t, body)
				if !strings.HasPrefix(got.Path, "/"+tc.wantRoute+"/") && got.Path != "/"+tc.wantRoute {
					t.Fatalf("upstream saw %q, want the route %q", got.Path, tc.wantRoute)
				}
			case 404:
				problemBody(t, res, body, 404, "route-not-found")
			case 405:
				problemBody(t, res, body, 405, "method-not-allowed")
				if got := res.Header.Get("Allow"); got != tc.wantAllow {
					t.Fatalf("Allow %q, want %q", got, tc.wantAllow)
				}
			}
		})
	}
}

func TestProblemResponsesAndRequestIDs(t *testing.T) {
	up := newUpstream(t, "u")
	tg := startGateway(t, header+"routes:\n"+routeYAML("all", "{path_prefix: /}", `{targets: ["`+up.URL+`"]}`)).serve()

	t.Run("dot segments are refused", func(t *testing.T) {
		for _, p := range []string{"/public/../admin", "/a/./b", "/a/%2e%2e/b"} {
			res, body := get(t, tg.url+p)
			problemBody(t, res, body, 400, "bad-request")
		}
	})
	t.Run("valid incoming id is kept and passed upstream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tg.url+"/x", nil)
		req.Header.Set("X-Request-Id", "trace-123.abc")
		res, body := do(t, req)
		if res.Header.Get("X-Request-Id") != "trace-123.abc" {
			t.Fatalf("response id %q", res.Header.Get("X-Request-Id"))
		}
		if got := decodeReceived(t, body).Headers.Get("X-Request-Id"); got != "trace-123.abc" {
			t.Fatalf("upstream saw id %q", got)
		}
	})
	t.Run("malformed incoming id is replaced", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tg.url+"/x", nil)
		req.Header.Set("X-Request-Id", `bad id "with" quotes`)
		res, body := do(t, req)
		rid := res.Header.Get("X-Request-Id")
		if len(rid) != 32 || decodeReceived(t, body).Headers.Get("X-Request-Id") != rid {
			t.Fatalf("id %q not replaced consistently", rid)
		}
	})
	t.Run("upstream down is 502 without internal detail", func(t *testing.T) {
		down := newUpstream(t, "down")
		addr := down.URL
		down.Close()
		tg2 := startGateway(t, header+"routes:\n"+routeYAML("down", "{path_prefix: /}", `{targets: ["`+addr+`"]}`)).serve()
		res, body := get(t, tg2.url+"/x")
		p := problemBody(t, res, body, 502, "upstream-unavailable")
		if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "refused") {
			t.Fatalf("internal detail leaked: %v", p)
		}
	})
}
