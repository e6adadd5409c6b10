package pipeline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
)

// buildPlanFile is buildPlan that also returns the configuration.
func buildPlanFile(t *testing.T, yamlText string) (*Plan, *config.Config, *config.File) {
	t.Helper()
	cfg, file, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, cfg, file
}

// listen serves p on a real listener on 127.0.0.1.
func listen(t *testing.T, p *Plan) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.ServeHTTP(w, r, "main") }))
	t.Cleanup(srv.Close)
	return srv.URL
}

func noRedirect(t *testing.T) *http.Client {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func send(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res, string(body)
}

func routeNamed(t *testing.T, p *Plan, name string) *Route {
	t.Helper()
	for _, rt := range p.routes {
		if rt.Name == name {
			return rt
		}
	}
	t.Fatalf("no route %q", name)
	return nil
}

// markStage is a test ResponseStage: it adds a cookie and a header while
// the request runs, records the status it saw in the response phase, and
// returns the reply that X-Fail asks for.
type markStage struct{ mark string }

func (s markStage) Name() string { return "mark" }

func (s markStage) Process(x *Exchange) error {
	if err := x.AddResponseCookie(&http.Cookie{Name: s.mark, Value: "1", Path: "/", HttpOnly: true}); err != nil {
		return err
	}
	x.AddResponseHeader("X-Mark", s.mark)
	switch x.Request.Header.Get("X-Fail") {
	case "redirect":
		rd, err := reply.NewRedirect(http.StatusSeeOther, "/login?next=%2Fapp",
			&http.Cookie{Name: "state", Value: "abc", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		if err != nil {
			return err
		}
		return rd
	case "redirect-crlf":
		return &reply.RedirectError{Status: http.StatusFound, Location: "/a\r\nX-Injected: 1"}
	case "redirect-scheme-relative":
		return &reply.RedirectError{Status: http.StatusFound, Location: "//evil.example/"}
	case "redirect-301":
		return &reply.RedirectError{Status: http.StatusMovedPermanently, Location: "/a"}
	case "429":
		return &reply.TooManyRequestsError{RetryAfter: 1500 * time.Millisecond, Header: http.Header{
			"Ratelimit":        {`"default";r=0;t=2`},
			"Ratelimit-Policy": {`"default";q=10;w=60`},
			"X-Evil":           {"a\r\nb"},
		}}
	}
	return nil
}

func (s markStage) Respond(x *Exchange, status int, h http.Header) {
	x.SetResponseHeader("X-Seen-"+s.mark, strconv.Itoa(status))
	if status < 400 {
		_ = x.AddResponseCookie(&http.Cookie{Name: s.mark + "-ok", Value: strconv.Itoa(status)})
	}
}

// TestResponsePhaseAndReplies: through a real listener, stage cookies and
// headers reach proxied, gateway-served and error responses (upstream
// Set-Cookie kept, stage cookies added, never merged); Respond runs once
// with the final status, only for stages that ran; redirect and 429 replies
// are answered as documented, and an unsafe redirect is refused.
func TestResponsePhaseAndReplies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "up", Value: "u"})
		w.Header().Set("X-Mark", "upstream")
		_, _ = w.Write([]byte("from upstream"))
	}))
	t.Cleanup(up.Close)
	p := buildPlan(t, `
routes:
  - name: proxied
    public: true
    match: {path: /up}
    upstream: {targets: ["`+up.URL+`"]}
  - name: direct
    public: true
    match: {path: /direct, methods: [GET]}
    direct_response: {status: 200, body: "hello\n", headers: {X-Direct: "1"}}
`)
	for _, name := range []string{"proxied", "direct"} {
		rt := routeNamed(t, p, name)
		rt.Stages = append([]Stage{markStage{"first"}}, append(rt.Stages, markStage{"last"})...)
		rt.responders = responders(rt.Stages)
	}
	base, c := listen(t, p), noRedirect(t)

	for _, tc := range []struct {
		name, path, fail string
		status           int
		cookies          []string // Set-Cookie values, exactly, in order
		header           map[string]string
		body             string
	}{
		{name: "proxied", path: "/up", status: 200,
			cookies: []string{"up=u", "first=1; Path=/; HttpOnly", "last=1; Path=/; HttpOnly", "first-ok=200", "last-ok=200"},
			header:  map[string]string{"X-Seen-First": "200", "X-Seen-Last": "200"}, body: "from upstream"},
		{name: "gateway-served", path: "/direct", status: 200,
			cookies: []string{"first=1; Path=/; HttpOnly", "last=1; Path=/; HttpOnly", "first-ok=200", "last-ok=200"},
			header:  map[string]string{"X-Direct": "1", "X-Seen-Last": "200", "Content-Type": "text/plain; charset=utf-8"}, body: "hello\n"},
		{name: "error (405)", path: "/direct", fail: "", status: 405},
		{name: "redirect", path: "/up", fail: "redirect", status: 303,
			cookies: []string{"state=abc; Path=/; HttpOnly; Secure; SameSite=Lax", "first=1; Path=/; HttpOnly", "first-ok=303"},
			header:  map[string]string{"Location": "/login?next=%2Fapp", "Cache-Control": "no-store", "X-Seen-First": "303", "X-Seen-Last": "", "Content-Length": "0"}},
		{name: "429", path: "/direct", fail: "429", status: 429,
			cookies: []string{"first=1; Path=/; HttpOnly"},
			header: map[string]string{"Retry-After": "2", "Ratelimit": `"default";r=0;t=2`, "Ratelimit-Policy": `"default";q=10;w=60`,
				"X-Evil": "", "X-Seen-First": "429", "X-Seen-Last": "", "Content-Type": "application/problem+json"},
			body: `"type":"urn:gatehouse:problem:too-many-requests"`},
		{name: "redirect with CR LF refused", path: "/up", fail: "redirect-crlf", status: 500,
			header: map[string]string{"Location": "", "X-Injected": ""}, body: "internal-error"},
		{name: "scheme-relative redirect refused", path: "/up", fail: "redirect-scheme-relative", status: 500,
			header: map[string]string{"Location": ""}, body: "internal-error"},
		{name: "301 refused", path: "/up", fail: "redirect-301", status: 500, body: "internal-error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.status == 405 {
				method = "DELETE"
			}
			res, body := send(t, c, method, base+tc.path, map[string]string{"X-Fail": tc.fail})
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			if tc.cookies != nil && !slices.Equal(res.Header.Values("Set-Cookie"), tc.cookies) {
				t.Errorf("Set-Cookie\n got %q\nwant %q", res.Header.Values("Set-Cookie"), tc.cookies)
			}
			for k, v := range tc.header {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q does not contain %q", body, tc.body)
			}
			if tc.status == 303 && body != "" {
				t.Errorf("a redirect has no body, got %q", body)
			}
		})
	}
}

