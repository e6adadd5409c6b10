package gateway

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// The bypass corpus: a gateway with authenticated routes (by path prefix,
// exact path, path parameter, host, wildcard host, with strip/add prefix),
// public routes beside them and a public catch-all, each route with its
// own recording upstream. Every request is sent byte for byte, over plain
// TCP (HTTP/1.1, HTTP/1.0, pipelined) or over TLS with HTTP/2, and must
// either be refused with the expected status and problem type, or reach
// exactly the expected upstream as the expected method, target and host.
// Whatever a case expects, a request without a valid credential must
// never reach an authenticated route's upstream, and no credential it
// carries may appear in a response, the access log or the audit log.

// corpusUpstream records what each request (by its X-Case header) brought.
type corpusUpstream struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]corpusSeen
}

type corpusSeen struct {
	Method, URI, Host string
	Header, Trailer   http.Header
	Body              string
}

func newCorpusUpstream(t *testing.T, name string) *corpusUpstream {
	t.Helper()
	u := &corpusUpstream{name: name, seen: map[string]corpusSeen{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := corpusSeen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: string(body)}
		u.mu.Lock()
		for _, id := range r.Header.Values("X-Case") {
			u.seen[id] = s
		}
		u.mu.Unlock()
		_, _ = io.WriteString(w, "reached "+name)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *corpusUpstream) get(id string) (corpusSeen, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.seen[id]
	return s, ok
}

// bypassCase is one request of the corpus.
type bypassCase struct {
	name    string
	method  string   // default GET
	target  string   // request target as sent
	headers []string // raw header lines; Host: gw.test is added unless one is given
	token   bool     // send a valid bearer token
	h2      bool     // send over TLS with HTTP/2 instead of raw HTTP/1.1
	// h2fields, when set, are sent as they are in one HEADERS frame over
	// TLS and HTTP/2 (pseudo-header fields included, x-case added); status
	// -1 means the stream or connection is reset.
	h2fields [][2]string

	status int    // expected status
	slug   string // expected problem type, "" for any (or none)
	reach  string // upstream that must receive it; "" for none
	// For a request that reaches an upstream: what it must receive
	// ("" = as sent; wantHost "" = not checked), and headers that must
	// not arrive (in any spelling, as header or trailer).
	wantMethod, wantURI, wantHost string
	gone                          []string
}

// protectedUpstreams are the upstreams of authenticated routes.
var protectedUpstreams = []string{"admin", "account", "reports", "apihost", "wild", "svc"}

const corpusSecret = "c0rpus-s3cret-VALUE"

func bypassCorpus() []bypassCase {
	var cs []bypassCase
	add := func(c bypassCase) {
		if c.method == "" {
			c.method = "GET"
		}
		if c.name == "" {
			c.name = fmt.Sprintf("%s %q %s", c.method, c.target, strings.Join(c.headers, "|"))
		}
		if c.h2fields != nil {
			c.name = fmt.Sprintf("raw h2 %v", c.h2fields)
			for _, f := range c.h2fields {
				if f[0] == ":path" && c.target == "" {
					c.target = f[1]
				}
			}
		}
		if c.h2 {
			c.name = "h2 " + c.name
		}
		if c.method == "HEAD" {
			c.slug = "" // no body, so no problem type to compare
		}
		cs = append(cs, c)
	}
	refuse := func(status int, slug, method, target string, headers ...string) {
		add(bypassCase{method: method, target: target, headers: headers, status: status, slug: slug})
	}
	pub := func(target string, headers ...string) {
		add(bypassCase{target: target, headers: headers, status: 200, reach: "pub"})
	}
	unauth := func(method, target string, headers ...string) {
		add(bypassCase{method: method, target: target, headers: headers, status: 401, slug: "unauthorized"})
	}
	ambiguous := func(method, target string) {
		refuse(400, "path-ambiguous", method, target)
	}

	// The protected routes answer 401 without a credential and serve it
	// with one, on the path as sent (svc: prefix stripped and added).
	for _, p := range []string{"/admin", "/admin/", "/admin/x", "/admin/x/", "/account", "/reports/1", "/svc/x", "/%61dmin", "/admin/Users", "/reports/ABC"} {
		unauth("GET", p)
		unauth("HEAD", p)
	}
	for _, c := range []struct{ target, reach, uri string }{
		{"/admin/x", "admin", ""}, {"/account", "account", ""}, {"/reports/7", "reports", ""},
		{"/svc/a/b?q=1", "svc", "/internal/a/b?q=1"}, {"/svc", "svc", "/internal"}, {"/admin/Users", "admin", ""},
		{"/reports/ABC", "reports", ""},
	} {
		add(bypassCase{target: c.target, token: true, status: 200, reach: c.reach, wantURI: c.uri})
	}
	unauth("POST", "/admin/x", "Content-Length: 0")
	// A method the authenticated account route does not list must not
	// move the request to the public catch-all: 405 (HEAD is GET's and
	// stays protected).
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		add(bypassCase{method: m, target: "/account", headers: []string{"Content-Length: 0"}, status: 405, slug: "method-not-allowed"})
	}

	// Prefix boundaries: "/adminx" is not under "/admin"; the public
	// routes beside it stay public.
	for _, p := range []string{"/adminx", "/admin-panel", "/admin_x", "/accounts", "/accountx", "/report/1", "/reports", "/svcx", "/sv", "/public/admin", "/x/admin"} {
		pub(p)
	}

	// Path aliases: read case-insensitively, without a trailing slash,
	// dot or space, without ";" parameters, NFKC-normalised, these are the
	// protected paths; they must not reach the catch-all.
	for _, p := range []string{"/ADMIN", "/Admin", "/aDmin/x", "/ADMIN/x", "/admin.", "/admin..", "/admin%20", "/admin.%20.",
		"/admin::$DATA", "/admin::$data/x", "/ACCOUNT", "/Account", "/account/", "/account.", "/account%20", "/account::$DATA",
		"/ACCOUNT/", "/REPORTS/1", "/Reports/1", "/reports/1/", "/SVC/x", "/Svc", "/svc./x",
		"/%EF%BD%81dmin", "/%EF%BC%A1DMIN/x", "/a%E2%80%8Bdmin", "/%E2%80%8Badmin", "/admin%E2%80%8B", "/ad%C2%ADmin",
		"/admin%EF%BB%BF", "/report%C5%BF/1", "/%EF%BD%93vc/x", "/acc%EF%BD%8Funt",
		"/ａdmin", "/ＡＤＭＩＮ", "/admin\u200b", "/ACCOUNT%E2%80%8B"} {
		ambiguous("GET", p)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		ambiguous(m, "/Admin/x")
		// The account route lists only GET: other methods of /account
		// go to the catch-all anyway, so their aliases may too.
		add(bypassCase{method: m, target: "/ACCOUNT", headers: []string{"Content-Length: 0"}, status: 200, reach: "pub"})
	}
	ambiguous("HEAD", "/ADMIN")
	ambiguous("HEAD", "/Account/")
	// A full-width separator or dot segment that only the lenient reading
	// has is refused whatever the routes.
	for _, p := range []string{"/public%EF%BC%8Fadmin", "/public/%EF%BC%8E%EF%BC%8E/admin", "/x/%EF%BC%8E%EF%BC%8E", "/a%EF%BC%BCb", "/a%EF%BC%85%32%65", "/a%EF%BC%9Fb", "/a%EF%BC%83b"} {
		ambiguous("GET", p)
	}
	// Lenient readings that lead to the route the exact path matched, or
	// to no other route, change nothing.
	for _, p := range []string{"/About", "/USERS/1", "/public/", "/x%20", "/caf%C3%A9", "/%EF%BD%98", "/x::$DATA"} {
		pub(p)
	}
	add(bypassCase{target: "/files/A.", status: 200, reach: "files"})
	add(bypassCase{target: "/FILES/a", status: 400, slug: "path-ambiguous"})
	add(bypassCase{target: "/admin/X.", token: true, status: 200, reach: "admin"})

	// Dot segments, encodings and separators (the hygiene corpus has
	// many more; these are the classic bypasses of each class).
	for _, c := range []struct {
		target string
		status int
		slug   string
	}{
		{"/public/../admin", 400, "bad-request"}, {"/public/%2e%2e/admin", 400, "bad-request"}, {"/public/%2E%2E/admin", 400, "bad-request"},
		{"/public/.%2e/admin", 400, "bad-request"}, {"/./admin", 400, "bad-request"}, {"/admin/..", 400, "bad-request"},
		{"/public/..%2fadmin", 400, "bad-request"}, {"/public%2f..%2fadmin", 400, "bad-request"},
		{"/admin%2f", 400, "path-encoded-separator"}, {"/%2fadmin", 400, "path-encoded-separator"},
		{"/public/..;/admin", 400, "bad-request"}, {"/admin;x=1", 400, "path-parameter"}, {"/admin;", 400, "path-parameter"},
		{"/public\\..\\admin", 400, "path-backslash"}, {"/public/%5C..%5Cadmin", 400, "bad-request"},
		{"//admin", 400, "path-repeated-slash"}, {"/public//admin", 400, "path-repeated-slash"},
		{"/admin#x", 400, "path-fragment"}, {"/public#/../admin", 400, "path-fragment"},
		{"/%252e%252e/admin", 400, "path-double-encoding"}, {"/public/%252e%252e%252fadmin", 400, "path-double-encoding"},
		{"/%C0%AE%C0%AE/admin", 400, "path-invalid-utf8"}, {"/%C0%AFadmin", 400, "path-invalid-utf8"}, {"/%E0%80%AE/admin", 400, "path-invalid-utf8"},
		{"/admin%00", 400, "path-control-character"}, {"/public%00/../admin", 400, "path-control-character"},
		{"/legacy/..;/admin", 400, "bad-request"}, {"/files/..%2fadmin", 400, "bad-request"}, {"/files/%2e%2e%2fadmin", 400, "bad-request"},
		{"*", 400, "bad-request"}, {"admin", 400, ""}, {"./admin", 400, ""},
	} {
		refuse(c.status, c.slug, "GET", c.target)
	}
	// A query or an encoded "?" is not a path.
	for _, p := range []string{"/public?/admin", "/public?x=/../admin", "/public%3F/admin", "/public?%2F..%2Fadmin", "/?admin"} {
		pub(p)
	}
	unauth("GET", "/admin?/public")
	unauth("GET", "/admin?")

	// Hosts: one spelling for the route and the upstream; anything a
	// backend could read as another host is refused.
	for _, h := range []string{"api.example.com", "API.EXAMPLE.COM", "api.example.com.", "Api.Example.Com.:443", "api.example.com:8080",
		"x.internal.example.com", "X.INTERNAL.example.com.", "a.b.internal.example.com:1"} {
		unauth("GET", "/anything", "Host: "+h)
	}
	for _, h := range []string{"api%2eexample.com", "api.example.com%00", "[api.example.com]", "[::1]api.example.com", "[::1]:80:81", "[fe80::1%25eth0]",
		"api.example.com:abc", "api.example.com:", "api.example.com:1:2", "api.example.com:99999", "api.example.com:123456", ":80",
		"api..example.com", ".api.example.com", "api.example.com..", "x.internal.example.com:-1", "[::1", "[1.2.3.4]"} {
		refuse(400, "invalid-host", "GET", "/anything", "Host: "+h)
	}
	for _, h := range []string{"evil@api.example.com", "api.example.com/admin", "api.example.com, gw.test", "api.example.com?", "api.ex\xc3\xa4mple.com"} {
		refuse(400, "", "GET", "/anything", "Host: "+h) // net/http refuses these itself
	}
	refuse(400, "", "GET", "/anything", "Host: api.example.com", "Host: gw.test")
	for h, want := range map[string]string{"internal.example.com": "internal.example.com", "gw.test.": "gw.test", "GW.Test:80": "gw.test:80",
		"127.0.0.1:8080": "127.0.0.1:8080", "[::1]:8080": "[::1]:8080", "[::1]": "[::1]", "x_y.test": "x_y.test"} {
		add(bypassCase{target: "/pub", headers: []string{"Host: " + h}, status: 200, reach: "pub", wantHost: want})
	}
	// Absolute-form targets: the authority is the host (RFC 9112 §3.2.2).
	for _, t := range []string{"http://api.example.com/x", "http://API.EXAMPLE.COM./x", "https://api.example.com/x", "http://gw.test/admin", "http://other.test/admin/x",
		"http://user@api.example.com/x", "http://gw.test@api.example.com/x", "http://x.internal.example.com:8080/x"} {
		unauth("GET", t)
	}
	add(bypassCase{target: "http://api.example.com/pub", headers: []string{"Host: api.example.com"}, token: true, status: 200, reach: "apihost", wantURI: "/pub", wantHost: "api.example.com"})
	add(bypassCase{target: "http://gw.test/pub", headers: []string{"Host: api.example.com"}, status: 200, reach: "pub", wantURI: "/pub", wantHost: "gw.test"})
	// net/http refuses these itself.
	for _, target := range []string{"http://api.example.com:abc/x", "http://api%2eexample.com/x", "http://%61pi.example.com/x", "http://a.b:8%30/x"} {
		refuse(400, "", "GET", target)
	}
	refuse(400, "invalid-host", "GET", "http://[::1%25eth0]/x")
	// An empty Host matches only routes without hosts.
	add(bypassCase{name: "empty Host matches only routes without hosts", target: "/pub", headers: []string{"Host:"}, status: 200, reach: "pub"})
	refuse(400, "", "GET", "http://[api.example.com]/x")

	// Methods.
	for _, m := range []string{"get", "Get", "gEt", "head", "post", "GET ", "TRACE", "TRACK", "CONNECT", "PROPFIND", "DEBUG", "PRI"} {
		if strings.TrimSpace(m) != m {
			continue
		}
		refuse(501, "method-not-implemented", m, "/admin")
	}
	add(bypassCase{name: "lower-case method on a public route", method: "get", target: "/pub", status: 501, slug: "method-not-implemented"})
	for _, h := range []string{"X-HTTP-Method-Override: GET", "X-HTTP-Method: DELETE", "X-Method-Override: PUT", "x-http-method-override: DELETE"} {
		add(bypassCase{method: "POST", target: "/pub", headers: []string{h, "Content-Length: 0"}, status: 200, reach: "pub", wantMethod: "POST",
			gone: []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}})
	}

	// Identity headers the backend trusts: removed in every spelling,
	// whatever Connection says, on public and authenticated routes.
	spoofable := []string{"X-Auth-Subject", "X-Auth-Groups", "X-Auth-Roles", "X-Auth-Scopes", "X-Auth-Issuer", "X-Auth-Method", "X-Auth-Client-Id",
		"X_Auth_Subject", "x-auth-subject", "X-AUTH-GROUPS", "X-Auth_Groups",
		"X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Original-URL", "X-Rewrite-URL", "X-Original-Host",
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-Access-Token",
		"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Access-Token",
		"Remote-User", "X-Remote-User", "X-Remote-Group", "X-Authenticated-User", "X-Authenticated-Userid", "X-Authenticated-Groups",
		"X-Consumer-Id", "X-Consumer-Username", "X-Consumer-Groups", "X-Credential-Identifier", "X-Userinfo",
		"X-MS-Client-Principal", "X-MS-Client-Principal-Name", "X-MS-Client-Principal-Id",
		"X-Amzn-Oidc-Data", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Accesstoken",
		"X-Goog-Authenticated-User-Email", "X-Goog-IAP-JWT-Assertion", "Cf-Access-Jwt-Assertion", "Cf-Access-Authenticated-User-Email",
		"X-WEBAUTH-USER", "X-Webauth-Groups", "X-JWT-Assertion", "X-Endpoint-API-Userinfo",
		"X-Forwarded-Client-Cert", "X-Client-Cert", "X-Client-Verify", "X-SSL-Client-Cert", "X-SSL-Client-Verify", "X-SSL-Client-S-DN", "SSL-Client-Verify",
		"Front-End-Https", "X-Forwarded-Protocol", "X-ARR-SSL", "X-ARR-ClientCert", "x-envoy-internal", "X-Envoy-Original-Path", "X-Forwarded-Prefix", "X-Forwarded-Port"}
	for _, h := range spoofable {
		add(bypassCase{target: "/pub", headers: []string{h + ": admin"}, status: 200, reach: "pub", gone: []string{h}})
	}
	add(bypassCase{name: "every spoofable header at once, named by Connection", target: "/admin/x", token: true, status: 200, reach: "admin",
		headers: append(prefixAll(spoofable[7:], ": admin"), "Connection: "+strings.Join(spoofable[7:], ", ")), gone: spoofable[11:]})
	add(bypassCase{name: "forwarding headers from an untrusted peer are replaced", target: "/pub", status: 200, reach: "pub",
		headers: []string{"X-Forwarded-For: 10.0.0.1", "X-Forwarded-Host: api.example.com", "X-Forwarded-Proto: https", "Forwarded: for=10.0.0.1;host=api.example.com;proto=https"},
		gone:    []string{"X-Forwarded-Host: api.example.com", "X-Forwarded-Proto: https", "X-Forwarded-For: 10.0.0.1", "Forwarded: for=10.0.0.1"}})
	// Malformed header lines are refused by net/http itself.
	refuse(400, "", "GET", "/pub", "X-Auth-Subject : admin")
	refuse(400, "", "GET", "/pub", "X-Auth-Subject\t: admin")
	refuse(400, "", "GET", "/pub", "X-Auth-Subject: ad\x00min")
	// An obs-folded continuation is part of the previous value (as
	// net/http reads it), never a header of its own.
	add(bypassCase{target: "/pub", headers: []string{"X-Note: a", " X-Auth-Subject: admin"}, status: 200, reach: "pub", gone: []string{"X-Auth-Subject"}})

	// Upgrades: only WebSocket, only where a route opts in; h2c never.
	add(bypassCase{name: "h2c upgrade is stripped", target: "/pub", headers: []string{"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"},
		status: 200, reach: "pub", gone: []string{"Upgrade", "HTTP2-Settings"}})
	add(bypassCase{name: "websocket upgrade on a route without websocket is stripped", target: "/pub",
		headers: []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
		status:  200, reach: "pub", gone: []string{"Upgrade"}})
	unauth("GET", "/admin/ws", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")

	// Credentials: removed before the upstream, never echoed or logged.
	add(bypassCase{name: "API key header on a public route", target: "/pub", headers: []string{"X-API-Key: " + corpusSecret}, status: 200, reach: "pub", gone: []string{"X-Api-Key"}})
	unauth("GET", "/admin/x", "Authorization: Bearer "+corpusSecret)
	unauth("GET", "/admin/x", "Authorization: Bearer "+corpusSecret+"."+corpusSecret+"."+corpusSecret)
	unauth("GET", "/admin/x", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+corpusSecret)))
	unauth("GET", "/admin/x?access_token="+corpusSecret)
	unauth("GET", "/admin/x?api_key="+corpusSecret+"&token="+corpusSecret)
	// ReverseProxy drops query pairs that do not parse (";"), so the
	// upstream reads the query as the gateway did.
	add(bypassCase{target: "/pub?a=1&API_KEY=" + corpusSecret + ";token=" + corpusSecret, status: 200, reach: "pub", wantURI: "/pub?a=1"})
	pub("/pub?api_key[]=" + corpusSecret + "&password=" + corpusSecret)

	// Credentials that are ambiguous or in the wrong place are refused;
	// spellings of the scheme that RFC 9110 allows are accepted.
	for _, hs := range [][]string{
		{"Authorization: Bearer {TOKEN}", "Authorization: Bearer garbage"},
		{"Authorization: Bearer garbage", "Authorization: Bearer {TOKEN}"},
		{"Authorization: Bearer {TOKEN}, Bearer garbage"},
		{"Authorization: Bearer\t{TOKEN}"},
		{"Authorization: Basic {TOKEN}"},
		{"Cookie: access_token={TOKEN}"},
		{"X-Auth-Subject: {TOKEN}"},
	} {
		unauth("GET", "/admin/x", hs...)
	}
	unauth("GET", "/admin/x?access_token={TOKEN}")
	for _, hs := range [][]string{{"Authorization: bearer {TOKEN}"}, {"Authorization: BEARER  {TOKEN}"}, {"Authorization: Bearer {TOKEN} "},
		{"Authorization: Bearer {TOKEN}", "X-Auth-Subject: root", "X-Auth-Subject: root2", "x_auth_subject: root"}} {
		add(bypassCase{target: "/admin/y", headers: hs, status: 200, reach: "admin", gone: []string{"X-Auth-Subject: root", "Authorization"}})
	}

	// HTTP/2 over TLS: the same checks on the same request, whatever the
	// protocol.
	for _, c := range []bypassCase{
		{target: "/admin/x", status: 401, slug: "unauthorized"},
		{target: "/admin/x", token: true, status: 200, reach: "admin"},
		{target: "/ADMIN", status: 400, slug: "path-ambiguous"},
		{target: "/account/", status: 400, slug: "path-ambiguous"},
		{target: "/%EF%BD%81dmin", status: 400, slug: "path-ambiguous"},
		{target: "/public/%2e%2e/admin", status: 400, slug: "bad-request"},
		{target: "/admin%2f", status: 400, slug: "path-encoded-separator"},
		{target: "/admin;x", status: 400, slug: "path-parameter"},
		{target: "/public/%EF%BC%8E%EF%BC%8E/admin", status: 400, slug: "path-ambiguous"},
		{target: "/x", headers: []string{"Host: API.EXAMPLE.COM."}, status: 401, slug: "unauthorized"},
		{target: "/x", headers: []string{"Host: api%2eexample.com"}, status: 400, slug: "invalid-host"},
		{target: "/x", headers: []string{"Host: [api.example.com]"}, status: 400, slug: "invalid-host"},
		{method: "get", target: "/admin", status: 501, slug: "method-not-implemented"},
		{method: "HEAD", target: "/admin/x", status: 401},
		{target: "/pub", headers: []string{"X-Forwarded-User: admin", "X-Auth-Subject: admin", "X-Real-IP: 10.0.0.1"}, status: 200, reach: "pub",
			gone: []string{"X-Forwarded-User", "X-Auth-Subject", "X-Real-IP"}},
	} {
		c.h2 = true
		add(c)
	}
	// HTTP/2 frames written by hand: what Go's client would never send.
	h2 := func(status int, slug, reach string, fields ...[2]string) {
		add(bypassCase{h2fields: fields, status: status, slug: slug, reach: reach})
	}
	get := func(path, authority string, more ...[2]string) [][2]string {
		return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", path}, {":authority", authority}}, more...)
	}
	h2(200, "", "pub", get("/pub", "gw.test")...)
	h2(401, "unauthorized", "", get("/pub", "api.example.com")...)
	// A Host field beside :authority that names another host (RFC 9113
	// §8.3.1): malformed, whichever of the two a route or policy reads.
	h2(400, "invalid-host", "", get("/pub", "gw.test", [2]string{"host", "api.example.com"})...)
	h2(400, "invalid-host", "", get("/admin/x", "api.example.com", [2]string{"host", "gw.test"})...)
	h2(400, "invalid-host", "", get("/pub", "gw.test", [2]string{"host", "gw.test"}, [2]string{"host", "gw.test"})...)
	h2(200, "", "pub", get("/pub", "gw.test", [2]string{"host", "GW.test"})...)
	h2(401, "unauthorized", "", [2]string{":method", "GET"}, [2]string{":scheme", "https"}, [2]string{":path", "/x"}, [2]string{"host", "api.example.com"})
	h2(400, "invalid-host", "", get("/pub", "api%2eexample.com")...)
	h2(400, "invalid-host", "", get("/pub", "[api.example.com]")...)
	h2(400, "path-ambiguous", "", get("/ADMIN", "gw.test")...)
	h2(400, "bad-request", "", get("/public/../admin", "gw.test")...)
	h2(400, "path-repeated-slash", "", get("//admin", "gw.test")...)
	h2(400, "path-fragment", "", get("/admin#x", "gw.test")...)
	h2(501, "method-not-implemented", "", [2]string{":method", "get"}, [2]string{":scheme", "https"}, [2]string{":path", "/admin"}, [2]string{":authority", "gw.test"})
	h2(501, "method-not-implemented", "", [2]string{":method", "CONNECT"}, [2]string{":authority", "api.example.com:443"})
	h2(400, "bad-request", "", [2]string{":method", "OPTIONS"}, [2]string{":scheme", "https"}, [2]string{":path", "*"}, [2]string{":authority", "gw.test"})
	add(bypassCase{h2fields: get("/pub", "gw.test", [2]string{"x_auth_subject", "admin"}, [2]string{"x-auth-subject", "admin"}, [2]string{"x-forwarded-user", "admin"}, [2]string{"x-real-ip", "10.0.0.1"}),
		status: 200, reach: "pub", gone: []string{"X-Auth-Subject", "X-Forwarded-User", "X-Real-Ip"}})
	// Connection-specific fields, upper-case names and a second :path are
	// malformed in HTTP/2; net/http refuses them before the gateway.
	for _, f := range [][2]string{{"connection", "x-auth-subject"}, {"upgrade", "h2c"}, {"transfer-encoding", "chunked"}, {"te", "trailers, x"}, {"keep-alive", "1"}, {"proxy-connection", "keep-alive"}} {
		h2(400, "", "", get("/pub", "gw.test", f)...)
	}
	for _, f := range [][2]string{{"X-Auth-Subject", "admin"}, {":path", "/admin"}, {"x-a", "a\r\nx-auth-subject: admin"}, {":protocol", "websocket"}} {
		h2(-1, "", "", get("/pub", "gw.test", f)...)
	}
	return cs
}

