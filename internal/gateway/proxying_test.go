package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestForwardingHeaders(t *testing.T) {
	up := newUpstream(t, "u")
	route := "routes:\n" + routeYAML("all", "{path_prefix: /}", `{targets: ["`+up.URL+`"]}`)
	spoof := func(req *http.Request) {
		req.Host = "shop.test"
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "evil.test")
		req.Header.Set("Forwarded", "for=6.6.6.6;proto=https")
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "must not pass")
		req.Header.Set("Proxy-Connection", "keep-alive")
	}
	for _, tc := range []struct {
		name               string
		forwarding         string
		wantXFF, wantProto string
		wantHost, wantFwd  string
		wantLoggedClientIP string
	}{
		{
			name:       "untrusted peer: spoofed headers are replaced",
			forwarding: "",
			wantXFF:    "127.0.0.1", wantProto: "http", wantHost: "shop.test",
			wantFwd:            `for=127.0.0.1;host="shop.test";proto=http`,
			wantLoggedClientIP: "127.0.0.1",
		},
		{
			name:       "trusted peer: the chain is extended",
			forwarding: "forwarding: {trusted_proxies: [127.0.0.1/32]}\n",
			wantXFF:    "6.6.6.6, 127.0.0.1", wantProto: "https", wantHost: "evil.test",
			wantFwd:            `for=6.6.6.6;proto=https, for=127.0.0.1;host="shop.test";proto=http`,
			wantLoggedClientIP: "6.6.6.6",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, header+tc.forwarding+route).serve()
			req, _ := http.NewRequest("GET", tg.url+"/x", nil)
			spoof(req)
			res, body := do(t, req)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			h := decodeReceived(t, body).Headers
			for name, want := range map[string]string{
				"X-Forwarded-For": tc.wantXFF, "X-Forwarded-Proto": tc.wantProto,
				"X-Forwarded-Host": tc.wantHost, "Forwarded": tc.wantFwd,
			} {
				if got := strings.Join(h.Values(name), ", "); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, hop := range []string{"X-Hop", "Proxy-Connection"} {
				if h.Get(hop) != "" {
					t.Errorf("hop-by-hop header %s reached the upstream", hop)
				}
			}
			tg.Flush() // the access log is buffered
			lines := tg.accessLog.lines(t)
			if got := lines[len(lines)-1]["client_ip"]; got != tc.wantLoggedClientIP {
				t.Errorf("logged client_ip %v, want %s", got, tc.wantLoggedClientIP)
			}
		})
	}
}

// TestSSEFlushedBeforeUpstreamFinishes proves streaming: the upstream sends
// one event and then waits until the client has received it through the
// gateway before it finishes.
func TestSSEFlushedBeforeUpstreamFinishes(t *testing.T) {
	received := make(chan struct{})
	upstream := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-received:
		case <-time.After(5 * time.Second):
			return // the test fails on its side
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	tg := startGateway(t, header+"routes:\n"+routeYAML("events", "{path: /events}",
		`{targets: ["`+upstream+`"], timeouts: {request: 0}}`)).serve()

	res, err := http.Get(tg.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				events <- line
			}
		}
		close(events)
	}()
	select {
	case ev := <-events:
		if ev != "data: first" {
			t.Fatalf("first event %q", ev)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first event did not arrive while the upstream was still open: not flushed")
	}
	close(received)
	if ev := <-events; ev != "data: second" {
		t.Fatalf("second event %q", ev)
	}
}

func TestWebSocketThroughGateway(t *testing.T) {
	upstream := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	tg := startGateway(t, header+"routes:\n"+routeYAML("ws", "{path: /ws}",
		`{targets: ["`+upstream+`"], timeouts: {request: 0}}`)+"    websocket: true\n").serve()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tg.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "second message"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func TestBodyLimit(t *testing.T) {
	up := newUpstream(t, "u")
	tg := startGateway(t, header+"routes:\n"+
		"  - name: upload\n    public: true\n    match: {path: /upload}\n    max_body_bytes: 1KiB\n    upstream: {targets: [\""+up.URL+"\"]}\n").serve()

	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"under the limit", 512, false, 200},
		{"exactly the limit", 1024, false, 200},
		{"over, with Content-Length", 2048, false, 413},
		{"over, chunked", 64 << 10, true, 413},
		{"under, chunked", 100, true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(strings.Repeat("x", tc.size))
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest("POST", tg.url+"/upload", body)
			res, got := do(t, req)
			if tc.status == 413 {
				problemBody(t, res, got, 413, "request-body-too-large")
				return
			}
			if res.StatusCode != 200 || decodeReceived(t, got).Body != tc.size {
				t.Fatalf("status %d body %s", res.StatusCode, got)
			}
		})
	}
}

func TestUpstreamTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	tg := startGateway(t, header+"routes:\n"+
		routeYAML("headers", "{path: /headers}", `{targets: ["`+slow+`"], timeouts: {response_header: 200ms}}`)+
		routeYAML("overall", "{path: /overall}", `{targets: ["`+slow+`"], timeouts: {request: 300ms}}`)).serve()
	for _, path := range []string{"/headers", "/overall"} {
		t.Run(path, func(t *testing.T) {
			start := time.Now()
			res, body := get(t, tg.url+path)
			problemBody(t, res, body, 504, "upstream-timeout")
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func newHandlerUpstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := newServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