// testAuthenticator is a credential method of the test only: X-Test-User
// names the caller. It contributes a public callback (a redirect setting a
// cookie) and an authenticated endpoint.
type testAuthenticator struct{ prefix string }

func (a *testAuthenticator) Method() identity.Method { return "test" }

func (a *testAuthenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	u := r.Header.Get("X-Test-User")
	switch u {
	case "":
		return nil, authn.ErrNoCredential
	case "bad":
		return nil, &authn.Failure{Method: "test", Reason: authn.ReasonMalformed, Description: "bad"}
	}
	return &identity.Identity{Method: "test", Subject: u}, nil
}

func (a *testAuthenticator) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		{Name: "callback", Path: a.prefix + "/callback", Methods: []string{"GET"}, Public: true,
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, id *identity.Identity) error {
				if id != nil {
					return errPanic // a public endpoint gets no identity
				}
				if r.URL.Query().Get("code") == "" {
					return &reply.TooManyRequestsError{RetryAfter: time.Second}
				}
				rd, err := reply.NewRedirect(http.StatusFound, "/app", &http.Cookie{Name: "session", Value: "s1", Path: "/", HttpOnly: true})
				if err != nil {
					return err
				}
				return rd
			})},
		{Name: "me", Path: a.prefix + "/me", Methods: []string{"GET", "POST"},
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, id *identity.Identity) error {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "you are "+id.Subject)
				return nil
			})},
	}
}

var (
	_ authn.Authenticator = (*testAuthenticator)(nil)
	_ endpoint.Provider   = (*testAuthenticator)(nil)
)

// useAuthenticator makes a as the only method of the named routes, and
// mounts the endpoints again, as Build does.
func useAuthenticator(t *testing.T, p *Plan, a authn.Authenticator, routes ...string) {
	t.Helper()
	for _, name := range routes {
		for _, s := range routeNamed(t, p, name).Stages {
			if as, ok := s.(*authenticateStage); ok {
				as.chain = &authn.Chain{Authenticators: []authn.Authenticator{a}}
			}
		}
	}
}

