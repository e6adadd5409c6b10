package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestShutdownIsBounded: a collector that never answers cannot hold
// Shutdown past tracing.timeout, even with a context without deadline.
func TestShutdownIsBounded(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(release)

	for _, tc := range []struct {
		name string
		cfg  config.Tracing
	}{
		{"stuck collector", config.Tracing{Enabled: true, Endpoint: stuck.URL, Insecure: true, SamplingRatio: 1,
			ServiceName: "t", Timeout: config.Duration(300 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg, "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.Tracer().Start(context.Background(), "x")
			span.End()
			start := time.Now()
			// The SDK reports the lost batch either as Shutdown's error or
			// to the error handler, depending on which deadline fires
			// first: what matters here is that Shutdown returns.
			_ = p.Shutdown(context.Background())
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Shutdown took %v with a 300ms timeout", d)
			}
		})
	}
	if _, err := New(config.Tracing{}, "", nil); err == nil {
		t.Error("New of a disabled block succeeded")
	}
}
