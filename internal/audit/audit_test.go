package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestWriterEventsAreVersionedJSONLines(t *testing.T) {
	var buf lockedBuffer
	w := NewWriter(&buf, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Log(&Event{Type: TypeAuthentication, Outcome: OutcomeDeny, Reason: "token_expired", RequestID: strings.Repeat("r", i%3+1)})
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["schema_version"] != SchemaVersion || m["event"] != TypeAuthentication || m["reason"] != "token_expired" || m["time"] == nil {
			t.Fatalf("bad event %v", m)
		}
		if _, ok := m["subject"]; ok {
			t.Fatalf("empty fields must be omitted: %v", m)
		}
	}
	w.Log(&Event{Outcome: OutcomeAllow}) // after Close: dropped, no panic
}

func TestWriterFlushesWithoutClose(t *testing.T) {
	var buf lockedBuffer
	w := NewWriter(&buf, nil)
	defer w.Close()
	w.Log(&Event{Type: TypeAuthentication, Outcome: OutcomeAllow, Reason: "ok"})
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(buf.String(), `"outcome":"allow"`) {
		if time.Now().After(deadline) {
			t.Fatal("event not flushed within the flush interval")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkWriterLog(b *testing.B) {
	w := NewWriter(&bytes.Buffer{}, nil)
	defer w.Close()
	e := &Event{Type: TypeAuthentication, Outcome: OutcomeAllow, Reason: "ok", Subject: "u1", Route: "r"}
	b.ReportAllocs()
	for b.Loop() {
		w.Log(e)
	}
}

// BenchmarkWriterLogFull encodes a typical authentication event, written
// to a destination that costs nothing, so only Gatehouse's work counts.
func BenchmarkWriterLogFull(b *testing.B) {
	w := NewWriter(io.Discard, nil)
	defer w.Close()
	e := &Event{Type: TypeAuthentication, RequestID: strings.Repeat("a", 32), Route: "r", ClientAddr: netip.MustParseAddr("192.0.2.7"),
		HTTPMethod: "GET", Path: "/api/users/42", AuthMethod: "jwt", Outcome: OutcomeAllow, Reason: "ok",
		Subject: "alice", Issuer: "https://idp.example", Provider: "idp", CredentialID: "jti-1"}
	b.ReportAllocs()
	for b.Loop() {
		e.Time = time.Time{}
		w.Log(e)
	}
}
