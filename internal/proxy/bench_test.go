package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// benchWriter is a reusable ResponseWriter, so the benchmark measures the
// proxy and not a recorder.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkForward measures one proxied GET against a real upstream on
// loopback, so most of the time is the upstream exchange itself.
func BenchmarkForward(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	target := upstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, payload)
	})
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"timeouts+rewrite+trusted", Config{
			StripPrefix: "/api", AddPrefix: "/v2",
			DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second,
			Resolver: mustResolver(b, "10.0.0.0/8"),
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.Targets = []*url.URL{target}
			p, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			req := httptest.NewRequest(http.MethodGet, "http://gw.example/api/users?page=2", nil)
			req.RemoteAddr = "10.1.2.3:40000"
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("Accept", "application/json")
			w := &benchWriter{header: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				if _, err := p.Forward(w, req, nil); err != nil || w.status != http.StatusOK {
					b.Fatalf("Forward: %v (status %d)", err, w.status)
				}
			}
		})
	}
}
