package gateway

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// max_header_bytes is the limit, exactly: Go's own check lets through up
// to 4 KiB more (its read buffer's slack), so Gatehouse counts itself.
func TestMaxHeaderBytesIsExact(t *testing.T) {
	const limit = 2048
	tg := startGateway(t, `
listeners:
  - name: main
    address: "127.0.0.1:0"
    max_header_bytes: 2KiB
admin:
  address: "127.0.0.1:0"
routes:
  - name: echo
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`).serve()
	addr := strings.TrimPrefix(tg.url, "http://")

	// request builds a request whose request line and fields, in the
	// "Name: value" CRLF form max_header_bytes counts, take size bytes.
	request := func(size int) string {
		head := "GET /echo?x=1 HTTP/1.1\r\nHost: gw.test\r\nUser-Agent: raw\r\n"
		pad := size - len(head) - len("X-Pad: \r\n")
		return head + "X-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n"
	}
	send := func(t *testing.T, raw string) (*http.Response, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(body)
	}

	for _, tc := range []struct {
		name   string
		size   int
		status int
		ctype  string
	}{
		{"well below", limit / 2, 200, ""},
		{"exactly the limit", limit, 200, ""},
		{"one byte over", limit + 1, 431, "application/problem+json"},
		{"within Go's slack", limit + 4000, 431, "application/problem+json"},
		// Past Go's own limit (limit + 4096 read), Go's server answers
		// before Gatehouse sees anything: plain text, documented.
		{"past Go's own limit", limit + 8192, 431, "text/plain; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := request(tc.size)
			if got := len(raw) - len("\r\n"); got != tc.size {
				t.Fatalf("test built %d bytes, want %d", got, tc.size)
			}
			res, body := send(t, raw)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.ctype != "" && res.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.status == 431 && !res.Close {
				t.Error("the connection is kept open after an oversized header")
			}
			if tc.ctype == "application/problem+json" {
				var p map[string]any
				if err := json.Unmarshal([]byte(body), &p); err != nil {
					t.Fatalf("not JSON: %v: %s", err, body)
				}
				want := fmt.Sprintf("The request line and header fields exceed this listener's limit of %d bytes.", limit)
				if p["type"] != "urn:gatehouse:problem:request-header-too-large" || p["status"] != float64(431) ||
					p["detail"] != want || p["request_id"] == "" || res.Header.Get("X-Request-Id") == "" {
					t.Fatalf("problem body %s", body)
				}
			}
		})
	}
	// The refusal has its access log line, like every answer of the pipeline.
	waitFor(t, "access log line of the 431", 3*time.Second, func() bool {
		return strings.Contains(tg.accessLog.String(), `"status":431`) &&
			strings.Contains(tg.accessLog.String(), `"error":"request-header-too-large"`)
	})
}

func BenchmarkHeaderSize(b *testing.B) {
	r, _ := http.NewRequest("GET", "http://gw.test/api/users/42?page=2", nil)
	r.RequestURI = "/api/users/42?page=2"
	for _, h := range []string{"Accept", "Accept-Encoding", "Authorization", "User-Agent", "X-Request-Id", "Cookie"} {
		r.Header.Set(h, strings.Repeat("v", 40))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = headerSize(r, 64<<10)
	}
}

// Over HTTP/2 the same count applies (the fields are counted in the same
// "Name: value" form, the pseudo-header fields as the request line).
func TestMaxHeaderBytesHTTP2(t *testing.T) {
	const limit = 2048
	certFile, keyFile, pool := selfSigned(t)
	tg := startGateway(t, `
listeners:
  - name: main
    address: "127.0.0.1:0"
    max_header_bytes: 2KiB
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
admin: {disabled: true}
routes:
`+routeYAML("echo", "{path_prefix: /}", `{targets: ["builtin:echo"]}`)).serve()
	addr := tg.Addr("main").String()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	for _, tc := range []struct {
		size, status int
	}{{limit, 200}, {limit + 1, 431}} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/echo", nil)
		req.Header.Set("User-Agent", "h2")
		req.Header.Set("Accept-Encoding", "gzip") // so the transport adds nothing
		fixed := len("GET /echo HTTP/2.0\r\n") + len("Host: "+addr+"\r\n") +
			len("User-Agent: h2\r\n") + len("Accept-Encoding: gzip\r\n") + len("X-Pad: \r\n")
		req.Header.Set("X-Pad", strings.Repeat("p", tc.size-fixed))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.Proto != "HTTP/2.0" || res.StatusCode != tc.status {
			t.Fatalf("%d bytes: %s %d, want %d: %s", tc.size, res.Proto, res.StatusCode, tc.status, body)
		}
		if tc.status == 431 && !strings.Contains(string(body), "request-header-too-large") {
			t.Fatalf("not the problem body: %s", body)
		}
	}
}
