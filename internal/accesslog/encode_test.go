package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is the line this package wrote when it logged through
// log/slog's JSONHandler; appendLine must reproduce it byte for byte.
func slogLine(t testing.TB, l *Logger, e *Entry, now time.Time) string {
	t.Helper()
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("listener", e.Listener),
		slog.String("route", e.Route),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
	}
	if e.RawQuery != "" {
		attrs = append(attrs, slog.String("query", l.RedactQuery(e.RawQuery)))
	}
	client := ""
	if e.ClientIP.IsValid() {
		client = e.ClientIP.String()
	}
	attrs = append(attrs,
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Float64("duration_ms", ms(e.Duration)),
		slog.String("client_ip", client),
	)
	if e.Upstream != "" {
		attrs = append(attrs, slog.String("upstream", e.Upstream), slog.Float64("upstream_latency_ms", ms(e.UpstreamLatency)))
	}
	if e.Subject != "" || e.AuthMethod != "" {
		attrs = append(attrs, slog.String("subject", e.Subject), slog.String("auth_method", e.AuthMethod))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	var buf bytes.Buffer
	r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...)
	if err := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

var encodeCases = []Entry{
	{},
	{RequestID: "rid-1", Listener: "main", Route: "users", Method: "GET", Host: "api.test", Path: "/users/1",
		RawQuery: "token=supersecret&q=x", Proto: "HTTP/1.1", Status: 200, Bytes: 42,
		Duration: 1500 * time.Microsecond, ClientIP: netip.MustParseAddr("192.0.2.7"),
		Upstream: "127.0.0.1:9000", UpstreamLatency: time.Millisecond, Subject: "alice", AuthMethod: "jwt"},
	{RequestID: "r", Method: "POST", Path: "/a\"b\\c\n\r\t\x00\x1f\x7f<>&\u2028\u2029\xff\xe6\x97", Host: "h\x01",
		RawQuery: "%zz=1&API_KEY=2&a=%e6%97&b=\"<x>\"&&=&c", Status: 499, Bytes: -1, Duration: -5 * time.Microsecond,
		ClientIP: netip.MustParseAddr("2001:db8::1"), Error: "client_closed_request"},
	{Path: "/", ClientIP: netip.MustParseAddr("fe80::1%eth\"0"), Subject: "", AuthMethod: "anonymous",
		Duration: 3 * time.Hour, Upstream: "builtin:echo", UpstreamLatency: 0, Status: 101},
	{Path: "/x", ClientIP: netip.MustParseAddr("::ffff:10.0.0.1"), Duration: 999 * time.Nanosecond, Bytes: 1 << 40},
	{Path: "/" + strings.Repeat("long/", 200), RawQuery: strings.Repeat("k=v&", 300) + "secret=s", Status: 200},
}

func TestAppendLineMatchesSlog(t *testing.T) {
	l := New(&bytes.Buffer{}, []string{"X-Session"})
	for _, now := range []time.Time{
		time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600)),
		time.Now(),
	} {
		for i, e := range encodeCases {
			got := string(l.appendLine(nil, &e, now))
			if want := slogLine(t, l, &e, now); got != want {
				t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Errorf("case %d: not JSON: %v: %s", i, err, got)
			}
		}
	}
}

func FuzzAppendLine(f *testing.F) {
	f.Add("rid", "GET", "/a", "token=x&b=%zz", "1.2.3.4", "alice", "jwt", "", int64(1500))
	f.Add("", "", "/\x00\"\\\u2028", "a=\xff", "::1", "", "", "bad_request", int64(-1))
	l := New(&bytes.Buffer{}, []string{"session"})
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	f.Fuzz(func(t *testing.T, rid, method, path, query, ip, subject, authMethod, errCode string, dur int64) {
		addr, _ := netip.ParseAddr(ip)
		e := Entry{RequestID: rid, Method: method, Path: path, RawQuery: query, ClientIP: addr,
			Subject: subject, AuthMethod: authMethod, Error: errCode, Duration: time.Duration(dur), Upstream: subject}
		got := string(l.appendLine(nil, &e, now))
		if want := slogLine(t, l, &e, now); got != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("not JSON: %s", got)
		}
	})
}

// TestBufferedLogger checks that buffered lines reach the destination on
// Flush, on their own after FlushInterval, and on Close, whole.
func TestBufferedLogger(t *testing.T) {
	var w lockedBuffer
	c := &closeRecorder{}
	l := NewBuffered(&w, c, nil)
	e := &Entry{RequestID: "rid-1", Path: "/x", Status: 200}
	l.Log(e)
	if w.String() != "" {
		t.Fatal("a buffered line was written at once")
	}
	if err := l.Flush(); err != nil || strings.Count(w.String(), "\n") != 1 {
		t.Fatalf("Flush: %v, %q", err, w.String())
	}

	l.Log(e)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(w.String(), "\n") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was not written after FlushInterval")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Filling the buffer writes it, in whole lines.
	big := &Entry{RequestID: "rid-2", Path: "/" + strings.Repeat("p", 1000)}
	for range 3 * BufferSize / 1000 {
		l.Log(big)
	}
	l.Log(e)
	if err := l.Close(); err != nil || !c.closed {
		t.Fatalf("Close: %v, closed %v", err, c.closed)
	}
	lines := w.writes()
	total := 0
	for _, wr := range lines {
		if len(wr) > BufferSize || !strings.HasSuffix(wr, "\n") {
			t.Fatalf("a write of %d bytes is not whole lines within the buffer", len(wr))
		}
		total += strings.Count(wr, "\n")
	}
	if want := 2 + 3*BufferSize/1000 + 1; total != want {
		t.Fatalf("%d lines written, want %d", total, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("not JSON: %q", line)
		}
	}

	// After Close, lines are written through.
	l.Log(e)
	if got := strings.Count(w.String(), "\n"); got != total+1 {
		t.Fatalf("a line logged after Close was not written (%d lines)", got)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ws  []string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ws = append(b.ws, string(p))
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) writes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ws...)
}

type closeRecorder struct{ closed bool }

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func BenchmarkLogBuffered(b *testing.B) {
	l := NewBuffered(discardWriter{}, nil, nil)
	defer l.Close()
	e := &Entry{RequestID: "0123456789abcdef0123456789abcdef", Listener: "main", Route: "r", Method: "GET", Host: "api.test",
		Path: "/api/users/42", RawQuery: "page=2&access_token=x", Proto: "HTTP/1.1", Status: 200, Bytes: 512,
		Duration: 1234 * time.Microsecond, ClientIP: netip.MustParseAddr("192.0.2.7"), Upstream: "10.0.0.1:8080",
		UpstreamLatency: time.Millisecond, Subject: "alice", AuthMethod: "jwt"}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
}
