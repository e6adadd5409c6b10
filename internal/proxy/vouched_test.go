package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestVouchedHeadersSurviveConnection: headers handed to Forward are set on
// the outgoing request after hop-by-hop removal, so the client's Connection
// header cannot remove them, and they replace client-sent copies.
func TestVouchedHeadersSurviveConnection(t *testing.T) {
	got := make(chan http.Header, 1)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	p, err := New(Config{Targets: []*url.URL{target}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	vouched := []Header{{"X-Auth-Subject", "alice"}, {"X-Auth-Groups", "suspended"}, {"X-Request-Id", "rid-1"}}
	for i := range 10 { // more than fit in the exchange's inline array
		vouched = append(vouched, Header{Name: fmt.Sprintf("X-Extra-%d", i), Value: "v"})
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := p.Forward(w, r, vouched); err != nil {
			t.Errorf("Forward: %v", err)
		}
	}))
	t.Cleanup(gw.Close)

	req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
	req.Header["Connection"] = []string{"X-Auth-Subject, x-auth-groups", "X-REQUEST-ID,X-Extra-3"}
	req.Header.Set("X-Auth-Subject", "mallory")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := <-got
	for _, v := range vouched {
		if vals := h.Values(v.Name); len(vals) != 1 || vals[0] != v.Value {
			t.Errorf("%s = %q, want %q", v.Name, vals, v.Value)
		}
	}
}

func TestClassifyBodyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"framing error", errors.New("malformed chunked encoding"), ErrMalformedBody},
		{"client ended mid-body", io.ErrUnexpectedEOF, ErrClientGone},
		{"connection reset", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, ErrClientGone},
		{"read deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), ErrClientGone},
		{"closed", net.ErrClosed, ErrClientGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &exchange{Context: t.Context(), target: &target{name: "u"}, err: errors.New("transport failed")}
			ex.body.err = tc.err
			if got := classify(t.Context(), ex); !errors.Is(got, tc.want) {
				t.Fatalf("classify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUnaskedSwitchRefused: a 101 is refused unless Forward let a
// WebSocket upgrade through.
func TestUnaskedSwitchRefused(t *testing.T) {
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nTUNNEL")
	})
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprintf("websocket=%v", ws), func(t *testing.T) {
			g := newGateway(t, Config{Targets: []*url.URL{target}, WebSocket: ws}, 0)
			res, err := http.Get(g.URL + "/plain")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "TUNNEL") {
				t.Fatalf("status %d body %q", res.StatusCode, body)
			}
			if o := g.next(t); !errors.Is(o.err, ErrUpstreamUnavailable) || o.res.Switched {
				t.Fatalf("outcome %+v", o)
			}
		})
	}
}
