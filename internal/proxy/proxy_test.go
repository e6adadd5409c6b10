package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestNewValidates(t *testing.T) {
	ok := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{name: "http target", cfg: Config{Targets: []*url.URL{ok}}},
		{name: "https target with path", cfg: Config{Targets: []*url.URL{{Scheme: "https", Host: "api.internal", Path: "/v1"}}}},
		{name: "builtin echo", cfg: Config{Targets: []*url.URL{{Scheme: "builtin", Opaque: "echo"}}}},
		{name: "prefixes", cfg: Config{Targets: []*url.URL{ok}, StripPrefix: "/api/", AddPrefix: "/v2"}},
		{name: "no targets", cfg: Config{}, wantErr: "no targets"},
		{name: "nil target", cfg: Config{Targets: []*url.URL{nil}}, wantErr: "nil target"},
		{name: "ftp", cfg: Config{Targets: []*url.URL{{Scheme: "ftp", Host: "x"}}}, wantErr: "scheme"},
		{name: "no host", cfg: Config{Targets: []*url.URL{{Scheme: "http", Path: "/x"}}}, wantErr: "no host"},
		{name: "unknown builtin", cfg: Config{Targets: []*url.URL{{Scheme: "builtin", Opaque: "teapot"}}}, wantErr: "builtin"},
		{name: "credentials", cfg: Config{Targets: []*url.URL{{Scheme: "http", Host: "x", User: url.UserPassword("u", "hunter2")}}}, wantErr: "credentials"},
		{name: "relative strip", cfg: Config{Targets: []*url.URL{ok}, StripPrefix: "api"}, wantErr: "must start with /"},
		{name: "relative add", cfg: Config{Targets: []*url.URL{ok}, AddPrefix: "v2"}, wantErr: "must start with /"},
		{name: "negative timeout", cfg: Config{Targets: []*url.URL{ok}, RequestTimeout: -time.Second}, wantErr: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				p.Close()
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want ErrInvalidConfig mentioning %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the target password: %v", err)
			}
		})
	}
}