func prefixAll(names []string, suffix string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + suffix
	}
	return out
}

// corpusGateway starts the gateway of the corpus: a plain and a TLS
// listener, a real OpenID Provider, one recording upstream per route.
type corpusGateway struct {
	*testGateway
	plain, tlsAddr string
	h2             *http.Client
	ups            map[string]*corpusUpstream
	token          string
	idp            *testidp.Provider
}

func startCorpusGateway(t *testing.T) *corpusGateway {
	t.Helper()
	idp := testidp.Start(t)
	certFile, keyFile, pool := selfSigned(t)
	ups := map[string]*corpusUpstream{}
	target := func(name string) string {
		u := newCorpusUpstream(t, name)
		ups[name] = u
		return strconv.Quote(u.srv.URL)
	}
	tg := startGateway(t, `
listeners:
  - name: main
    address: "127.0.0.1:0"
  - name: tls
    address: "127.0.0.1:0"
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
admin:
  address: "127.0.0.1:0"
audit: {output: stderr}
identity_providers:
`+providerYAML("idp", idp, "")+`routes:
  - name: admin
    match: {path_prefix: /admin}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("admin")+`], preserve_host: true}
  - name: account
    match: {path: /account, methods: [GET]}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("account")+`], preserve_host: true}
  - name: reports
    match: {path: "/reports/{id}"}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("reports")+`], preserve_host: true}
  - name: apihost
    match: {hosts: [api.example.com], path_prefix: /}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("apihost")+`], preserve_host: true}
  - name: wild
    match: {hosts: ["*.internal.example.com"], path_prefix: /}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("wild")+`], preserve_host: true}
  - name: svc
    match: {path_prefix: /svc}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target("svc")+`], strip_prefix: /svc, add_prefix: /internal}
  - name: files
    public: true
    allow_encoded_slash: true
    match: {path_prefix: /files}
    upstream: {targets: [`+target("files")+`], preserve_host: true}
  - name: legacy
    public: true
    allow_path_params: true
    match: {path_prefix: /legacy}
    upstream: {targets: [`+target("legacy")+`], preserve_host: true}
  - name: pub
    public: true
    match: {path_prefix: /}
    upstream: {targets: [`+target("pub")+`], preserve_host: true}
`).serve()
	tg.waitReady(t)
	cg := &corpusGateway{testGateway: tg, ups: ups, plain: tg.Addr("main").String(), tlsAddr: tg.Addr("tls").String(),
		token: idp.Mint(t, map[string]any{"sub": "alice", "groups": []string{"suspended"}}), idp: idp}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true}
	cg.h2 = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return cg
}

