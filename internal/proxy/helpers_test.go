package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// outcome is what one Forward call produced, as seen by the test gateway.
type outcome struct {
	res     Result
	err     error
	aborted bool // Forward panicked with http.ErrAbortHandler
}

// gateway is a stand-in for the pipeline: a real server whose handler calls
// Forward and, on error, writes a bare status.
type gateway struct {
	*httptest.Server
	proxy    *Proxy
	outcomes chan outcome
}

func newGateway(t testing.TB, cfg Config, maxBody int64) *gateway {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	g := &gateway{proxy: p, outcomes: make(chan outcome, 64)}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if maxBody > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		defer func() {
			if v := recover(); v != nil {
				g.outcomes <- outcome{aborted: v == http.ErrAbortHandler}
				panic(v)
			}
		}()
		res, err := p.Forward(w, r, nil)
		g.outcomes <- outcome{res: res, err: err}
		if err != nil {
			if code := statusFor(err); code != 0 {
				w.WriteHeader(code)
			}
		}
	}))
	t.Cleanup(g.Close)
	t.Cleanup(p.Close)
	return g
}

// statusFor is the mapping the pipeline is expected to make; 0 means write
// nothing.
func statusFor(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUpstreamTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrUpstreamUnavailable):
		return http.StatusBadGateway
	case errors.Is(err, ErrClientGone):
		return 0
	}
	return http.StatusInternalServerError
}

// next returns the outcome of the next Forward call.
func (g *gateway) next(t testing.TB) outcome {
	t.Helper()
	select {
	case o := <-g.outcomes:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no Forward call finished within 10s")
		return outcome{}
	}
}

// upstream starts a real upstream server and returns its base URL.
func upstream(t testing.TB, h http.HandlerFunc) *url.URL {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return mustURL(t, srv.URL)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustResolver(t testing.TB, trusted ...string) *clientip.Resolver {
	t.Helper()
	r, err := clientip.NewResolver(trusted)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// refusedURL returns an http URL on which nothing listens.
func refusedURL(t testing.TB) *url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return mustURL(t, "http://"+addr)
}

// released returns a channel closed when the test ends, for upstream
// handlers that must block until then.
func released(t testing.TB) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// newConnTrackingServer starts an upstream that answers 204 and reports
// every connection state change to hook.
func newConnTrackingServer(t testing.TB, hook func(net.Conn, http.ConnState)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = hook
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}
