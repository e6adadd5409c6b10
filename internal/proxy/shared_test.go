package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// TestSharedTransportOutlivesProxy: proxies given one transport share its
// connection pool, and closing one (a reload retiring the plan) leaves the
// pool to the others; a proxy with its own transport dials anew.
func TestSharedTransportOutlivesProxy(t *testing.T) {
	var dials atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	target, _ := url.Parse(up.URL)
	shared := NewTransport(TransportSettings{})
	defer shared.CloseIdleConnections()

	for _, tc := range []struct {
		name      string
		transport *http.Transport // nil: each proxy its own
		wantDials int64
	}{
		{"shared transport", shared, 1},
		{"own transports", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := dials.Load()
			call := func(p *Proxy) {
				t.Helper()
				rec := httptest.NewRecorder()
				if _, err := p.Forward(rec, httptest.NewRequest("GET", "http://gw.test/x", nil), nil); err != nil || rec.Code != 200 {
					t.Fatalf("forward: %d %v", rec.Code, err)
				}
			}
			old, err := New(Config{Targets: []*url.URL{target}, Upstream: tc.transport})
			if err != nil {
				t.Fatal(err)
			}
			call(old)
			next, err := New(Config{Targets: []*url.URL{target}, Upstream: tc.transport})
			if err != nil {
				t.Fatal(err)
			}
			old.Close() // the reload retires the old proxy
			call(next)
			next.Close()
			if got := dials.Load() - start; got != tc.wantDials {
				t.Fatalf("%d upstream connections, want %d", got, tc.wantDials)
			}
		})
	}
}