// send sends c with the case id id and returns status, problem slug and body.
func (cg *corpusGateway) send(t *testing.T, c bypassCase, id string) (int, string, string) {
	t.Helper()
	// "{TOKEN}" stands for the valid token, wherever a case puts it.
	c.target = strings.ReplaceAll(c.target, "{TOKEN}", cg.token)
	headers := []string{"X-Case: " + id}
	for _, h := range c.headers {
		headers = append(headers, strings.ReplaceAll(h, "{TOKEN}", cg.token))
	}
	if c.token {
		headers = append(headers, "Authorization: Bearer "+cg.token)
	}
	if c.h2fields != nil {
		fields := append(c.h2fields, [2]string{"x-case", id})
		if c.token {
			fields = append(fields, [2]string{"authorization", "Bearer " + cg.token})
		}
		return cg.sendRawH2(t, fields)
	}
	if c.h2 {
		return cg.sendH2(t, c, headers)
	}
	conn, err := net.DialTimeout("tcp", cg.plain, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(c.method + " " + c.target + " HTTP/1.1\r\n")
	hasHost := false
	for _, h := range headers {
		hasHost = hasHost || strings.HasPrefix(strings.ToLower(h), "host:")
		b.WriteString(h + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: gw.test\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: c.method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, problemSlug(t, res, body), string(body)
}

func (cg *corpusGateway) sendH2(t *testing.T, c bypassCase, headers []string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, "https://"+cg.tlsAddr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = c.target // sent as :path exactly
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		v = strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	res, err := cg.h2.Do(req)
	if err != nil {
		t.Fatalf("h2: %v", err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("answered over %s, not HTTP/2", res.Proto)
	}
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, problemSlug(t, res, body), string(body)
}

// sendRawH2 opens a TLS connection with ALPN h2, writes the preface, an
// empty SETTINGS frame and one HEADERS frame for stream 1 with fields as
// HPACK literals, and reads frames until the stream ends. The status is the
// problem body's, 200 for an upstream's answer, -1 for a reset.
func (cg *corpusGateway) sendRawH2(t *testing.T, fields [][2]string) (int, string, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", cg.tlsAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // a test server
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var block []byte
	for _, f := range fields {
		block = append(block, 0x00) // literal without indexing, new name
		block = appendHPACKString(block, f[0])
		block = appendHPACKString(block, f[1])
	}
	msg := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	msg = appendH2Frame(msg, 0x4, 0, 0, nil)
	msg = appendH2Frame(msg, 0x1, 0x4|0x1, 1, block) // HEADERS, END_HEADERS|END_STREAM
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(conn, hdr); err != nil {
			t.Fatalf("h2: reading a frame: %v (so far %q)", err, body.String())
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(conn, payload); err != nil {
			t.Fatal(err)
		}
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		switch typ, flags := hdr[3], hdr[4]; {
		case typ == 0x3 && stream == 1, typ == 0x7: // RST_STREAM, GOAWAY
			return -1, "", body.String()
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
			if _, err := conn.Write(appendH2Frame(nil, 0x4, 0x1, 0, nil)); err != nil {
				t.Fatal(err)
			}
		case stream != 1:
		case typ == 0x0:
			body.Write(payload)
			if flags&0x1 != 0 {
				return h2Outcome(t, body.String())
			}
		case typ == 0x1 && flags&0x1 != 0:
			return h2Outcome(t, body.String())
		}
	}
}

func h2Outcome(t *testing.T, body string) (int, string, string) {
	t.Helper()
	if strings.HasPrefix(body, "reached ") {
		return 200, "", body
	}
	var p struct {
		Type   string
		Status int
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		// net/http's own plain-text answers to malformed requests (400).
		return 400, "", body
	}
	return p.Status, strings.TrimPrefix(p.Type, "urn:gatehouse:problem:"), body
}

func appendHPACKString(b []byte, s string) []byte {
	if len(s) >= 127 {
		panic("appendHPACKString: test field too long")
	}
	return append(append(b, byte(len(s))), s...)
}

func appendH2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

func problemSlug(t *testing.T, res *http.Response, body []byte) string {
	t.Helper()
	if res.Header.Get("Content-Type") != "application/problem+json" || res.Request != nil && res.Request.Method == "HEAD" || len(body) == 0 {
		return ""
	}
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body is not JSON: %s", body)
	}
	return strings.TrimPrefix(p.Type, "urn:gatehouse:problem:")
}

// TestBypassCorpus runs the corpus (see the top of this file).
func TestBypassCorpus(t *testing.T) {
	cg := startCorpusGateway(t)
	corpus := bypassCorpus()
	var n atomic.Int64
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			id := "b" + strconv.FormatInt(n.Add(1), 10)
			status, slug, body := cg.send(t, c, id)
			if strings.Contains(body, corpusSecret) {
				t.Errorf("the response echoes the credential: %s", body)
			}
			reached := ""
			var seen corpusSeen
			for name, u := range cg.ups {
				if s, ok := u.get(id); ok {
					reached, seen = name, s
				}
			}
			credential := c.token || strings.Contains(c.target+strings.Join(c.headers, "\n"), "{TOKEN}")
			if !credential && reached != "" && slicesContains(protectedUpstreams, reached) {
				t.Fatalf("BYPASS: a request without a credential reached the %s upstream as %s %s (host %s)", reached, seen.Method, seen.URI, seen.Host)
			}
			if status != c.status || c.slug != "" && slug != c.slug {
				t.Fatalf("status %d %q, want %d %q (reached %q)", status, slug, c.status, c.slug, reached)
			}
			if reached != c.reach {
				t.Fatalf("reached %q, want %q", reached, c.reach)
			}
			if reached == "" {
				return
			}
			wantMethod, wantURI := c.method, c.target
			if c.wantMethod != "" {
				wantMethod = c.wantMethod
			}
			if c.wantURI != "" {
				wantURI = c.wantURI
			}
			if seen.Method != wantMethod || seen.URI != wantURI {
				t.Fatalf("upstream got %s %q, want %s %q", seen.Method, seen.URI, wantMethod, wantURI)
			}
			if c.wantHost != "" && seen.Host != c.wantHost {
				t.Fatalf("upstream got Host %q, want %q", seen.Host, c.wantHost)
			}
			for _, g := range c.gone {
				name, value, hasValue := strings.Cut(g, ": ")
				for _, hs := range []http.Header{seen.Header, seen.Trailer} {
					for k, vs := range hs {
						if !strings.EqualFold(strings.ReplaceAll(k, "_", "-"), strings.ReplaceAll(name, "_", "-")) {
							continue
						}
						if !hasValue || slicesContains(vs, value) || strings.Contains(strings.Join(vs, ","), value) {
							t.Fatalf("upstream received %s: %q", k, vs)
						}
					}
				}
			}
			if strings.Contains(fmt.Sprint(seen.Header), corpusSecret) {
				t.Fatalf("the credential reached the upstream: %v", seen.Header)
			}
		})
	}
	cg.Flush()
	for name, log := range map[string]string{"access log": cg.accessLog.String(), "audit log": cg.stderr.String(), "operational log": cg.opLog.String()} {
		if strings.Contains(log, corpusSecret) || strings.Contains(log, cg.token) {
			t.Errorf("a credential is in the %s", name)
		}
	}
	if len(corpus) < 300 {
		t.Errorf("the corpus has only %d cases", len(corpus))
	}
	t.Logf("%d cases", len(corpus))
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSmugglingCorpus sends, on one plain connection each, requests whose
// framing could be read two ways (Content-Length with Transfer-Encoding in
// every spelling, obfuscated Transfer-Encoding, conflicting lengths, broken
// chunks, pipelines, Expect, bodies on GET). The gateway must answer
// exactly the expected sequence, and a request hidden in another's bytes
// (X-Case: hidden) must never be served as a request.
func TestSmugglingCorpus(t *testing.T) {
	cg := startCorpusGateway(t)
	const hidden = "GET /admin/x HTTP/1.1\r\nHost: gw.test\r\nX-Case: hidden\r\n\r\n"
	const last = "GET /pub HTTP/1.1\r\nHost: gw.test\r\nX-Case: last\r\nConnection: close\r\n\r\n"
	post := func(headers string, body string) string {
		return "POST /pub HTTP/1.1\r\nHost: gw.test\r\nX-Case: outer\r\n" + headers + "\r\n" + body
	}
	both := "0\r\n\r\n" + hidden
	var cases []struct {
		name, raw string
		want      []int // statuses in order; the connection must then be closed
	}
	add := func(name, raw string, want ...int) {
		cases = append(cases, struct {
			name, raw string
			want      []int
		}{name, raw, want})
	}
	for _, h := range []string{
		"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
		"content-length: 5\r\ntransfer-encoding: chunked\r\n",
		"CONTENT-LENGTH: 5\r\nTRANSFER-ENCODING: CHUNKED\r\n",
		"Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n",
		"Content-Length: 5\r\nTransfer-Encoding:  chunked \r\n",
		"Content-Length:\r\n 5\r\nTransfer-Encoding: chunked\r\n",
		"Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n",
		"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
		"Content-Length: 05\r\nTransfer-Encoding: chunked\r\n",
		"Content-Length: 5\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
	} {
		add("CL and TE: "+h, post(h, both), 400)
		add("CL and TE, bare LF: "+h, strings.ReplaceAll(post(h, ""), "\r\n", "\n")+both, 400)
	}
	add("TE in HTTP/1.0", "POST /pub HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"+both, 400)
	for _, te := range []string{"xchunked", "chunked, identity", "identity, chunked", "gzip, chunked", "chunked\r\nTransfer-Encoding: chunked", "identity", "chunke", "chunked;q=1"} {
		add("TE "+te, post("Transfer-Encoding: "+te+"\r\n", both), 501)
	}
	for _, cl := range []string{"5\r\nContent-Length: 6", "5, 5", "+5", "-5", "0x5", "5.0", "1_0", " ", "99999999999999999999"} {
		add("CL "+cl, post("Content-Length: "+cl+"\r\n", "hello"+hidden), 400)
	}
	for _, chunk := range []string{"0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n", "5\r\nhelloX\r\n0\r\n\r\n", "ffffffffffffffffff\r\n", "5\r\nhello\r\n0\r\nX\r\n\r\n"} {
		add("bad chunk "+strconv.Quote(chunk), post("Transfer-Encoding: chunked\r\n", chunk+hidden), 400)
	}
	add("chunk with extension and trailers", post("Transfer-Encoding: chunked\r\n", "5;ext=1\r\nhello\r\n0\r\nX-Auth-Subject: admin\r\n\r\n")+last, 200, 200)
	add("pipeline", "GET /pub HTTP/1.1\r\nHost: gw.test\r\n\r\n"+hidden+"GET /pub HTTP/1.1\r\nHost: gw.test\r\n\r\n"+last, 200, 401, 200, 200)
	add("pipeline over HTTP/1.0 keep-alive", "GET /pub HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"+hidden+last, 200, 401, 200)
	add("request in a GET body", "GET /pub HTTP/1.1\r\nHost: gw.test\r\nContent-Length: "+strconv.Itoa(len(hidden))+"\r\n\r\n"+hidden+last, 200, 200)
	add("request in a refused request's body", "POST /admin/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: "+strconv.Itoa(len(hidden))+"\r\n\r\n"+hidden+last, 401, 200)
	add("Expect 100-continue refused", "POST /admin/x HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(hidden))+"\r\n\r\n"+hidden, 401)
	add("PRI preface on the plain listener (h2c prior knowledge)", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"+hidden, 501)
	add("HTTP/2.0 request line", "GET /pub HTTP/2.0\r\nHost: gw.test\r\n\r\n"+hidden, 505)
	add("HTTP/0.9 request line", "GET /pub\r\n\r\n"+hidden, 400)
	add("h2c upgrade is not taken", "GET /pub HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"+hidden+last, 200, 401, 200)
	add("CONNECT tunnel", "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"+hidden+last, 501, 401, 200)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", cg.plain, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, c.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			var got []int
			for {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("the connection stayed open after %v", got)
					}
					break // closed
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusContinue {
					continue
				}
				got = append(got, res.StatusCode)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("answers %v, want %v", got, c.want)
			}
			for name, u := range cg.ups {
				if s, ok := u.get("hidden"); ok {
					t.Fatalf("the hidden request reached the %s upstream as %s %s", name, s.Method, s.URI)
				}
				if s, ok := u.get("outer"); ok && strings.Contains(s.Body, "X-Case: hidden") && c.want[0] != 200 {
					t.Fatalf("a refused request's body reached the %s upstream", name)
				}
			}
		})
	}
	t.Logf("%d cases", len(cases))
}