const endpointRoutes = `
identity_providers:
  - name: idp
    issuer: https://idp.bench.test
    audiences: [api]
    static_keys: {files: ["KEYFILE"]}
routes:
  - name: app
    match: {path_prefix: /app}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://127.0.0.1:1"]}
  - name: other
    match: {path_prefix: /other}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://127.0.0.1:1"]}
  - name: catch-all
    public: true
    match: {path_prefix: /}
    direct_response: {status: 404, body: "nothing here"}
`

// TestProviderEndpoints: an authenticator that implements
// endpoint.Provider gets its endpoints mounted at build and served by the
// gateway, public or behind the route's authentication, with errors
// through respond, and method and route checks as for any route.
func TestProviderEndpoints(t *testing.T) {
	keyFile, _ := benchJWT(t)
	p, cfg, file := buildPlanFile(t, strings.Replace(endpointRoutes, "KEYFILE", keyFile, 1))
	a := &testAuthenticator{prefix: "/auth"}
	useAuthenticator(t, p, a, "app", "other") // the same provider on two routes: mounted once
	if err := p.mountEndpoints(cfg, file, Options{}); err != nil {
		t.Fatal(err)
	}
	base, c := listen(t, p), noRedirect(t)
	for _, tc := range []struct {
		name, method, path, user string
		status                   int
		header                   map[string]string
		body                     string
	}{
		{"public callback redirects with a cookie", "GET", "/auth/callback?code=x", "", 302,
			map[string]string{"Location": "/app", "Set-Cookie": "session=s1; Path=/; HttpOnly", "Cache-Control": "no-store"}, ""},
		{"public callback error goes through respond", "GET", "/auth/callback", "", 429,
			map[string]string{"Retry-After": "1", "Content-Type": "application/problem+json"}, "too-many-requests"},
		{"authenticated endpoint without credential", "GET", "/auth/me", "", 401,
			map[string]string{"Www-Authenticate": `Bearer realm="gatehouse"`}, "unauthorized"},
		{"authenticated endpoint with a bad credential", "GET", "/auth/me", "bad", 401, nil, "unauthorized"},
		{"authenticated endpoint", "GET", "/auth/me", "alice", 200, map[string]string{"Content-Type": "text/plain"}, "you are alice"},
		{"HEAD of a GET endpoint", "HEAD", "/auth/me", "alice", 200, nil, ""},
		{"other method", "DELETE", "/auth/me", "alice", 405, map[string]string{"Allow": "GET, HEAD, POST"}, ""},
		{"route behind the same method", "GET", "/app/x", "", 401, nil, "unauthorized"},
		{"catch-all still serves the rest", "GET", "/auth/other", "", 404, nil, "nothing here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, c, tc.method, base+tc.path, map[string]string{"X-Test-User": tc.user})
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			for k, v := range tc.header {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q does not contain %q", body, tc.body)
			}
		})
	}
	if got := routeNamed(t, p, "app"+endpointNameSep+"callback"); !got.public || got.serve == nil {
		t.Errorf("callback route: public %v, served %v", got.public, got.serve != nil)
	}
}

