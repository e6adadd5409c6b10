package pipeline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

func buildPlan(t testing.TB, yamlText string) *Plan {
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
	return p
}

// TestProblemBodiesGolden pins the exact problem+json bodies clients see:
// they are a contract (docs/errors.md).
func TestProblemBodiesGolden(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: only-post
    public: true
    match: {path: /submit, methods: [POST]}
    upstream: {targets: ["builtin:echo"]}
`)
	for _, tc := range []struct {
		name, method, path string
		status             int
		header, value      string
		body               string
	}{
		{"not found", "GET", "/nope", 404, "", "",
			`{"type":"urn:gatehouse:problem:route-not-found","title":"No route matches the request","status":404,"detail":"No route is configured for this host, path and method.","request_id":"rid-1"}`},
		{"method not allowed", "GET", "/submit", 405, "Allow", "POST",
			`{"type":"urn:gatehouse:problem:method-not-allowed","title":"Method not allowed","status":405,"detail":"This path accepts: POST.","request_id":"rid-1"}`},
		{"dot segment", "GET", "/a/../submit", 400, "", "",
			`{"type":"urn:gatehouse:problem:bad-request","title":"Bad request","status":400,"detail":"The request path must be absolute and must not contain \".\" or \"..\" segments.","request_id":"rid-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://gw.test/", nil)
			req.URL.Path = tc.path
			req.Header.Set("X-Request-Id", "rid-1")
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req, "test")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tc.body {
				t.Fatalf("body\n got %s\nwant %s", got, tc.body)
			}
			if rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("X-Request-Id") != "rid-1" {
				t.Fatalf("headers %v", rec.Header())
			}
			if tc.header != "" && rec.Header().Get(tc.header) != tc.value {
				t.Fatalf("%s = %q", tc.header, rec.Header().Get(tc.header))
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/a/b": true, "/a/b/": true, "/a..b": true, "/.well-known/x": true,
		"": false, "a": false, "*": false, "/..": false, "/a/..": false, "/a/./b": false, "/.": false,
	} {
		if got := cleanPath(path); got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", path, got, want)
		}
	}
}

// BenchmarkPipeline measures the whole pipeline (request id, client IP,
// route match, access log, proxy) against a real upstream over loopback.
func BenchmarkPipeline(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	p := buildPlan(b, `
access_log: {disabled: true}
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["`+up.URL+`"]}
`)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.ServeHTTP(w, r, "bench") }))
	defer gw.Close()
	client := gw.Client()
	b.ReportAllocs()
	for b.Loop() {
		res, err := client.Get(gw.URL + "/api/x")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

func TestAPIKeyQueryParamIsRedactedInAccessLog(t *testing.T) {
	cfg, _, err := config.Parse("t.yaml", []byte(`
api_keys: {store: {type: static}, static: [{id: s, consumer: c, hash: "sha256:`+strings.Repeat("ab", 32)+`"}]}
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [api_key], api_key_query_param: k}
    upstream: {targets: ["builtin:echo"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	got := redactedParams(cfg)
	if !slices.Contains(got, "k") {
		t.Fatalf("redacted params %v lack the route's api key parameter", got)
	}
}

// TestAccessLogWrittenOnFlushAndClose: the access log is buffered, so
// Flush and Close (shutdown, a retired plan) must write every line.
func TestAccessLogWrittenOnFlushAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	p := buildPlan(t, `
access_log: {output: "`+path+`"}
routes:
  - name: r
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`)
	serve := func(id string) {
		req := httptest.NewRequest("GET", "http://gw.test/x?token=s3cret", nil)
		req.Header.Set("X-Request-Id", id)
		p.ServeHTTP(httptest.NewRecorder(), req, "test")
	}
	lines := func() []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	serve("rid-1")
	p.Flush()
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], `"request_id":"rid-1"`) || strings.Contains(got[0], "s3cret") {
		t.Fatalf("after Flush: %q", got)
	}
	serve("rid-2")
	p.Close()
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], `"request_id":"rid-2"`) {
		t.Fatalf("after Close: %q", got)
	}
}
