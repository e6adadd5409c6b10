package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nginxBinary finds nginx, or skips (fails when GATEHOUSE_REQUIRE_SERVICES=1).
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
		t.Fatal("nginx is needed (GATEHOUSE_REQUIRE_SERVICES=1): apt-get install nginx-light or nginx")
	}
	t.Skip("nginx is not installed (Debian package nginx); skipping the decision API test through a real nginx")
	return ""
}

// docsNginxConfig is the nginx configuration of docs/forward-auth.md:
// the first ```nginx block, with its placeholders replaced.
func docsNginxConfig(t *testing.T, listen, gatehouse, app string) string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindSubmatch(page)
	if m == nil {
		t.Fatal("docs/forward-auth.md has no ```nginx block")
	}
	conf := string(m[1])
	for _, r := range [][2]string{
		{"listen 80;", "listen " + listen + ";"},
		{"http://gatehouse:8080", "http://" + gatehouse},
		{"http://app:8000", "http://" + app},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("the nginx block of docs/forward-auth.md no longer contains %q", r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	return conf
}

// freePort is a loopback address with a port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startNginx runs nginx in the foreground with serverBlock, as the
// current user, everything in a temporary directory; it is stopped when
// the test ends.
func startNginx(t *testing.T, bin, listen, serverBlock string) {
	t.Helper()
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers would otherwise switch to nobody
	}
	conf := fmt.Sprintf(`%sdaemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, serverBlock)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if b, err := exec.Command(bin, "-t", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, b, conf)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), logs)
		}
	})
	waitFor(t, "nginx to listen on "+listen, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestDecisionThroughNginx: a real nginx, configured as
// docs/forward-auth.md says, asks the decision API about every request
// and forwards the allowed ones to the upstream with the identity the
// gateway vouched for.
func TestDecisionThroughNginx(t *testing.T) {
	bin := nginxBinary(t)
	up := newUpstream(t, "app")
	cfg, key := decisionConfig(t, "http://127.0.0.1:9", "  nginx_status_mapping: true\n")
	tg := startGateway(t, cfg).serve()
	listen := freePort(t)
	startNginx(t, bin, listen, docsNginxConfig(t, listen, strings.TrimPrefix(tg.url, "http://"), strings.TrimPrefix(up.URL, "http://")))
	front := "http://" + listen

	call := func(path, key string, extra map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front+path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		for k, v := range extra {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}

	t.Run("allowed, with the identity copied", func(t *testing.T) {
		res, body := call("/orders/1?page=2", key, map[string]string{
			"X-Auth-Groups": "admins", "X-Auth-Subject": "root", // a client's copies
		})
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		got := decodeReceived(t, body)
		if got.Name != "app" || got.Path != "/orders/1" || got.Query != "page=2" {
			t.Fatalf("the upstream received %+v", got)
		}
		h := got.Headers
		if h.Get("X-Auth-Subject") == "" || h.Get("X-Auth-Subject") == "root" || h.Get("X-Auth-Method") != "api_key" {
			t.Errorf("identity at the upstream: subject %q method %q", h.Get("X-Auth-Subject"), h.Get("X-Auth-Method"))
		}
		if h.Get("X-Auth-Groups") != "" || h.Get("X-Api-Key") != "" || h.Get("X-Request-Id") == "" {
			t.Errorf("upstream headers: groups %q (a client's copy must not pass), key %q, request id %q",
				h.Get("X-Auth-Groups"), h.Get("X-Api-Key"), h.Get("X-Request-Id"))
		}
	})
	for _, tc := range []struct {
		name, path, key string
		status          int
		header, value   string
	}{
		{"no credential", "/orders/1", "", 401, "WWW-Authenticate", `realm="gatehouse"`},
		{"bad credential", "/orders/1", "gh_bad_" + strings.Repeat("x", 40), 401, "WWW-Authenticate", `realm="gatehouse"`},
		{"policy refuses", "/admin/users", key, 403, "", ""},
		{"no route (mapped by error_page)", "/nowhere", key, 404, "", ""},
		{"dot segments (mapped by error_page)", "/orders/%2e%2e/admin/users", key, 400, "", ""},
		{"decision-only route", "/only/1", key, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := call(tc.path, tc.key, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.header != "" && !strings.Contains(res.Header.Get(tc.header), tc.value) {
				t.Errorf("%s %q, want it to contain %q", tc.header, res.Header.Get(tc.header), tc.value)
			}
			if tc.status != 200 && strings.Contains(string(body), `"name":"app"`) {
				t.Errorf("a refused request reached the upstream: %s", body)
			}
		})
	}
	t.Run("rate limited: 429 with Retry-After through error_page", func(t *testing.T) {
		if res, body := call("/limited/1", "", nil); res.StatusCode != 200 {
			t.Fatalf("first: %d %s", res.StatusCode, body)
		}
		res, body := call("/limited/1", "", nil)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("second: %d Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	})
	t.Run("the gateway counts nginx's client, not nginx", func(t *testing.T) {
		// From 127.0.0.2: the client address nginx forwards, not its own
		// (127.0.0.1), is the one logged and rate-limited.
		client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext}}
		res, err := client.Get(front + "/limited/2")
		if err != nil {
			t.Skipf("cannot connect from 127.0.0.2 on this machine: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("another client's first request: %d, want 200 (its own bucket)", res.StatusCode)
		}
		waitFor(t, "the access log line with the client address", 5*time.Second, func() bool {
			for _, l := range tg.accessLog.lines(t) {
				if l["path"] == "/limited/2" && l["client_ip"] == "127.0.0.2" && l["route"] == "limited" {
					return true
				}
			}
			return false
		})
	})
}