// TestEndpointConflicts: one path has one owner.
func TestEndpointConflicts(t *testing.T) {
	keyFile, _ := benchJWT(t)
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, p *Plan)
		routes string // extra routes
		want   string // "" = no error
	}{
		{"two providers, one path", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "app")
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "other")
		}, "", `routes[1]: endpoint /auth/callback: also served for routes[0] (app): two owners of one path`},
		{"an endpoint shadows an exact route", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "app")
		}, `
  - name: cb
    public: true
    match: {path: "/auth/{step}"}
    direct_response: {}
`, `routes[0]: endpoint /auth/callback of this route is also matched by routes[3] (cb): two owners of one path`},
		{"an endpoint equal to a prefix route", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "app")
		}, `
  - name: me
    public: true
    match: {path_prefix: "/auth/me"}
    direct_response: {}
`, `routes[0]: endpoint /auth/me of this route is also matched by routes[3] (me)`},
		{"a route on one host takes the path there", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "app")
		}, `
  - name: cb
    public: true
    match: {path: "/auth/callback", hosts: [other.example.com]}
    direct_response: {}
`, `also matched by routes[3] (cb)`},
		{"a host-specific route ranks first", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "hosted")
		}, `
  - name: hosted
    match: {path_prefix: /h, hosts: ["*.example.com"]}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://127.0.0.1:1"]}
  - name: tenant
    public: true
    match: {path_prefix: /, hosts: [a.example.com, gatehouse-probe.example.com]}
    direct_response: {}
`, `routes[3]: endpoint /auth/callback of this route is taken by routes[4] (tenant), which ranks first on its hosts`},
		{"routes beside and above do not clash", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth"}, "app")
		}, `
  - name: parent
    public: true
    match: {path: "/auth"}
    direct_response: {}
  - name: prefix
    public: true
    match: {path_prefix: "/auth"}
    direct_response: {}
`, ""},
		{"a bad endpoint path", func(t *testing.T, p *Plan) {
			useAuthenticator(t, p, &testAuthenticator{prefix: "/auth/.."}, "app")
		}, "", `the path must be an exact, clean absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(endpointRoutes, "KEYFILE", keyFile, 1)
			src += tc.routes
			p, cfg, file := buildPlanFile(t, src)
			tc.setup(t, p)
			err := p.mountEndpoints(cfg, file, Options{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestInspectServedRoutes: explain tells a gateway-served answer from a
// preflight and from a forwarded request.
func TestInspectServedRoutes(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: health
    public: true
    match: {path: /healthz}
    direct_response: {body: ok}
    cors: {allowed_origins: ["https://app.example.com"]}
`)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"direct response", nil, "result: allowed, answered by the gateway itself (never forwarded)"},
		{"preflight", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}, "cors preflight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.hdr != nil {
				method = "OPTIONS"
			}
			r := httptest.NewRequest(method, "http://gw.test/healthz", nil)
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			out := p.Inspect(r, nil, true)
			if last := out.Steps[len(out.Steps)-1]; !strings.Contains(last, tc.want) {
				t.Fatalf("steps %q, want the last to contain %q", out.Steps, tc.want)
			}
		})
	}
}

// staticProvider is a process component with endpoints of its own.
type staticProvider []endpoint.Endpoint

func (s staticProvider) Endpoints() []endpoint.Endpoint { return s }

func jwksEndpoint(public bool) endpoint.Endpoint {
	return endpoint.Endpoint{Name: "jwks", Path: "/.well-known/jwks.json", Methods: []string{"GET"}, Public: public,
		Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error {
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = io.WriteString(w, `{"keys":[]}`)
			return nil
		})}
}

// TestGatewayComponentEndpoints: Options.Endpoints are mounted on every
// host, public only, and conflict like any other.
func TestGatewayComponentEndpoints(t *testing.T) {
	const cfgText = `
routes:
  - name: api
    match: {path_prefix: /api}
    public: true
    direct_response: {}
`
	cfg, file, err := config.Parse("test.yaml", []byte(cfgText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Endpoints: []endpoint.Provider{staticProvider{jwksEndpoint(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	base, c := listen(t, p), noRedirect(t)
	res, body := send(t, c, "GET", base+"/.well-known/jwks.json", map[string]string{"Host": "any.example"})
	if res.StatusCode != 200 || body != `{"keys":[]}` || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET jwks: %d %q %v", res.StatusCode, body, res.Header)
	}
	if got := routeNamed(t, p, "gateway:jwks"); !got.public {
		t.Error("gateway:jwks is not public")
	}

	for _, tc := range []struct {
		name   string
		routes string
		eps    []endpoint.Endpoint
		want   string
	}{
		{"needs authentication", "", []endpoint.Endpoint{jwksEndpoint(false)}, "routes: endpoint /.well-known/jwks.json needs authentication, and the gateway authenticates nobody"},
		{"twice", "", []endpoint.Endpoint{jwksEndpoint(true), jwksEndpoint(true)}, "also served by the gateway itself"},
		{"a route claims it", `
  - name: keys
    public: true
    match: {path: /.well-known/jwks.json}
    direct_response: {}
`, []endpoint.Endpoint{jwksEndpoint(true)}, "endpoint /.well-known/jwks.json of the gateway is also matched by routes[1] (keys)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, file, err := config.Parse("test.yaml", []byte(cfgText+tc.routes), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Endpoints: []endpoint.Provider{staticProvider(tc.eps)}})
			if err == nil {
				p.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
