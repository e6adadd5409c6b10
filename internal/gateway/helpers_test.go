package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// syncBuffer collects the access log; the gateway writes from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON access log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testGateway is a gateway on ephemeral 127.0.0.1 ports, fed from a file.
type testGateway struct {
	*Gateway
	t         *testing.T
	path      string
	url       string // http://127.0.0.1:port of the "main" listener
	adminURL  string
	accessLog *syncBuffer // stdout: the access log (and audit events sent to stdout)
	stderr    *syncBuffer // stderr: audit events sent to stderr in tests
	opLog     *syncBuffer
}

// header adds listener and admin sections on ephemeral loopback ports.
const header = `
listeners:
  - name: main
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
`

// startGateway loads yamlText (a file is written so reloads work), binds
// and serves. The gateway is shut down when the test ends.
func startGateway(t *testing.T, yamlText string) *testGateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, file, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	access, stderr, oplog := &syncBuffer{}, &syncBuffer{}, &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(oplog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(cfg, file, Options{
		ConfigPath:  path,
		Log:         logger,
		Pipeline:    pipeline.Options{Log: logger, Stdout: access, Stderr: stderr},
		RetireDelay: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	tg := &testGateway{Gateway: g, t: t, path: path, accessLog: access, stderr: stderr, opLog: oplog}
	if a := g.Addr("main"); a != nil { // example files name their listener otherwise
		tg.url = "http://" + a.String()
	}
	if a := g.AdminAddr(); a != nil {
		tg.adminURL = "http://" + a.String()
	}
	return tg
}

// serve starts serving without Run's signal handling.
func (tg *testGateway) serve() *testGateway {
	tg.Serve()
	tg.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tg.Shutdown(ctx)
	})
	return tg
}

func (tg *testGateway) writeConfig(yamlText string) {
	tg.t.Helper()
	// Write then rename, as editors and config managers do.
	tmp := tg.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yamlText), 0o600); err != nil {
		tg.t.Fatal(err)
	}
	if err := os.Rename(tmp, tg.path); err != nil {
		tg.t.Fatal(err)
	}
}

// upstream is a real backend that answers with what it received.
type received struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
	Body    int         `json:"body"`
	Name    string      `json:"name"`
}

func newUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(received{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			Headers: r.Header, Body: int(n), Name: name,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func decodeReceived(t *testing.T, body []byte) received {
	t.Helper()
	var r received
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("upstream answer is not JSON: %v: %s", err, body)
	}
	return r
}

// problemBody checks a response is RFC 9457 problem+json and returns it.
func problemBody(t *testing.T, res *http.Response, body []byte, status int, slug string) map[string]any {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body is not JSON: %s", body)
	}
	if p["type"] != "urn:gatehouse:problem:"+slug || p["status"] != float64(status) || p["title"] == "" {
		t.Fatalf("problem body %v, want type %s status %d", p, slug, status)
	}
	if rid := res.Header.Get("X-Request-Id"); rid == "" || p["request_id"] != rid {
		t.Fatalf("request id header %q vs body %v", rid, p["request_id"])
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func routeYAML(name, match, upstream string) string {
	return fmt.Sprintf("  - name: %s\n    public: true\n    match: %s\n    upstream: %s\n", name, match, upstream)
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