func TestPathRewriting(t *testing.T) {
	type seen struct{ path, query, host string }
	got := make(chan seen, 1)
	base := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.EscapedPath(), r.URL.RawQuery, r.Host}
	})
	for _, tc := range []struct {
		name       string
		targetPath string // appended to the upstream base URL
		strip, add string
		request    string // path and query as the client sends them
		wantPath   string
		wantQuery  string
	}{
		{name: "unchanged", request: "/users?x=1", wantPath: "/users", wantQuery: "x=1"},
		{name: "strip", strip: "/api", request: "/api/users", wantPath: "/users"},
		{name: "strip whole path", strip: "/api", request: "/api", wantPath: "/"},
		{name: "strip with trailing slash", strip: "/api", request: "/api/", wantPath: "/"},
		{name: "strip only on segment boundary", strip: "/api", request: "/apiary", wantPath: "/apiary"},
		{name: "strip prefix configured with slash", strip: "/api/", request: "/api/users", wantPath: "/users"},
		{name: "strip nested", strip: "/api/v1", request: "/api/v1/users/7", wantPath: "/users/7"},
		{name: "add", add: "/v2", request: "/users", wantPath: "/v2/users"},
		{name: "add configured with slash", add: "/v2/", request: "/users", wantPath: "/v2/users"},
		{name: "strip then add", strip: "/api", add: "/v2", request: "/api/users?q=a%20b&q=c", wantPath: "/v2/users", wantQuery: "q=a%20b&q=c"},
		{name: "strip whole then add", strip: "/api", add: "/v2", request: "/api", wantPath: "/v2"},
		{name: "target base path", targetPath: "/base", request: "/users", wantPath: "/base/users"},
		{name: "target base path with slash", targetPath: "/base/", request: "/users", wantPath: "/base/users"},
		{name: "target base, strip and add", targetPath: "/base", strip: "/api", add: "/v2", request: "/api/u", wantPath: "/base/v2/u"},
		{name: "target query first", targetPath: "/?k=v", request: "/x?a=1", wantPath: "/x", wantQuery: "k=v&a=1"},
		{name: "encoded space", strip: "/api", request: "/api/hello%20world", wantPath: "/hello%20world"},
		{name: "escaped slash kept", strip: "/api", request: "/api/a%2Fb", wantPath: "/a%2Fb"},
		{name: "escaped slash with add", add: "/v2", request: "/a%2Fb?x", wantPath: "/v2/a%2Fb", wantQuery: "x"},
		{name: "escaped slash with base path", targetPath: "/base", request: "/a%2Fb", wantPath: "/base/a%2Fb"},
		{name: "prefix written escaped", strip: "/api", request: "/ap%69/a%2Fb", wantPath: "/a%2Fb"},
		{name: "escaped slash is not a boundary", strip: "/api/v1", request: "/api%2Fv1/x", wantPath: "/api%2Fv1/x"},
		{name: "escaped slash inside prefix segment", strip: "/api", request: "/api%2Fx", wantPath: "/api%2Fx"},
		{name: "add needing escapes", add: "/v 2", request: "/users", wantPath: "/v%202/users"},
		{name: "add needing escapes, escaped path", add: "/v 2", request: "/a%2Fb", wantPath: "/v%202/a%2Fb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := mustURL(t, base.String()+tc.targetPath)
			g := newGateway(t, Config{Targets: []*url.URL{target}, StripPrefix: tc.strip, AddPrefix: tc.add}, 0)
			resp, err := http.Get(g.URL + tc.request)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if o := g.next(t); o.err != nil {
				t.Fatalf("Forward: %v", o.err)
			}
			s := <-got
			if s.path != tc.wantPath || s.query != tc.wantQuery {
				t.Fatalf("upstream saw path %q query %q, want %q %q", s.path, s.query, tc.wantPath, tc.wantQuery)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	var targets []*url.URL
	for i := range 3 {
		targets = append(targets, upstream(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, i)
		}))
	}
	g := newGateway(t, Config{Targets: targets}, 0)
	for i := range 7 {
		resp, err := http.Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := i % 3
		if string(body) != fmt.Sprint(want) {
			t.Errorf("request %d went to upstream %s, want %d", i, body, want)
		}
		o := g.next(t)
		if o.err != nil || o.res.Target != targets[want].Host || o.res.Status != http.StatusOK || o.res.Latency <= 0 {
			t.Errorf("request %d: Result %+v, err %v; want target %s, status 200", i, o.res, o.err, targets[want].Host)
		}
	}
}