// TestHostileClaimsCorpus: validly signed tokens whose claims cannot be
// carried by the identity headers unambiguously are refused (401, audit
// reason identity_unrepresentable), never passed on with a header silently
// dropped (a backend's "suspended" deny-list would then see no groups) or
// split differently by the backend.
func TestHostileClaimsCorpus(t *testing.T) {
	cg := startCorpusGateway(t)
	type want struct {
		status int
		sub    string
		groups string
		roles  string // checked when set
	}
	for i, c := range []struct {
		name   string
		claims map[string]any
		want   want
	}{
		{"plain", map[string]any{"sub": "bob", "groups": []string{"suspended", "staff"}}, want{200, "bob", "suspended,staff", ""}},
		{"group with a line break beside suspended", map[string]any{"sub": "bob", "groups": []string{"suspended", "x\ny"}}, want{401, "", "", ""}},
		{"group with a NUL", map[string]any{"sub": "bob", "groups": []string{"suspended", "x\x00"}}, want{401, "", "", ""}},
		// List elements are escaped, never split or trimmed by the backend.
		{"group with a comma", map[string]any{"sub": "bob", "groups": []string{"staff,admin"}}, want{200, "bob", "staff%2Cadmin", ""}},
		{"group padded with spaces", map[string]any{"sub": "bob", "groups": []string{" admin "}}, want{200, "bob", "%20admin%20", ""}},
		{"empty group (dropped by authentication)", map[string]any{"sub": "bob", "groups": []string{"suspended", ""}}, want{200, "bob", "suspended", ""}},
		{"group with a tab", map[string]any{"sub": "bob", "groups": []string{"adm\tin"}}, want{200, "bob", "adm%09in", ""}},
		{"group with a DEL", map[string]any{"sub": "bob", "groups": []string{"admin\x7f"}}, want{401, "", "", ""}},
		{"role with a comma", map[string]any{"sub": "bob", "realm_access": map[string]any{"roles": []string{"user,admin"}}}, want{200, "bob", "", "user%2Cadmin"}},
		{"subject with CRLF and a header", map[string]any{"sub": "bob\r\nX-Auth-Groups: admin"}, want{401, "", "", ""}},
		{"subject with a leading space", map[string]any{"sub": " admin"}, want{401, "", "", ""}},
		{"subject with a trailing space", map[string]any{"sub": "admin "}, want{401, "", "", ""}},
		{"subject with a NUL", map[string]any{"sub": "admin\x00bob"}, want{401, "", "", ""}},
		{"subject with inner spaces", map[string]any{"sub": "bob smith"}, want{200, "bob smith", "", ""}},
		{"subject with a comma", map[string]any{"sub": "smith,bob"}, want{200, "smith,bob", "", ""}},
		{"non-ASCII subject", map[string]any{"sub": "b\u00f6b"}, want{200, "b\u00f6b", "", ""}},
		{"one group as a string", map[string]any{"sub": "bob", "groups": "admin"}, want{200, "bob", "admin", ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := cg.idp.Mint(t, c.claims)
			id := "claims" + strconv.Itoa(i)
			status, _, _ := cg.send(t, bypassCase{method: "GET", target: "/admin/x", headers: []string{"Authorization: Bearer " + tok}}, id)
			seen, reached := cg.ups["admin"].get(id)
			if status != c.want.status || reached != (c.want.status == 200) {
				t.Fatalf("status %d, reached %v; want %d", status, reached, c.want.status)
			}
			if reached {
				if got := strings.Join(seen.Header.Values("X-Auth-Subject"), "|"); got != c.want.sub {
					t.Errorf("X-Auth-Subject %q, want %q", got, c.want.sub)
				}
				if got := strings.Join(seen.Header.Values("X-Auth-Groups"), "|"); got != c.want.groups {
					t.Errorf("X-Auth-Groups %q, want %q", got, c.want.groups)
				}
				if got := strings.Join(seen.Header.Values("X-Auth-Roles"), "|"); c.want.roles != "" && got != c.want.roles {
					t.Errorf("X-Auth-Roles %q, want %q", got, c.want.roles)
				}
				return
			}
			evs := cg.auditEvents(t)
			last := evs[len(evs)-1]
			// Control characters are refused by the JWT method itself
			// (token_malformed); what it lets through but a header cannot
			// carry, by the authenticate stage (identity_unrepresentable).
			if r := last["reason"]; last["request_id"] == nil || last["outcome"] != "deny" || r != "identity_unrepresentable" && r != "token_malformed" {
				t.Fatalf("audit event %v, want a deny with reason identity_unrepresentable or token_malformed", last)
			}
		})
	}
}
