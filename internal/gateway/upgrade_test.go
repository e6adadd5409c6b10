package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// switchingUpstream is an upstream that switches protocols: when always
// is false, only for requests that ask for an upgrade (answering with the
// protocol asked for); when always is true, for every request, as a
// hostile or buggy backend might. After the 101 it writes "TUNNEL" and
// echoes whatever arrives. Otherwise it answers 200 with what it received.
// Every request's headers are sent to seen.
func switchingUpstream(t *testing.T, always bool) (url string, seen <-chan http.Header) {
	t.Helper()
	ch := make(chan http.Header, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Clone()
		proto := r.Header.Get("Upgrade")
		if proto == "" && !always {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(received{Method: r.Method, Path: r.URL.Path, Headers: r.Header})
			return
		}
		if proto == "" {
			proto = "websocket"
		}
		if strings.HasSuffix(r.URL.Path, "/h2c") {
			proto = "h2c" // whatever was asked
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		head := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n"
		if strings.HasSuffix(r.URL.Path, "/bare") {
			head = "HTTP/1.1 101 Switching Protocols\r\n\r\n" // no Upgrade: matches a request without one
		}
		_, _ = io.WriteString(conn, head+"TUNNEL")
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

// TestUpgradesOnlyWhereRouteOptsIn: a tunnel opens only for a WebSocket
// handshake on a route with websocket: true. Every other upgrade (h2c,
// unknown protocols, lists, WebSocket on other routes or methods) reaches
// the upstream as an ordinary request without Upgrade, and is answered as
// one.
func TestUpgradesOnlyWhereRouteOptsIn(t *testing.T) {
	upURL, seen := switchingUpstream(t, false)
	tg := startGateway(t, header+"routes:\n"+
		routeYAML("ws", "{path_prefix: /ws}", `{targets: ["`+upURL+`"], timeouts: {request: 0}}`)+"    websocket: true\n"+
		routeYAML("plain", "{path_prefix: /plain}", `{targets: ["`+upURL+`"], timeouts: {request: 0}}`)).serve()

	const wsHeaders = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, tc := range []struct {
		name, request string
		tunnel        bool
	}{
		{"websocket on the opted-in route", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + wsHeaders, true},
		{"websocket in another case", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: keep-alive, upgrade\r\nUpgrade: WebSocket\r\n" + wsHeaders, true},
		{"websocket on a route without websocket", "GET /plain HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + wsHeaders, false},
		{"h2c", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", false},
		{"h2c on the plain route", "GET /plain HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", false},
		{"TLS/1.0", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0\r\n", false},
		{"unknown protocol", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n", false},
		{"websocket listed with another protocol", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n" + wsHeaders, false},
		{"another protocol listed first", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n" + wsHeaders, false},
		{"two Upgrade headers", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n" + wsHeaders, false},
		{"websocket on POST", "POST /ws HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + wsHeaders, false},
		{"websocket over HTTP/1.0", "GET /ws HTTP/1.0\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + wsHeaders, false},
		{"Upgrade without Connection", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for len(seen) > 0 {
				<-seen
			}
			c := dialRaw(t, tg.url)
			res, body := c.send(tc.request + "\r\n")
			got := <-seen
			if !tc.tunnel {
				if res.StatusCode != 200 {
					t.Fatalf("status %d, want 200 (an ordinary request): %s", res.StatusCode, body)
				}
				if v, ok := got["Upgrade"]; ok {
					t.Fatalf("the upstream got Upgrade %q", v)
				}
				if strings.Contains(strings.ToLower(strings.Join(got["Connection"], ",")), "upgrade") {
					t.Fatalf("the upstream got Connection %q", got["Connection"])
				}
				return
			}
			if res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101: %s", res.StatusCode, body)
			}
			if !strings.EqualFold(got.Get("Upgrade"), "websocket") {
				t.Fatalf("the upstream got Upgrade %q", got.Get("Upgrade"))
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "TUNNEL" {
				t.Fatalf("tunnel: %q %v", buf, err)
			}
		})
	}
}

// TestUnaskedSwitchIsRefused: an upstream that answers 101 to a request
// that did not (or may not) upgrade gets no tunnel; the client gets 502
// and never a byte of what the upstream sent after its 101.
func TestUnaskedSwitchIsRefused(t *testing.T) {
	upURL, seen := switchingUpstream(t, true)
	tg := startGateway(t, header+"routes:\n"+
		routeYAML("ws", "{path_prefix: /ws}", `{targets: ["`+upURL+`"], timeouts: {request: 0}}`)+"    websocket: true\n"+
		routeYAML("plain", "{path_prefix: /plain}", `{targets: ["`+upURL+`"], timeouts: {request: 0}}`)).serve()
	for _, tc := range []struct{ name, request string }{
		{"no upgrade asked", "GET /plain HTTP/1.1\r\nHost: gw.test\r\n"},
		{"no upgrade asked on a websocket route", "GET /ws HTTP/1.1\r\nHost: gw.test\r\n"},
		{"101 without Upgrade to a request without one", "GET /plain/bare HTTP/1.1\r\nHost: gw.test\r\n"},
		{"101 without Upgrade on a websocket route", "GET /ws/bare HTTP/1.1\r\nHost: gw.test\r\n"},
		{"websocket asked, h2c answered", "GET /ws/h2c HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"},
		{"a stripped h2c upgrade", "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"},
		{"a stripped websocket upgrade", "GET /plain HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, tg.url)
			res, body := c.send(tc.request + "\r\n")
			<-seen
			if res.StatusCode != http.StatusBadGateway || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %q, want 502 problem+json: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if strings.Contains(string(body), "TUNNEL") {
				t.Fatal("tunnelled bytes reached the client")
			}
		})
	}
}

// TestWebSocketOnlyOnOptedInRoute uses a real WebSocket upstream: the
// handshake succeeds through a route with websocket: true and fails
// through one without, where the upstream sees an ordinary GET.
func TestWebSocketOnlyOnOptedInRoute(t *testing.T) {
	upgrades := make(chan string, 4)
	upstream := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		upgrades <- r.Header.Get("Upgrade")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err == nil {
			_ = c.Write(r.Context(), typ, msg)
		}
	})
	tg := startGateway(t, header+"routes:\n"+
		routeYAML("ws", "{path: /ws}", `{targets: ["`+upstream+`"], timeouts: {request: 0}}`)+"    websocket: true\n"+
		routeYAML("plain", "{path: /plain}", `{targets: ["`+upstream+`"], timeouts: {request: 0}}`)).serve()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	base := "ws" + strings.TrimPrefix(tg.url, "http")

	c, _, err := websocket.Dial(ctx, base+"/ws", nil)
	if err != nil {
		t.Fatalf("opted-in route: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "hi" {
		t.Fatalf("echo %q %v", got, err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	if up := <-upgrades; !strings.EqualFold(up, "websocket") {
		t.Fatalf("upstream saw Upgrade %q", up)
	}

	if c, res, err := websocket.Dial(ctx, base+"/plain", nil); err == nil {
		c.CloseNow()
		t.Fatal("a WebSocket opened through a route without websocket: true")
	} else if res != nil && res.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("status 101 on a route without websocket: true")
	}
	if up := <-upgrades; up != "" {
		t.Fatalf("upstream saw Upgrade %q on a route without websocket: true", up)
	}
}