func TestForwardingHeaders(t *testing.T) {
	headers := make(chan http.Header, 1)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) { headers <- r.Header })
	spoofed := http.Header{
		"X-Forwarded-For":   {"203.0.113.9"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"public.example"},
		"Forwarded":         {`for=203.0.113.9;proto=https`},
	}
	ours := `for=127.0.0.1;host="gw.example";proto=http`
	for _, tc := range []struct {
		name     string
		trusted  []string // nil = nil Resolver
		incoming http.Header
		want     http.Header
	}{
		{
			name:     "nil resolver replaces everything",
			incoming: spoofed,
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"gw.example"}, "Forwarded": {ours},
			},
		},
		{
			name:     "untrusted peer replaces everything",
			trusted:  []string{"10.0.0.0/8"},
			incoming: spoofed,
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"gw.example"}, "Forwarded": {ours},
			},
		},
		{
			name:     "trusted peer appends and keeps",
			trusted:  []string{"127.0.0.1"},
			incoming: spoofed,
			want: http.Header{
				"X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"public.example"}, "Forwarded": {"for=203.0.113.9;proto=https, " + ours},
			},
		},
		{
			name:     "trusted peer without incoming headers",
			trusted:  []string{"127.0.0.0/8"},
			incoming: http.Header{},
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"gw.example"}, "Forwarded": {ours},
			},
		},
		{
			name:    "trusted peer joins header lines",
			trusted: []string{"127.0.0.1"},
			incoming: http.Header{
				"X-Forwarded-For": {"203.0.113.9", "10.0.0.2, 10.0.0.3"},
				"Forwarded":       {"for=203.0.113.9", "for=10.0.0.2"},
			},
			want: http.Header{
				"X-Forwarded-For": {"203.0.113.9, 10.0.0.2, 10.0.0.3, 127.0.0.1"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host": {"gw.example"}, "Forwarded": {"for=203.0.113.9, for=10.0.0.2, " + ours},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Targets: []*url.URL{target}}
			if tc.trusted != nil {
				cfg.Resolver = mustResolver(t, tc.trusted...)
			}
			g := newGateway(t, cfg, 0)
			req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
			req.Host = "gw.example"
			for k, v := range tc.incoming {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-headers
			for k, want := range tc.want {
				if fmt.Sprint(got[k]) != fmt.Sprint(want) {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestForwardedElement(t *testing.T) {
	for _, tc := range []struct {
		name, peer, host, proto, want string
	}{
		{"ipv4", "192.0.2.1", "example.com", "http", `for=192.0.2.1;host="example.com";proto=http`},
		{"ipv6", "2001:db8::1", "example.com:8443", "https", `for="[2001:db8::1]";host="example.com:8443";proto=https`},
		{"ipv6 zone dropped", "fe80::1%eth0", "h", "http", `for="[fe80::1]";host="h";proto=http`},
		{"unknown peer", "", "h", "http", `for=unknown;host="h";proto=http`},
		{"no host", "192.0.2.1", "", "http", `for=192.0.2.1;proto=http`},
		{"hostile host", "192.0.2.1", `a";for=6.6.6.6,for="x\`, "http", `for=192.0.2.1;host="a\";for=6.6.6.6,for=\"x\\";proto=http`},
		{"control chars dropped", "192.0.2.1", "a\r\nb", "http", `for=192.0.2.1;host="ab";proto=http`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peer netip.Addr
			if tc.peer != "" {
				peer = netip.MustParseAddr(tc.peer)
			}
			if got := forwardedElement(peer, tc.host, tc.proto); got != tc.want {
				t.Fatalf("forwardedElement = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	headers := make(chan http.Header, 1)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "private")
		w.Header().Set("X-Resp-End", "kept")
	})
	g := newGateway(t, Config{Targets: []*url.URL{target}}, 0)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
	req.Header.Set("Connection", "X-Hop-Secret, keep-alive")
	req.Header.Set("X-Hop-Secret", "for the next hop only")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("X-End-To-End", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := <-headers
	for _, h := range []string{"Connection", "X-Hop-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization"} {
		if v, ok := got[h]; ok {
			t.Errorf("upstream received hop-by-hop %s: %q", h, v)
		}
	}
	if got.Get("X-End-To-End") != "kept" {
		t.Errorf("end-to-end header lost: %v", got)
	}
	if v := resp.Header.Get("X-Resp-Hop"); v != "" {
		t.Errorf("client received hop-by-hop X-Resp-Hop: %q", v)
	}
	if resp.Header.Get("X-Resp-End") != "kept" {
		t.Errorf("end-to-end response header lost: %v", resp.Header)
	}
}

func TestPreserveHost(t *testing.T) {
	hosts := make(chan string, 1)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host })
	for _, tc := range []struct {
		name     string
		preserve bool
		want     string
	}{
		{"target host", false, target.Host},
		{"client host", true, "client.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, Config{Targets: []*url.URL{target}, PreserveHost: tc.preserve}, 0)
			req, _ := http.NewRequest(http.MethodGet, g.URL+"/", nil)
			req.Host = "client.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := <-hosts; got != tc.want {
				t.Fatalf("upstream Host = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestServerSentEventsFlushed proves each event is flushed as it arrives:
// the upstream does not finish until the client has seen the first event.
func TestServerSentEventsFlushed(t *testing.T) {
	release := make(chan struct{})
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	g := newGateway(t, Config{Targets: []*url.URL{target}}, 0)
	type firstEvent struct {
		resp *http.Response
		br   *bufio.Reader
		line string
		err  error
	}
	first := make(chan firstEvent, 1)
	go func() {
		// Even the response headers only arrive if they are flushed, so
		// the whole request runs here, under the deadline below.
		resp, err := http.Get(g.URL + "/events")
		if err != nil {
			first <- firstEvent{err: err}
			return
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		first <- firstEvent{resp, br, line, err}
	}()
	var br *bufio.Reader
	select {
	case ev := <-first:
		if ev.resp != nil {
			defer ev.resp.Body.Close()
		}
		if ev.err != nil || ev.line != "data: one\n" {
			close(release)
			t.Fatalf("first line = %q, err %v", ev.line, ev.err)
		}
		br = ev.br
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("first event not delivered while the upstream was still streaming: not flushed")
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("rest of stream = %q", rest)
	}
	if o := g.next(t); o.err != nil || o.res.Status != http.StatusOK {
		t.Fatalf("outcome %+v", o)
	}
}

func TestWebSocketEcho(t *testing.T) {
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
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
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	g := newGateway(t, Config{Targets: []*url.URL{target}, WebSocket: true}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo = %q, want %q", got, msg)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	if o := g.next(t); o.err != nil || o.res.Status != http.StatusSwitchingProtocols {
		t.Fatalf("outcome %+v, want status 101 and no error", o)
	}
}

func TestUpstreamErrors(t *testing.T) {
	hijackThen := func(write string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			io.WriteString(conn, write)
			conn.Close()
		}
	}
	for _, tc := range []struct {
		name       string
		handler    func(done <-chan struct{}) http.HandlerFunc // nil: nothing listens
		cfg        Config
		maxBody    int64
		body       func(done <-chan struct{}) io.Reader
		wantIs     error // nil: want *http.MaxBytesError
		wantStatus int
	}{
		{name: "connection refused", wantIs: ErrUpstreamUnavailable, wantStatus: http.StatusBadGateway},
		{
			name:    "closed without response",
			handler: func(<-chan struct{}) http.HandlerFunc { return hijackThen("") },
			wantIs:  ErrUpstreamUnavailable, wantStatus: http.StatusBadGateway,
		},
		{
			name:    "malformed response",
			handler: func(<-chan struct{}) http.HandlerFunc { return hijackThen("SPDY/9 nonsense\r\n\r\n") },
			wantIs:  ErrUpstreamUnavailable, wantStatus: http.StatusBadGateway,
		},
		{
			name:    "response header timeout",
			handler: blockUntil,
			cfg:     Config{ResponseHeaderTimeout: 100 * time.Millisecond},
			wantIs:  ErrUpstreamTimeout, wantStatus: http.StatusGatewayTimeout,
		},
		{
			name:    "request timeout before headers",
			handler: blockUntil,
			cfg:     Config{RequestTimeout: 150 * time.Millisecond},
			wantIs:  ErrUpstreamTimeout, wantStatus: http.StatusGatewayTimeout,
		},
		{
			name:    "request timeout during a slow request body",
			handler: readAll,
			cfg:     Config{RequestTimeout: 150 * time.Millisecond},
			body: func(done <-chan struct{}) io.Reader {
				pr, pw := io.Pipe()
				go func() {
					pw.Write([]byte("first part of the body"))
					<-done
					pw.Close()
				}()
				return pr
			},
			wantIs: ErrUpstreamTimeout, wantStatus: http.StatusGatewayTimeout,
		},
		{
			name:    "body over the limit",
			handler: readAll,
			maxBody: 100,
			body:    func(<-chan struct{}) io.Reader { return strings.NewReader(strings.Repeat("x", 64<<10)) },
			wantIs:  nil, wantStatus: http.StatusRequestEntityTooLarge,
		},
		{
			name:    "chunked body over the limit",
			handler: readAll,
			maxBody: 100,
			body: func(<-chan struct{}) io.Reader {
				return io.MultiReader(strings.NewReader(strings.Repeat("x", 64<<10))) // unknown length
			},
			wantIs: nil, wantStatus: http.StatusRequestEntityTooLarge,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := released(t)
			target := refusedURL(t)
			if tc.handler != nil {
				target = upstream(t, tc.handler(done))
			}
			cfg := tc.cfg
			cfg.Targets = []*url.URL{target}
			g := newGateway(t, cfg, tc.maxBody)
			var body io.Reader
			method := http.MethodGet
			if tc.body != nil {
				body, method = tc.body(done), http.MethodPost
			}
			req, _ := http.NewRequest(method, g.URL+"/", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			o := g.next(t)
			checkErr(t, o.err, tc.wantIs)
			if o.res.Target != target.Host || o.res.Status != 0 || o.res.Latency <= 0 {
				t.Errorf("Result = %+v", o.res)
			}
		})
	}
}

// checkErr asserts err wraps want, or, with want nil, a *http.MaxBytesError
// and none of the sentinels (so that no mapping order can turn it into 5xx).
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatal("Forward returned no error")
	}
	if want != nil {
		if !errors.Is(err, want) {
			t.Fatalf("error %q does not wrap %q", err, want)
		}
		return
	}
	var tooLarge *http.MaxBytesError
	if !errors.As(err, &tooLarge) {
		t.Fatalf("error %q is not a *http.MaxBytesError", err)
	}
	for _, s := range []error{ErrUpstreamUnavailable, ErrUpstreamTimeout, ErrClientGone} {
		if errors.Is(err, s) {
			t.Fatalf("body-limit error %q also wraps %q", err, s)
		}
	}
}

func blockUntil(done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}
}

func readAll(<-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// TestRequestTimeoutDuringResponseBody: once the response has started the
// error cannot be reported, so the exchange is aborted, as ReverseProxy does.
func TestRequestTimeoutDuringResponseBody(t *testing.T) {
	done := released(t)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "partial")
		http.NewResponseController(w).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	g := newGateway(t, Config{Targets: []*url.URL{target}, RequestTimeout: 200 * time.Millisecond}, 0)
	resp, err := http.Get(g.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("body %q read to the end; want the connection aborted", body)
	}
	if string(body) != "partial" {
		t.Errorf("body before abort = %q", body)
	}
	if o := g.next(t); !o.aborted {
		t.Fatalf("outcome %+v, want Forward to abort", o)
	}
}

func TestClientCancel(t *testing.T) {
	arrived := make(chan struct{})
	upstreamCtxDone := make(chan struct{})
	done := released(t)
	target := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(upstreamCtxDone)
		case <-done:
		}
	})
	g := newGateway(t, Config{Targets: []*url.URL{target}, RequestTimeout: time.Minute}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error = %v", err)
	}
	o := g.next(t)
	checkErr(t, o.err, ErrClientGone)
	select {
	case <-upstreamCtxDone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request was not cancelled")
	}
}

// TestCloseReleasesIdleConnections: a replaced Proxy must not keep upstream
// connections (and their goroutines) alive.
func TestCloseReleasesIdleConnections(t *testing.T) {
	var mu sync.Mutex
	states := map[net.Conn]http.ConnState{}
	srv := newConnTrackingServer(t, func(c net.Conn, s http.ConnState) {
		mu.Lock()
		states[c] = s
		mu.Unlock()
	})
	g := newGateway(t, Config{Targets: []*url.URL{mustURL(t, srv.URL)}}, 0)
	resp, err := http.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g.next(t)
	g.proxy.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		open := 0
		for _, s := range states {
			if s != http.StateClosed {
				open++
			}
		}
		mu.Unlock()
		if open == 0 && len(states) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d upstream connections still open after Close", open)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
