//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// TestKeyCreationSurvivesKill checks the admin API's durability promise
// on each store: every key creation answered 201 is in the store after the
// process is killed (SIGKILL, no drain) in the middle of a burst of
// concurrent creations, and authenticates after a restart.
func TestKeyCreationSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T, dir string) string // the api_keys.store YAML mapping
	}{
		{"embedded", func(t *testing.T, dir string) string {
			return fmt.Sprintf("{type: embedded, path: %q}", filepath.Join(dir, "keys.db"))
		}},
		{"postgres", func(t *testing.T, dir string) string {
			dsn := pgtest.TestDSN(t)
			schema := pgtest.FreshSchema(t, dsn) // dropped after the process is killed
			return fmt.Sprintf("{type: postgres, dsn: %q, schema: %q}", dsn, schema)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testKeyCreationSurvivesKill(t, bin, tc.store)
		})
	}
}

func testKeyCreationSurvivesKill(t *testing.T, bin string, store func(t *testing.T, dir string) string) {
	const (
		workers      = 8
		killAfter    = 50  // acknowledged creations before SIGKILL
		maxCreations = 400 // bound on the burst if the kill is slow
	)
	dir := t.TempDir()
	storeYAML := store(t, dir)
	proxyPort, adminPort := freePort(t), freePort(t)
	token, hash := newAdminToken()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:%d"
admin:
  address: "127.0.0.1:%d"
  token_hash: %q
api_keys:
  store: %s
lifecycle:
  drain_timeout: 2s
routes:
  - name: orders
    match:
      path_prefix: /orders
    authenticate:
      methods: [api_key]
    upstream:
      targets: ["builtin:echo"]
`, proxyPort, adminPort, hash, storeYAML)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	proxyURL := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers},
	}
	defer client.CloseIdleConnections()
	admin := func(method, path string, body any) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, adminURL+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		data, err := io.ReadAll(res.Body)
		return res.StatusCode, data, err
	}

	// First life: create a consumer, then keys until killed.
	gw := startGateway(t, bin, cfgPath, dir, adminURL)
	status, body, err := admin(http.MethodPost, "/v1/consumers", map[string]any{"name": "burst"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create consumer: %d %v\n%s", status, err, body)
	}

	type issued struct{ id, secret string }
	var (
		mu      sync.Mutex
		acked   []issued
		started atomic.Int64
		reached = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; started.Add(1) <= maxCreations; i++ {
				status, body, err := admin(http.MethodPost, "/v1/consumers/burst/keys", map[string]any{"name": fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					return // the process is gone
				}
				if status != http.StatusCreated {
					// Answers other than 201 promise nothing; a 5xx while
					// dying is acceptable, anything else before the kill is not.
					select {
					case <-reached:
					default:
						t.Errorf("create key: status %d: %s", status, body)
					}
					return
				}
				var out struct {
					Key    struct{ ID string }
					Secret string
				}
				if err := json.Unmarshal(body, &out); err != nil || out.Key.ID == "" || out.Secret == "" {
					t.Errorf("create key: bad answer %v: %s", err, body)
					return
				}
				mu.Lock()
				acked = append(acked, issued{out.Key.ID, out.Secret})
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() { close(reached) })
				}
			}
		}()
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		gw.kill(t)
		wg.Wait()
		t.Fatalf("only %d creations acknowledged in 60s", len(acked))
	}
	gw.kill(t) // mid-burst: the workers are still sending
	wg.Wait()
	client.CloseIdleConnections()
	if t.Failed() {
		return
	}
	mu.Lock()
	keys := append([]issued(nil), acked...)
	mu.Unlock()
	t.Logf("%d creations acknowledged before SIGKILL (%d attempted)", len(keys), min(started.Load(), maxCreations))
	if int64(len(keys)) >= min(started.Load(), maxCreations) {
		t.Logf("note: every attempted creation was acknowledged; the kill may have landed after the burst")
	}

	// Second life on the same store: it opens cleanly and holds every
	// acknowledged key, which authenticates.
	startGateway(t, bin, cfgPath, dir, adminURL)
	for _, k := range keys {
		status, body, err := admin(http.MethodGet, "/v1/keys/"+k.id, nil)
		if err != nil || status != http.StatusOK {
			t.Errorf("key %s acknowledged before the kill: GET answered %d %v: %s", k.id, status, err, body)
			continue
		}
		var got struct{ ID, Status string }
		if err := json.Unmarshal(body, &got); err != nil || got.ID != k.id || got.Status != "active" {
			t.Errorf("key %s after restart: %v %s", k.id, err, body)
		}
		req, _ := http.NewRequest(http.MethodGet, proxyURL+"/orders/1", nil)
		req.Header.Set("X-API-Key", k.secret)
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("key %s through the proxy: %v", k.id, err)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("key %s through the proxy: status %d: %s", k.id, res.StatusCode, b)
		}
	}
	if !t.Failed() {
		t.Logf("all %d acknowledged keys found and authenticated after the restart", len(keys))
	}
	// And a wrong key still does not.
	req, _ := http.NewRequest(http.MethodGet, proxyURL+"/orders/1", nil)
	secret := keys[0].secret
	last := "x"
	if strings.HasSuffix(secret, "x") {
		last = "y" // the altered key must really differ
	}
	req.Header.Set("X-API-Key", secret[:len(secret)-1]+last)
	if res, err := client.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("altered key: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
}

// gatewayProcess is a running gatehouse binary.
type gatewayProcess struct {
	cmd    *exec.Cmd
	exited chan error
	done   atomic.Bool
	stderr *lockedBuffer
}

// startGateway runs the binary and waits until /readyz answers ready. The
// process is killed when the test ends.
func startGateway(t *testing.T, bin, cfgPath, dir, adminURL string) *gatewayProcess {
	t.Helper()
	var stdout lockedBuffer
	g := &gatewayProcess{exited: make(chan error, 1), stderr: &lockedBuffer{}}
	g.cmd = exec.Command(bin, "run", "-c", cfgPath)
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = &stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.kill(t)
		if t.Failed() {
			t.Logf("gatehouse (pid %d) stderr:\n%s", g.cmd.Process.Pid, tail(g.stderr.String(), 8000))
		}
	})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for !ready(client, adminURL+"/readyz") {
		select {
		case err := <-g.exited:
			g.exited <- err
			t.Fatalf("gatehouse exited before becoming ready: %v\n%s", err, tail(g.stderr.String(), 8000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse did not become ready in 30s\n%s", tail(g.stderr.String(), 8000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g
}

// kill sends SIGKILL (no drain, no store close) and waits for the exit.
func (g *gatewayProcess) kill(t *testing.T) {
	if g.done.Swap(true) {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("gatehouse (pid %d) did not exit within 10s of SIGKILL", g.cmd.Process.Pid)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
