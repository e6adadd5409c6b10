package accesslog

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRedactQuery(t *testing.T) {
	l := New(&bytes.Buffer{}, []string{"X-Session"})
	for _, tc := range []struct{ in, want string }{
		{"a=1&b=2", "a=1&b=2"},
		{"access_token=abc&page=2", "access_token=REDACTED&page=2"},
		{"API_KEY=abc", "API_KEY=REDACTED"},
		{"x-session=s3cr3t", "x-session=REDACTED"},
		{"%61ccess_token=abc", "%61ccess_token=REDACTED"},
		{"%zz=abc", "%zz=REDACTED"},
		{"token", "token"},
		{"code=1&code=2", "code=REDACTED&code=REDACTED"},
	} {
		if got := l.RedactQuery(tc.in); got != tc.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil)
	l.Log(&Entry{
		Start: time.Now(), RequestID: "rid-1", Route: "users", Method: "GET", Host: "api.test",
		Path: "/users/1", RawQuery: "token=supersecret&q=x", Status: 200, Bytes: 42,
		Duration: 1500 * time.Microsecond, ClientIP: netip.MustParseAddr("192.0.2.7"),
		Upstream: "127.0.0.1:9000", UpstreamLatency: time.Millisecond,
	})
	line := buf.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", line)
	}
	if strings.Contains(line, "supersecret") {
		t.Fatalf("secret query value logged: %s", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	for k, want := range map[string]any{
		"msg": "request", "request_id": "rid-1", "route": "users", "method": "GET", "path": "/users/1",
		"query": "token=REDACTED&q=x", "status": float64(200), "bytes": float64(42), "duration_ms": 1.5,
		"client_ip": "192.0.2.7", "upstream": "127.0.0.1:9000", "upstream_latency_ms": float64(1),
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if _, ok := m["time"]; !ok {
		t.Error("no time field")
	}
}

func TestDiscard(t *testing.T) {
	Discard().Log(&Entry{}) // must not panic
	var nilLogger *Logger
	nilLogger.Log(&Entry{})
}

func BenchmarkLog(b *testing.B) {
	l := New(discardWriter{}, nil)
	e := &Entry{RequestID: "abc", Route: "r", Method: "GET", Path: "/x", Status: 200, ClientIP: netip.MustParseAddr("127.0.0.1")}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
