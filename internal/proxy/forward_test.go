package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestInformationalResponses: a 103 Early Hints from the upstream reaches
// the client before the final response, whether or not the client
// request's context already carries an httptrace.ClientTrace (which must
// then still see the 1xx: the core composes with it rather than hide it).
func TestInformationalResponses(t *testing.T) {
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	for _, tc := range []struct {
		name   string
		traced bool
	}{
		{"untraced", false},
		{"traced", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Targets: []*url.URL{target}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var parentSaw atomic.Int32
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.traced {
					r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
						Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
							parentSaw.Store(int32(code))
							return nil
						},
					}))
				}
				if _, err := p.Forward(w, r, nil); err != nil {
					t.Errorf("Forward: %v", err)
				}
			}))
			defer front.Close()

			var hints []string
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					hints = append(hints, h.Get("Link"))
					return nil
				},
			}), http.MethodGet, front.URL, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK || len(hints) != 1 || hints[0] != "</app.css>; rel=preload" {
				t.Fatalf("status %d, hints %q; want 200 after one 103 with the Link", res.StatusCode, hints)
			}
			if res.Header.Get("Link") != "" {
				t.Errorf("the 103's Link leaked into the final response")
			}
			if got := parentSaw.Load(); tc.traced && got != http.StatusEarlyHints {
				t.Errorf("the client request's own trace saw %d, want 103", got)
			}
		})
	}
}

// TestForwardedElementIP: the X-Forwarded-For text cut out of the
// Forwarded element is exactly the peer's address as netip formats it.
func TestForwardedElementIP(t *testing.T) {
	for _, tc := range []struct {
		peer string
		want string // "" for no peer
	}{
		{"192.0.2.10", "192.0.2.10"},
		{"2001:db8::1", "2001:db8::1"},
		{"::1", "::1"},
		{"", ""},
	} {
		t.Run(tc.peer, func(t *testing.T) {
			var peer netip.Addr
			if tc.peer != "" {
				peer = netip.MustParseAddr(tc.peer)
			}
			elem, ip := forwardedElementIP(peer, `gw.example`, "https")
			if ip != tc.want {
				t.Errorf("ip = %q, want %q", ip, tc.want)
			}
			if elem != forwardedElement(peer, `gw.example`, "https") || !strings.HasPrefix(elem, "for=") {
				t.Errorf("element %q", elem)
			}
		})
	}
}

// TestHTTP2Clients: clients speaking HTTP/2 to the gateway are proxied to
// an HTTP/1.1 upstream with their bodies, and get the upstream's trailers.
func TestHTTP2Clients(t *testing.T) {
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Body-Length")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(append([]byte(r.Proto+" "), body...))
		w.Header().Set("X-Body-Length", strconv.Itoa(len(body)))
	})
	p, err := New(Config{Targets: []*url.URL{target}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := p.Forward(w, r, nil); err != nil {
			t.Errorf("Forward: %v", err)
		}
	}))
	front.EnableHTTP2 = true
	front.StartTLS()
	defer front.Close()

	for _, tc := range []struct {
		name   string
		method string
		body   io.Reader
		want   string
	}{
		{"get", http.MethodGet, nil, "HTTP/1.1 "},
		{"post with length", http.MethodPost, strings.NewReader("hello"), "HTTP/1.1 hello"},
		{"post streamed", http.MethodPost, io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")), "HTTP/1.1 hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, front.URL+"/x", tc.body)
			res, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if res.ProtoMajor != 2 || string(got) != tc.want {
				t.Fatalf("%s: body %q, want %q over HTTP/2", res.Proto, got, tc.want)
			}
			if n := res.Trailer.Get("X-Body-Length"); n != strconv.Itoa(len(tc.want)-len("HTTP/1.1 ")) {
				t.Errorf("trailer X-Body-Length = %q", n)
			}
		})
	}
}

// TestInformationalResponseKeepsGatewayHeaders: the headers the gateway
// set on the response before forwarding (the request id) go out with a
// 1xx and still with the final response. httputil.ReverseProxy clears
// the header map after a 1xx, losing them.
func TestInformationalResponseKeepsGatewayHeaders(t *testing.T) {
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = w.Write([]byte("ok"))
	})
	p, err := New(Config{Targets: []*url.URL{target}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "rid-1")
		if _, err := p.Forward(w, r, nil); err != nil {
			t.Errorf("Forward: %v", err)
		}
	}))
	defer front.Close()
	var hint textproto.MIMEHeader
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hint = h
			return nil
		},
	}), http.MethodGet, front.URL, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "rid-1" {
		t.Errorf("final response X-Request-Id = %q, want [rid-1]", got)
	}
	if res.Header.Get("Link") != "" {
		t.Errorf("the 103's Link leaked into the final response")
	}
	if hint.Get("Link") == "" || hint.Get("X-Request-Id") != "rid-1" {
		t.Errorf("103 headers %v, want the Link and the request id", hint)
	}
}
