package gateway

import (
	"bufio"
	"encoding/json"
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

// recording is an upstream that remembers every request it received, by
// the X-Case header each test request carries.
type recording struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]seenRequest
}

type seenRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
}

func newRecording(t *testing.T) *recording {
	t.Helper()
	rec := &recording{seen: map[string]seenRequest{}}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rec.mu.Lock()
		rec.seen[r.Header.Get("X-Case")] = seenRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()}
		rec.mu.Unlock()
		w.Header().Set("X-Reached", "1")
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recording) get(id string) (seenRequest, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s, ok := rec.seen[id]
	return s, ok
}

// rawExchange sends one request exactly as written (net/http's client
// would clean the target, refuse raw bytes and canonicalise names) and
// returns the response status and problem type slug ("" for none).
func rawExchange(t *testing.T, addr, method, target string, headers []string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
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
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %q: reading response: %v", method, target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	slug := ""
	if res.Header.Get("Content-Type") == "application/problem+json" {
		var p struct{ Type string }
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("problem body is not JSON: %s", body)
		}
		slug = strings.TrimPrefix(p.Type, "urn:gatehouse:problem:")
	}
	return res.StatusCode, slug
}

// hostileCase is one request of the corpus. status 200 means it must reach
// the upstream unchanged (method, target, and the headers in keep); any
// other status means it must be refused with that status (and slug, when
// not "") and never reach the upstream.
type hostileCase struct {
	name    string
	method  string
	target  string
	headers []string
	status  int
	slug    string
	// For allowed requests: headers the upstream must not receive, and
	// the method / target it must receive if not the ones sent.
	gone       []string
	wantMethod string
	wantTarget string
	wantHost   string
}

