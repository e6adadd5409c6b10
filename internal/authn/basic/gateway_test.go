package basic_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/basic"
	_ "github.com/gatehouse/gatehouse/internal/authn/methods"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/resource"
)

var hashes = sync.OnceValues(func() (string, string) {
	a, err := basic.HashPassword([]byte("alice-pw"), basic.DefaultParams)
	if err != nil {
		panic(err)
	}
	b, err := basic.HashPassword([]byte("bob-pw"), basic.DefaultParams)
	if err != nil {
		panic(err)
	}
	return a, b
})

type gw struct {
	url    string
	client *http.Client
	seen   chan http.Header
}

// startGateway runs a plan behind a real listener: TLS unless plain, in
// front of an upstream that reports the headers it received.
func startGateway(t *testing.T, plain bool, routeExtra, top string) *gw {
	t.Helper()
	ha, hb := hashes()
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("alice:"+ha+" roles=admin groups=eng scopes=orders:read\nbob:"+hb+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gw{seen: make(chan http.Header, 1)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.seen <- r.Header.Clone():
		default:
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	yaml := top + `routes:
  - name: legacy
    match: {path_prefix: /legacy}
    authenticate:
      methods: [basic]
      realm: legacy
      basic:
        users_file: ` + users + `
        cache_ttl: 1m
` + routeExtra + `    upstream: {targets: ["` + up.URL + `"]}
  - name: admin
    match: {path_prefix: /admin}
    authenticate:
      methods: [basic]
      basic: {users_file: ` + users + `}
    authorize:
      roles: {any_of: [admin]}
    upstream: {targets: ["` + up.URL + `"]}
audit: {disabled: true}
access_log: {disabled: true}
`
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Build(cfg, file, pipeline.Options{Resources: resource.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := plan.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plan.ServeHTTP(w, r, "main") })
	var srv *httptest.Server
	if plain {
		srv = httptest.NewServer(h)
	} else {
		srv = httptest.NewTLSServer(h)
	}
	t.Cleanup(srv.Close)
	g.url, g.client = srv.URL, srv.Client()
	return g
}

func (g *gw) do(t *testing.T, path string, auth ...string) (*http.Response, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url+path, nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	res, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var prob map[string]any
	_ = json.Unmarshal(body, &prob)
	var seen http.Header
	select {
	case seen = <-g.seen:
	default:
	}
	return res, prob, seen
}

func basicAuth(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestThroughListener(t *testing.T) {
	g := startGateway(t, false, "", "")
	const challenge = `Basic realm="legacy", charset="UTF-8"`
	for _, tc := range []struct {
		name   string
		path   string
		auth   []string
		status int
	}{
		{"right password", "/legacy/x", []string{basicAuth("alice", "alice-pw")}, 200},
		{"right password again (cached)", "/legacy/x", []string{basicAuth("alice", "alice-pw")}, 200},
		{"wrong password", "/legacy/x", []string{basicAuth("alice", "nope")}, 401},
		{"unknown user", "/legacy/x", []string{basicAuth("mallory", "nope")}, 401},
		{"no credentials", "/legacy/x", nil, 401},
		{"no colon", "/legacy/x", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, 401},
		{"bad base64", "/legacy/x", []string{"Basic %%%"}, 401},
		{"non-utf-8", "/legacy/x", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("al\xffce:alice-pw"))}, 401},
		{"latin-1 password", "/legacy/x", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-p\xe4"))}, 401},
		{"huge header", "/legacy/x", []string{"Basic " + strings.Repeat("QUFB", 4000)}, 401},
		{"two Basic headers", "/legacy/x", []string{basicAuth("alice", "alice-pw"), basicAuth("bob", "bob-pw")}, 401},
		{"role allowed", "/admin/x", []string{basicAuth("alice", "alice-pw")}, 200},
		{"role missing", "/admin/x", []string{basicAuth("bob", "bob-pw")}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, prob, seen := g.do(t, tc.path, tc.auth...)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d (%v), want %d", res.StatusCode, prob, tc.status)
			}
			if tc.status == 401 && tc.path == "/legacy/x" && res.Header.Get("WWW-Authenticate") != challenge {
				t.Fatalf("challenge %q, want %q", res.Header.Get("WWW-Authenticate"), challenge)
			}
			if tc.status != 200 {
				if res.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("content type %q", res.Header.Get("Content-Type"))
				}
				return
			}
			if seen == nil {
				t.Fatal("the upstream saw nothing")
			}
			if seen.Get("Authorization") != "" {
				t.Fatal("the Authorization header reached the upstream")
			}
			if seen.Get("X-Auth-Subject") != "alice" || seen.Get("X-Auth-Method") != "basic" || seen.Get("X-Auth-Roles") != "admin" {
				t.Fatalf("identity headers: %v", seen)
			}
		})
	}
	// Unknown user and wrong password: the same answer, byte for byte
	// (but the request id).
	r1, p1, _ := g.do(t, "/legacy/x", basicAuth("alice", "nope"))
	r2, p2, _ := g.do(t, "/legacy/x", basicAuth("nobody", "nope"))
	delete(p1, "request_id")
	delete(p2, "request_id")
	b1, _ := json.Marshal(p1)
	b2, _ := json.Marshal(p2)
	if string(b1) != string(b2) || r1.Header.Get("WWW-Authenticate") != r2.Header.Get("WWW-Authenticate") {
		t.Fatalf("unknown user and wrong password answer differently:\n%s\n%s", b1, b2)
	}
	if strings.Contains(string(b1), "nope") || strings.Contains(string(b1), "alice") {
		t.Fatalf("the answer echoes the credentials: %s", b1)
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	g := startGateway(t, true, "", "")
	res, _, seen := g.do(t, "/legacy/x", basicAuth("alice", "alice-pw"))
	if res.StatusCode != 401 || seen != nil {
		t.Fatalf("Basic over plain HTTP: status %d, upstream reached: %v", res.StatusCode, seen != nil)
	}
	g = startGateway(t, true, "        allow_plain_http: true\n", "")
	if res, _, _ := g.do(t, "/legacy/x", basicAuth("alice", "alice-pw")); res.StatusCode != 200 {
		t.Fatalf("allow_plain_http: status %d", res.StatusCode)
	}
}

