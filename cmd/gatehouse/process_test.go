//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRunProcess runs the real binary: it starts, becomes ready, proxies a
// request to the builtin echo upstream, logs it, and drains and exits 0 on
// SIGTERM. Everything listens on 127.0.0.1.
func TestRunProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	proxyPort, adminPort := freePort(t), freePort(t)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:%d"
admin:
  address: "127.0.0.1:%d"
lifecycle:
  drain_timeout: 5s
routes:
  - name: echo
    public: true
    match:
      path_prefix: /echo
    upstream:
      targets: ["builtin:echo"]
      strip_prefix: /echo
`, proxyPort, adminPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr lockedBuffer
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gatehouse stderr:\n%s", stderr.String())
			t.Logf("gatehouse stdout:\n%s", stdout.String())
		}
	})

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	proxyURL := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	// Wait for readiness, polling; fail early if the process dies.
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("gatehouse exited before becoming ready: %v", err)
		default:
		}
		if ready(client, adminURL+"/readyz") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gatehouse did not become ready in time")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A request through the proxy reaches the echo upstream.
	req, err := http.NewRequest(http.MethodGet, proxyURL+"/echo/hello?token=s3cret&x=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "cli-test-1")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body:\n%s", res.StatusCode, body)
	}
	if got := res.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "cli-test-1" {
		t.Errorf("X-Request-Id in the response = %q, want [cli-test-1]", got)
	}
	var echo struct {
		Method   string              `json:"method"`
		Path     string              `json:"path"`
		RawQuery string              `json:"raw_query"`
		Headers  map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatalf("echo answer is not JSON: %v\n%s", err, body)
	}
	for name, c := range map[string]struct{ got, want any }{
		"method":            {echo.Method, "GET"},
		"path":              {echo.Path, "/hello"},
		"raw_query":         {echo.RawQuery, "token=REDACTED&x=1"},
		"X-Request-Id":      {fmt.Sprint(echo.Headers["X-Request-Id"]), "[cli-test-1]"},
		"X-Forwarded-For":   {fmt.Sprint(echo.Headers["X-Forwarded-For"]), "[127.0.0.1]"},
		"X-Forwarded-Proto": {fmt.Sprint(echo.Headers["X-Forwarded-Proto"]), "[http]"},
	} {
		if c.got != c.want {
			t.Errorf("echo %s = %v, want %v", name, c.got, c.want)
		}
	}

	// A request no route matches gets a problem+json answer.
	res, err = client.Get(proxyURL + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), `"type":"urn:gatehouse:problem:route-not-found"`) {
		t.Errorf("unrouted request: status %d, type %q, body %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}

	// SIGTERM drains and exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case exitErr = <-exited:
		stopped = true
	case <-time.After(10 * time.Second):
		t.Fatal("gatehouse did not exit within 10s of SIGTERM")
	}
	if exitErr != nil {
		t.Fatalf("gatehouse exited with %v, want status 0", exitErr)
	}
	if !strings.Contains(stderr.String(), "gateway: stopped") {
		t.Errorf("stderr lacks the shutdown message")
	}

	// Standard output holds only access log lines, one of them for the request.
	var found bool
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("stdout line is not JSON: %q", sc.Text())
			continue
		}
		if line["request_id"] != "cli-test-1" {
			continue
		}
		found = true
		for key, want := range map[string]any{
			"msg": "request", "listener": "public", "route": "echo", "method": "GET",
			"path": "/echo/hello", "query": "token=REDACTED&x=1", "status": float64(200),
			"client_ip": "127.0.0.1", "upstream": "builtin:echo",
		} {
			if line[key] != want {
				t.Errorf("access log %s = %v, want %v", key, line[key], want)
			}
		}
	}
	if !found {
		t.Errorf("no access log line for request cli-test-1 on stdout:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "s3cret") || strings.Contains(stderr.String(), "s3cret") {
		t.Error("a credential from the query string was logged")
	}
}

// buildBinary compiles the command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ready reports whether /readyz answers 200 with status "ready".
func ready(client *http.Client, url string) bool {
	res, err := client.Get(url)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&body) == nil && body.Status == "ready"
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of
// exec.Cmd's copying goroutines and the test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