func hygieneCorpus() []hostileCase {
	var cs []hostileCase
	refuse := func(class, slug string, status int, method, target string, headers ...string) {
		cs = append(cs, hostileCase{name: class + " " + method + " " + strconv.Quote(target), method: method, target: target, headers: headers, status: status, slug: slug})
	}
	allow := func(c hostileCase) {
		if c.method == "" {
			c.method = "GET"
		}
		c.status = 200
		c.name = "allowed " + c.method + " " + strconv.Quote(c.target) + " " + strings.Join(c.headers, "|")
		cs = append(cs, c)
	}

	// Control characters, percent-encoded (raw ones are refused by
	// net/http's request-line parser; a few are sent to prove it).
	for c := 0; c < 0x20; c++ {
		refuse("control", "path-control-character", 400, "GET", fmt.Sprintf("/api/a%%%02X", c))
		refuse("control", "path-control-character", 400, "GET", fmt.Sprintf("/%%%02xadmin", c))
	}
	for _, p := range []string{"/api/%7F", "/api/%7f/x", "/admin%00.json", "/public%00/../admin", "/%00", "/a%0D%0AX-Injected:%201", "/files/%00", "/legacy/a%00;b"} {
		refuse("control", "path-control-character", 400, "GET", p)
	}
	for _, p := range []string{"/api/\x00", "/api/\x01x", "/api/\x7f", "/a\x1b[0m"} {
		refuse("raw control", "", 400, "GET", p)
	}

	// Backslash, raw (always refused) and encoded (refused unless the
	// route allows encoded separators).
	for _, p := range []string{`/a\b`, `/\admin`, `/public\..\admin`, `/api\`, `\admin`, `/files/a\b`, `/legacy/x\y`, `/a/\/b`} {
		status, slug := 400, "path-backslash"
		if p == `\admin` {
			slug = "" // not even a path: net/http refuses it
		}
		refuse("raw backslash", slug, status, "GET", p)
	}
	for _, p := range []string{"/a%5Cb", "/a%5cb", "/public%5Cx%5Cadmin", "/%5Cadmin", "/api/x%5C", "/legacy/%5c", "/a%5C%5Cb"} {
		refuse("encoded backslash", "path-encoded-separator", 400, "GET", p)
	}

	// Encoded slash.
	for _, p := range []string{"/a%2Fb", "/a%2fb", "/api%2Fadmin", "/api/x%2F", "/legacy/a%2Fb", "/dav/a%2fb", "/override/%2Fx", "/%2F/admin", "/api/%2F%2F"} {
		refuse("encoded slash", "path-encoded-separator", 400, "GET", p)
	}
	for _, p := range []string{"/public%2F..%2Fadmin", "/public%2f.%2fadmin", "/api/%2E%2E/admin", "/api/%2e%2e/admin", "/api/.%2e/admin", "/api/%2e/admin", "/api/..", "/api/./x", "/files/a%2F..%2Fb",
		"/legacy/..;/admin", "/legacy/..;x=1/admin", "/legacy/.;/x", "/legacy/%2e%2e;/admin", "/files/%5C..%5Cadmin", "/files/a%5C..", "/files/..%5C"} {
		refuse("dot segment", "bad-request", 400, "GET", p)
	}

	// Path parameters.
	for _, p := range []string{"/a;b", "/api;jsessionid=1/x", "/public;/../admin", "/admin;", "/api/x;y=z", "/a%3Bb", "/a%3bb", "/files/a;b", "/dav/a;b"} {
		status, slug := 400, "path-parameter"
		if strings.Contains(p, "..") {
			slug = "bad-request"
		}
		refuse("path parameter", slug, status, "GET", p)
	}

	// Double encoding of ".", "/", "\", "%" and control characters.
	for _, enc := range []string{"2e", "2E", "2f", "2F", "5c", "5C", "25", "00", "0a", "0D", "7f", "c0", "C0%25AE", "e0", "ff"} {
		refuse("double encoding", "path-double-encoding", 400, "GET", "/api/%25"+enc+"x")
		refuse("double encoding", "path-double-encoding", 400, "GET", "/files/%25"+enc)
	}
	for _, p := range []string{"/api/%252e%252e/admin", "/public/%252E%252E%252Fadmin", "/api/%25%32%65", "/api/%25%32%46", "/api/%25%35%63", "/legacy/%252f", "/a%25252e"} {
		refuse("double encoding", "path-double-encoding", 400, "GET", p)
	}
	for _, p := range []string{"/api/%%32%65", "/api/%2", "/api/%zz", "/api/%%"} {
		refuse("broken escape", "", 400, "GET", p)
	}

	// Invalid and overlong UTF-8, encoded and raw.
	for _, p := range []string{"/%C0%AE%C0%AE/admin", "/api/%C0%AF", "/api/%E0%80%AE", "/api/%FF", "/api/%80", "/api/%C3", "/api/%ED%A0%80", "/api/%F8%88%80%80%80", "/api/%C1%9C", "/api/%F4%90%80%80", "/api/%FE%FF", "/files/%C0%AE"} {
		refuse("utf-8", "path-invalid-utf8", 400, "GET", p)
	}
	for _, p := range []string{"/api/\xc0\xae", "/api/\xff", "/api/\xe0\x80\xae", "/api/\xc3(", "/\xed\xa0\x80"} {
		refuse("raw utf-8", "path-invalid-utf8", 400, "GET", p)
	}

	// Repeated slashes (refused by default).
	for _, p := range []string{"//admin", "/api//x", "/api///x", "/a//", "/files//a", "/files/%2F//", "//", "/legacy//;", "/api/x//"} {
		refuse("repeated slash", "path-repeated-slash", 400, "GET", p)
	}

	// A raw "#" (a browser never sends one; a backend may cut the path).
	for _, p := range []string{"/admin#/../public", "/api/x#y", "/#", "/files/a#b"} {
		refuse("fragment", "path-fragment", 400, "GET", p)
	}

	// Methods outside the allow-list.
	for _, m := range []string{"get", "Get", "gET", "post", "Post", "head", "delete", "options", "patch", "put",
		"TRACE", "TRACK", "DEBUG", "PURGE", "FOO", "GETS", "G3T", "PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
		"PROPPATCH", "SEARCH", "REPORT", "BIND", "M-SEARCH"} {
		refuse("method", "method-not-implemented", 501, m, "/api/x")
	}
	refuse("method", "method-not-implemented", 501, "CONNECT", "gw.test:443")
	for _, m := range []string{"COPY", "propfind", "TRACE"} {
		refuse("extension method on a route that does not list it", "method-not-implemented", 501, m, "/dav/x")
	}

	// Hosts.
	for _, h := range []string{"Host: a..b", "Host: .gw.test", "Host: gw.test..", "Host: gw..test:8080",
		"Host: 127.1", "Host: 0x7f.0.0.1", "Host: 2130706433", "Host: 127.000.0.1:80", "Host: [::1%25lo]"} {
		refuse("host", "invalid-host", 400, "GET", "/api/x", h)
	}

	// Method overrides that disagree, on a route that honours them.
	refuse("override", "ambiguous-method-override", 400, "POST", "/override/x", "X-HTTP-Method-Override: DELETE", "X-HTTP-Method: PUT")
	refuse("override", "ambiguous-method-override", 400, "POST", "/override/x", "X-HTTP-Method-Override: DELETE", "X-HTTP-Method-Override: PUT")

	// What reaches the upstream, unchanged.
	for _, p := range []string{"/api/x", "/api/a%20b", "/api/a%41b", "/api/caf%C3%A9", "/api/%E2%82%AC", "/api/a-b_c~d",
		"/api/a.b", "/.well-known/openid-configuration", "/api/x/", "/api/x?a=1&a=2", "/api/a%3Fb", "/api/a%23b", "/api/a%25b",
		"/api/a%2541", "/api/a@b:c,d=e+f!$&'()*", "/api/x?q=%2F%5C..%00%25%2e", "/api/%F0%9F%98%80", "/"} {
		allow(hostileCase{target: p})
	}
	// Raw UTF-8 arrives percent-encoded (Go's proxy writes a valid URI).
	allow(hostileCase{target: "/api/caf\xc3\xa9", wantTarget: "/api/caf%C3%A9"})
	for _, p := range []string{"/files/a%2Fb", "/files/a%2fb%2F", "/files/a%5Cb", "/files/x/%2F"} {
		allow(hostileCase{target: p}) // allow_encoded_slash
	}
	refuse("path parameter in the segment a prefix route needs", "path-parameter", 400, "GET", "/legacy;jsessionid=1/x")
	for _, p := range []string{"/legacy/a;b", "/legacy/;jsessionid=1/x", "/legacy/x;y=z"} {
		allow(hostileCase{target: p}) // allow_path_params
	}
	for _, m := range []string{"PROPFIND", "MKCOL", "GET", "HEAD", "OPTIONS"} {
		allow(hostileCase{method: m, target: "/dav/x"}) // extension methods listed by the route
	}
	// An extension method goes to the route that lists it, past a more
	// specific one that allows any method.
	allow(hostileCase{method: "PROPFIND", target: "/dav/any/x"})
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		allow(hostileCase{method: m, target: "/api/x"})
	}

	// Headers removed on the way.
	overrides := []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "x-http-method-override", "X-HTTP-METHOD", "x-method-override"}
	for _, h := range overrides {
		allow(hostileCase{method: "POST", target: "/api/x", headers: []string{h + ": DELETE"}, gone: []string{h}})
		allow(hostileCase{method: "GET", target: "/override/x", headers: []string{h + ": DELETE"}, gone: []string{h}}) // only a POST is overridden
	}
	for _, h := range overrides[:3] {
		allow(hostileCase{method: "POST", target: "/override/x", headers: []string{h + ": DELETE"}, gone: []string{h}, wantMethod: "DELETE"})
		allow(hostileCase{method: "POST", target: "/override/x", headers: []string{h + ": PROPFIND"}, gone: []string{h}}) // not an accepted method: stays a POST
	}
	allow(hostileCase{method: "POST", target: "/override/x", headers: []string{"X-HTTP-Method-Override: PATCH", "X-Method-Override: PATCH"}, gone: overrides[:3], wantMethod: "PATCH"})
	for _, h := range []string{"X-Real-IP", "x-real-ip", "True-Client-IP", "X-Client-IP", "Client-IP", "X-Cluster-Client-IP", "CF-Connecting-IP",
		"Fastly-Client-IP", "X-Original-URL", "x-original-url", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Server", "X-Original-Host",
		"X-Host", "X-Forwarded-Prefix", "X-Forwarded-Port", "X-Original-Method"} {
		allow(hostileCase{target: "/api/x", headers: []string{h + ": /admin"}, gone: []string{h}})
	}
	for _, h := range []string{"X_Auth_Subject", "X_API_Key", "x_real_ip", "X-Auth_Subject", "Foo_Bar", "_", "X_HTTP_Method_Override"} {
		allow(hostileCase{target: "/api/x", headers: []string{h + ": admin"}, gone: []string{h}})
	}
	for _, h := range []string{"X-API-Key", "x-api-key", "X-Api-Key", "X-API-KEY"} {
		allow(hostileCase{target: "/api/x", headers: []string{h + ": gate_live_secret"}, gone: []string{h}})
	}
	for h, want := range map[string]string{"gw.test.": "gw.test", "gw.test.:8080": "gw.test:8080", "GW.TEST.:80": "gw.test:80",
		"Api.Example.COM": "api.example.com", "gw.test": "gw.test", "127.0.0.1:8080": "127.0.0.1:8080", "[::1]:8080": "[::1]:8080"} {
		allow(hostileCase{target: "/api/x", headers: []string{"Host: " + h}, wantHost: want})
	}
	return cs
}

// TestHostileRequestCorpus sends every request of the corpus, byte for
// byte over TCP, through a gateway with a recording upstream: each refused
// one gets its status and problem type and never reaches the upstream;
// each allowed one reaches it unchanged, minus the headers hygiene removes.
func TestHostileRequestCorpus(t *testing.T) {
	rec := newRecording(t)
	target := strconv.Quote(rec.URL)
	tg := startGateway(t, header+`routes:
  - name: files
    public: true
    allow_encoded_slash: true
    match: {path_prefix: /files}
    upstream: {targets: [`+target+`], preserve_host: true}
  - name: legacy
    public: true
    allow_path_params: true
    match: {path_prefix: /legacy}
    upstream: {targets: [`+target+`], preserve_host: true}
  - name: dav
    public: true
    match: {path_prefix: /dav, methods: [GET, PROPFIND, MKCOL, OPTIONS]}
    upstream: {targets: [`+target+`], preserve_host: true}
  - name: dav-any
    public: true
    match: {path_prefix: /dav/any}
    upstream: {targets: [`+target+`], preserve_host: true}
  - name: override
    public: true
    method_override: true
    match: {path_prefix: /override}
    upstream: {targets: [`+target+`], preserve_host: true}
  - name: all
    public: true
    match: {path_prefix: /}
    upstream: {targets: [`+target+`], preserve_host: true}
`).serve()
	addr := strings.TrimPrefix(tg.url, "http://")
	var n atomic.Int64
	corpus := hygieneCorpus()
	refused := 0
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			id := strconv.FormatInt(n.Add(1), 10)
			status, slug := rawExchange(t, addr, tc.method, tc.target, append([]string{"X-Case: " + id}, tc.headers...))
			seen, reached := rec.get(id)
			if tc.status != 200 {
				refused++
				if reached {
					t.Fatalf("refused request reached the upstream as %s %s", seen.Method, seen.RequestURI)
				}
				if status != tc.status || tc.slug != "" && slug != tc.slug {
					t.Fatalf("status %d %q, want %d %q", status, slug, tc.status, tc.slug)
				}
				return
			}
			if status != 200 || !reached {
				t.Fatalf("status %d %q, reached %v; want it forwarded", status, slug, reached)
			}
			wantMethod, wantTarget := tc.method, tc.target
			if tc.wantMethod != "" {
				wantMethod = tc.wantMethod
			}
			if tc.wantTarget != "" {
				wantTarget = tc.wantTarget
			}
			if seen.Method != wantMethod || seen.RequestURI != wantTarget {
				t.Fatalf("upstream got %s %q, want %s %q", seen.Method, seen.RequestURI, wantMethod, wantTarget)
			}
			if tc.wantHost != "" && seen.Host != tc.wantHost {
				t.Fatalf("upstream got Host %q, want %q", seen.Host, tc.wantHost)
			}
			for _, g := range tc.gone {
				for k := range seen.Header {
					if strings.EqualFold(k, g) || strings.EqualFold(strings.ReplaceAll(k, "_", "-"), strings.ReplaceAll(g, "_", "-")) {
						t.Fatalf("upstream received %s: %q", k, seen.Header[k])
					}
				}
			}
		})
	}
	if len(corpus) < 300 {
		t.Fatalf("the corpus has only %d requests", len(corpus))
	}
	t.Logf("%d requests, %d refused", len(corpus), refused)
}

// TestHygieneSwitches: the global switches change what is refused.
func TestHygieneSwitches(t *testing.T) {
	rec := newRecording(t)
	tg := startGateway(t, header+`request_hygiene:
  repeated_slashes: merge
  underscore_headers: refuse
  allowed_methods: [GET, HEAD, TRACE]
routes:
`+routeYAML("all", "{path_prefix: /}", "{targets: ["+strconv.Quote(rec.URL)+"]}")).serve()
	addr := strings.TrimPrefix(tg.url, "http://")
	for _, tc := range []struct {
		name, method, target, header string
		status                       int
		slug, upstreamTarget         string
	}{
		{"merged", "GET", "//a///b//?x=1", "", 200, "", "/a/b/?x=1"},
		{"merged with escapes", "GET", "/a//%41//b", "", 200, "", "/a/%41/b"},
		{"encoded slash is not merged away", "GET", "/a//%2F", "", 400, "path-encoded-separator", ""},
		{"merging cannot make dot segments pass", "GET", "/a//..//b", "", 400, "bad-request", ""},
		{"underscore refused", "GET", "/a", "X_User: admin", 400, "underscore-header", ""},
		{"TRACE allowed", "TRACE", "/a", "", 200, "", "/a"},
		{"POST not allowed", "POST", "/a", "", 501, "method-not-implemented", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := []string{"X-Case: " + tc.name}
			if tc.header != "" {
				hs = append(hs, tc.header)
			}
			status, slug := rawExchange(t, addr, tc.method, tc.target, hs)
			seen, reached := rec.get(tc.name)
			if status != tc.status || slug != tc.slug {
				t.Fatalf("status %d %q, want %d %q", status, slug, tc.status, tc.slug)
			}
			if reached != (tc.status == 200) || reached && seen.RequestURI != tc.upstreamTarget {
				t.Fatalf("reached %v as %q, want %q", reached, seen.RequestURI, tc.upstreamTarget)
			}
		})
	}
}

// TestHeadIsGetThroughGateway: HEAD /reports/1 is routed, authenticated
// and authorized as GET /reports/1 would be, although a public catch-all
// would accept it; the 405 Allow list names HEAD where GET is allowed.
func TestHeadIsGetThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	rec := newRecording(t)
	target := strconv.Quote(rec.URL)
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+`routes:
  - name: reports
    match: {path: "/reports/{id}", methods: [GET]}
    authenticate: {methods: [jwt]}
    authorize:
      methods:
        - methods: [GET]
          scopes: {all_of: [reports:read]}
    upstream: {targets: [`+target+`]}
  - name: exports
    match: {path: /exports, methods: [GET, PUT]}
    authenticate: {methods: [jwt]}
    upstream: {targets: [`+target+`]}
  - name: public
    public: true
    match: {path_prefix: /, methods: [GET, POST]}
    upstream: {targets: [`+target+`]}
`).serve()
	tg.waitReady(t)
	reader := idp.Mint(t, map[string]any{"sub": "u1", "scope": "reports:read"})
	other := idp.Mint(t, map[string]any{"sub": "u2", "scope": "profile"})
	var n atomic.Int64
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		allow                     string
	}{
		{"HEAD without a token", "HEAD", "/reports/1", "", 401, ""},
		{"GET without a token", "GET", "/reports/1", "", 401, ""},
		{"HEAD without the GET scope", "HEAD", "/reports/1", other, 403, ""},
		{"GET without the GET scope", "GET", "/reports/1", other, 403, ""},
		{"HEAD with the scope", "HEAD", "/reports/1", reader, 200, ""},
		{"GET with the scope", "GET", "/reports/1", reader, 200, ""},
		{"other paths stay public", "HEAD", "/about", "", 200, ""},
		{"405 lists HEAD", "DELETE", "/exports", reader, 405, "GET, HEAD, POST, PUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strconv.FormatInt(n.Add(1), 10)
			req, _ := http.NewRequest(tc.method, tg.url+tc.path, nil)
			req.Header.Set("X-Case", id)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, body := do(t, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			seen, reached := rec.get(id)
			if reached != (tc.status == 200) {
				t.Fatalf("reached the upstream: %v", reached)
			}
			if reached && seen.Method != tc.method {
				t.Fatalf("upstream got %s, want %s", seen.Method, tc.method)
			}
			if got := res.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestPolicyReadsAreUnambiguous: a header or query parameter that the
// route's policy reads is refused when sent twice (or in a query that does
// not parse one way), so the backend receives the value that was checked.
func TestPolicyReadsAreUnambiguous(t *testing.T) {
	idp := testidp.Start(t)
	rec := newRecording(t)
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+`routes:
  - name: tenants
    match: {path_prefix: /t}
    authenticate: {methods: [jwt]}
    authorize:
      expression: 'request.headers["x-tenant"] == "acme" && (!("org" in request.query) || request.query.org == "acme")'
    upstream: {targets: [`+strconv.Quote(rec.URL)+`]}
`).serve()
	tg.waitReady(t)
	tok := idp.Mint(t, map[string]any{"sub": "u1"})
	addr := strings.TrimPrefix(tg.url, "http://")
	for i, tc := range []struct {
		name    string
		target  string
		headers []string
		status  int
		slug    string
	}{
		{"one tenant", "/t/x", []string{"X-Tenant: acme"}, 200, ""},
		{"two tenant headers", "/t/x", []string{"X-Tenant: acme", "X-Tenant: evil"}, 400, "ambiguous-parameter"},
		{"two tenant headers, other case", "/t/x", []string{"X-Tenant: acme", "x-tenant: evil"}, 400, "ambiguous-parameter"},
		{"two tenant headers, evil first", "/t/x", []string{"x-TENANT: evil", "X-Tenant: acme"}, 400, "ambiguous-parameter"},
		{"underscore spelling is dropped, not read", "/t/x", []string{"X-Tenant: acme", "X_Tenant: evil"}, 200, ""},
		{"one comma list is one value", "/t/x", []string{"X-Tenant: acme, evil"}, 403, "forbidden"},
		{"other headers may repeat", "/t/x", []string{"X-Tenant: acme", "Accept: a", "Accept: b"}, 200, ""},
		{"one org", "/t/x?org=acme", []string{"X-Tenant: acme"}, 200, ""},
		{"two orgs", "/t/x?org=acme&org=evil", []string{"X-Tenant: acme"}, 400, "ambiguous-parameter"},
		{"two orgs, one encoded name", "/t/x?org=acme&%6Frg=evil", []string{"X-Tenant: acme"}, 400, "ambiguous-parameter"},
		{"semicolon separator", "/t/x?org=acme;org=evil", []string{"X-Tenant: acme"}, 400, "ambiguous-parameter"},
		{"bad escape in the query", "/t/x?org=acme&x=%zz", []string{"X-Tenant: acme"}, 400, "ambiguous-parameter"},
		{"other params may repeat", "/t/x?org=acme&page=1&page=2", []string{"X-Tenant: acme"}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strconv.Itoa(i)
			status, slug := rawExchange(t, addr, "GET", tc.target, append([]string{"X-Case: " + id, "Authorization: Bearer " + tok}, tc.headers...))
			if status != tc.status || slug != tc.slug {
				t.Fatalf("status %d %q, want %d %q", status, slug, tc.status, tc.slug)
			}
			if _, reached := rec.get(id); reached != (tc.status == 200) {
				t.Fatalf("reached the upstream: %v", reached)
			}
		})
	}
}

// TestCredentialAndOverrideOnAuthenticatedRoutes: the API-key header never
// reaches an upstream, whatever the route accepts; a method override on a
// route that honours it is authorized as the overriding method, and the
// upstream receives that method.
func TestCredentialAndOverrideOnAuthenticatedRoutes(t *testing.T) {
	idp := testidp.Start(t)
	rec := newRecording(t)
	target := strconv.Quote(rec.URL)
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+`routes:
  - name: items
    match: {path: "/items/{id}"}
    method_override: true
    authenticate: {methods: [jwt]}
    authorize:
      methods:
        - methods: [DELETE]
          roles: {any_of: [admin]}
    upstream: {targets: [`+target+`]}
  - name: open
    public: true
    match: {path_prefix: /open}
    upstream: {targets: [`+target+`]}
`).serve()
	tg.waitReady(t)
	user := idp.Mint(t, map[string]any{"sub": "u1"})
	admin := idp.Mint(t, map[string]any{"sub": "boss", "realm_access": map[string]any{"roles": []string{"admin"}}})
	addr := strings.TrimPrefix(tg.url, "http://")
	for i, tc := range []struct {
		name, method, target string
		headers              []string
		status               int
		upstreamMethod       string
	}{
		{"API key on a JWT route", "GET", "/items/1", []string{"Authorization: Bearer " + user, "X-API-Key: gate_live_leak"}, 200, "GET"},
		{"API key on a public route", "GET", "/open/x", []string{"x-api-key: gate_live_leak"}, 200, "GET"},
		{"override to DELETE needs the DELETE rule", "POST", "/items/1", []string{"Authorization: Bearer " + user, "X-HTTP-Method-Override: DELETE"}, 403, ""},
		{"override to DELETE by an admin", "POST", "/items/1", []string{"Authorization: Bearer " + admin, "X-HTTP-Method-Override: DELETE"}, 200, "DELETE"},
		{"plain POST", "POST", "/items/1", []string{"Authorization: Bearer " + user}, 200, "POST"},
		{"override on a route that does not honour it", "POST", "/open/x", []string{"X-HTTP-Method-Override: DELETE"}, 200, "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "c" + strconv.Itoa(i)
			status, slug := rawExchange(t, addr, tc.method, tc.target, append([]string{"X-Case: " + id, "Content-Length: 0"}, tc.headers...))
			if status != tc.status {
				t.Fatalf("status %d %q, want %d", status, slug, tc.status)
			}
			seen, reached := rec.get(id)
			if reached != (tc.status == 200) {
				t.Fatalf("reached the upstream: %v", reached)
			}
			if !reached {
				return
			}
			if seen.Method != tc.upstreamMethod {
				t.Fatalf("upstream got %s, want %s", seen.Method, tc.upstreamMethod)
			}
			for k := range seen.Header {
				if strings.EqualFold(k, "X-Api-Key") || strings.Contains(strings.ToLower(k), "override") {
					t.Fatalf("upstream received %s", k)
				}
			}
		})
	}
}