// TestBruteForce: failures count per user name and per address; a
// locked-out user gets 429 whatever the password (the right one too), so
// the lockout confirms no guess; an unknown user locks out like a known
// one.
func TestBruteForce(t *testing.T) {
	g := startGateway(t, false, "", "rate_limits:\n  brute_force: {threshold: 3, window: 1m, lockout: 1m, keys: [credential]}\n")
	for i := range 3 {
		if res, _, _ := g.do(t, "/legacy/x", basicAuth("alice", "guess")); res.StatusCode != 401 {
			t.Fatalf("guess %d: status %d", i, res.StatusCode)
		}
	}
	for _, pw := range []string{"guess", "alice-pw"} {
		res, _, seen := g.do(t, "/legacy/x", basicAuth("alice", pw))
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || seen != nil {
			t.Fatalf("locked-out user with password %q: status %d", pw, res.StatusCode)
		}
	}
	// Another user is not affected.
	if res, _, _ := g.do(t, "/legacy/x", basicAuth("bob", "bob-pw")); res.StatusCode != 200 {
		t.Fatalf("bob: status %d", res.StatusCode)
	}
	// An unknown user name locks out the same way.
	for range 3 {
		g.do(t, "/legacy/x", basicAuth("ghost", "x"))
	}
	if res, _, _ := g.do(t, "/legacy/x", basicAuth("ghost", "x")); res.StatusCode != 429 {
		t.Fatalf("unknown user after 3 failures: status %d", res.StatusCode)
	}

	g = startGateway(t, false, "", "rate_limits:\n  brute_force: {threshold: 2, window: 1m, lockout: 1m, keys: [ip]}\n")
	g.do(t, "/legacy/x", basicAuth("alice", "guess"))
	g.do(t, "/legacy/x", basicAuth("nobody", "guess"))
	if res, _, _ := g.do(t, "/legacy/x", basicAuth("bob", "bob-pw")); res.StatusCode != 429 {
		t.Fatalf("locked-out address: status %d", res.StatusCode)
	}
}
