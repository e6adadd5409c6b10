package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// The conformance table: the same raw requests go through the forwarding
// core (Forward) and through a plain httputil.ReverseProxy configured as
// this package configured it before it had its own core (referenceProxy),
// to the same raw TCP upstream, which records the bytes it receives and
// answers with canned bytes. The upstream must receive the same bytes from
// both, and the client must receive the same response from both.
//
// Normalised, because they differ between two runs of the same proxy:
//   - the Date header of the responses the client receives;
//   - the order of the names in a response's Trailer announcement (both
//     build it from a map);
//   - the chunk boundaries of streamed (chunked) bodies: only the decoded
//     body and its trailers are compared;
//   - 1xx responses are compared in order, headers included.
//
// Intended differences, not exercised here:
//   - for a response of unknown length (flushed as it streams),
//     ReverseProxy flushes the headers from a timer goroutine that races
//     the body copy; the core flushes them synchronously first, as
//     ReverseProxy does when its timer wins. When the upstream sent no
//     Content-Type, that race decides whether ReverseProxy's answer has one
//     sniffed by net/http from the first bytes (timer lost) or none (timer
//     won); the core's never has one. The streamed cases below therefore
//     carry a Content-Type.
//   - after a 1xx, ReverseProxy clears the response headers set before it
//     ran (the pipeline's X-Request-Id), so the final response lost them;
//     the core keeps them (TestInformationalResponseKeepsGatewayHeaders).
//     The front servers here set none, so both answer the same.
//   - ReverseProxy relays the upstream's 100 Continue, racing the one
//     net/http sends the client when the body is first read: the client
//     sometimes gets two. The core relays none, so the client gets
//     net/http's one. Interim 100s are left out of the comparison.
//   - ReverseProxy watches http.CloseNotifier when the request's context
//     cannot be cancelled; the server's contexts always can.
//   - the GODEBUG urlmaxqueryparams setting (which makes ReverseProxy
//     re-encode every query) is not consulted.

// conformanceCase is one exchange: what the client sends (raw, after the
// request line's target), what the upstream answers (raw).
type conformanceCase struct {
	name string
	// request is the raw request the client sends; "{host}" is replaced
	// by the gateway's address.
	request string
	// response is the raw response the upstream sends once it has read
	// the request (after a "100 Continue" when the request expects one).
	response string
	// vouched are the headers the gateway vouches for.
	vouched []Header
	// websocket: the route allows WebSocket upgrades; after the switch the
	// client sends tunnel and expects it echoed.
	websocket bool
	tunnel    string
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

func conformanceCases() []conformanceCase {
	long := strings.Repeat("v", 16<<10)
	chunked := "POST /up HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
	return []conformanceCase{
		{name: "get", request: "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n", response: okResponse},
		{name: "head", request: "HEAD /a HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\n"},
		{name: "delete", request: "DELETE /items/1 HTTP/1.1\r\nHost: {host}\r\n\r\n", response: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "absolute_form", request: "GET http://{host}/abs?q=1 HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "http10", request: "GET /old HTTP/1.0\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "query_semicolon", request: "GET /q?a=1;b=2&c=3 HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "query_bad_escape", request: "GET /q?a=%zz&b=%41 HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "query_odd_but_valid", request: "GET /q?a=%2F%20+x&&b=&=c&d HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "path_escapes", request: "GET /p/a%2Fb/%7Euser/sp%20ace HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "post_content_length", request: "POST /up HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":\"hello\"}", response: okResponse},
		{name: "post_empty", request: "POST /up HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n", response: okResponse},
		{name: "post_no_length", request: "POST /up HTTP/1.1\r\nHost: {host}\r\n\r\n", response: okResponse},
		{name: "post_chunked", request: chunked, response: okResponse},
		{name: "post_chunked_trailers", request: "POST /up HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Extra\r\n\r\n" +
			"5\r\nhello\r\n0\r\nX-Sum: 5\r\nX-Extra: e\r\n\r\n", response: okResponse},
		{name: "post_chunked_empty", request: "POST /up HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", response: okResponse},
		{name: "expect_100_continue", request: "PUT /up HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", response: okResponse},
		{name: "hop_by_hop", request: "GET /h HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive, X-Drop-Me,  x-also-drop \r\n" +
			"X-Drop-Me: 1\r\nX-Also-Drop: 2\r\nX-Keep: 3\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
			"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTe: gzip\r\nTrailer: X-T\r\n\r\n", response: okResponse},
		{name: "te_trailers", request: "GET /t HTTP/1.1\r\nHost: {host}\r\nTe: trailers, deflate\r\n\r\n", response: okResponse},
		{name: "upgrade_not_allowed", request: "GET /u HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", response: okResponse},
		{name: "websocket_not_allowed", request: "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", response: okResponse},
		{name: "multiple_values", request: "GET /m HTTP/1.1\r\nHost: {host}\r\nX-Multi: a\r\nX-Multi: b, c\r\nAccept: text/html, application/json;q=0.9\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", response: okResponse},
		{name: "long_header", request: "GET /l HTTP/1.1\r\nHost: {host}\r\nX-Long: " + long + "\r\n\r\n", response: okResponse},
		{name: "user_agent", request: "GET /ua HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.0\r\n\r\n", response: okResponse},
		{name: "client_forwarding_headers", request: "GET /f HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: evil.example\r\n" +
			"X-Forwarded-Proto: https\r\nForwarded: for=203.0.113.7\r\n\r\n", response: okResponse},
		{name: "vouched", request: "GET /v HTTP/1.1\r\nHost: {host}\r\nX-Auth-Subject: mallory\r\nConnection: X-Auth-Subject, X-Request-Id\r\n\r\n",
			vouched: []Header{{"X-Auth-Subject", "alice"}, {"X-Request-Id", "rid-1"}}, response: okResponse},
		{name: "vouched_as_trailer", request: "POST /v HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Auth-Subject\r\n\r\n" +
			"0\r\nX-Auth-Subject: mallory\r\n\r\n", vouched: []Header{{"X-Auth-Subject", "alice"}}, response: okResponse},

		// What the upstream answers.
		{name: "response_hop_by_hop", request: "GET /r HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nConnection: X-Internal, keep-alive\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n" +
				"Proxy-Authenticate: Basic\r\nX-Request-Id: upstream-rid\r\nX-Multi: a\r\nX-Multi: b\r\nContent-Length: 2\r\n\r\nok"},
		{name: "response_chunked_trailers", request: "GET /r HTTP/1.1\r\nHost: {host}\r\nTe: trailers\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Count\r\n\r\n" +
				"3\r\nabc\r\n3\r\ndef\r\n0\r\nX-Checksum: 123\r\nX-Count: 6\r\n\r\n"},
		{name: "response_unannounced_trailer", request: "GET /r HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n" +
				"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Surprise: 2\r\n\r\n"},
		{name: "response_until_close", request: "GET /r HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\nstreamed until close"},
		{name: "response_sse", request: "GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nContent-Length: 22\r\n\r\ndata: one\n\ndata: two\n\n"},
		{name: "response_103_early_hints", request: "GET /r HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n" +
				"HTTP/1.1 200 OK\r\nLink: </style.css>; rel=preload; as=style\r\nContent-Length: 2\r\n\r\nok"},
		{name: "response_102_then_500", request: "POST /slow HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\n\r\nx",
			response: "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"},
		{name: "response_304", request: "GET /c HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: \"x\"\r\n\r\n",
			response: "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n"},
		{name: "response_big", request: "GET /big HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("0123456789", 10000)},
		{name: "response_malformed", request: "GET /bad HTTP/1.1\r\nHost: {host}\r\n\r\n", response: "NOT HTTP\r\n\r\n"},
		{name: "response_unasked_switch", request: "GET /u HTTP/1.1\r\nHost: {host}\r\n\r\n",
			response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"},

		// A WebSocket tunnel on a route that allows it.
		{name: "websocket", websocket: true, tunnel: "hello through the tunnel",
			request:  "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"},
	}
}

func TestConformanceWithReverseProxy(t *testing.T) {
	up := newRawUpstream(t)
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			up.respond(tc.response)
			target := mustURL(t, "http://"+up.addr()+"/base")
			cfg := Config{Targets: []*url.URL{target}, WebSocket: tc.websocket, StripPrefix: "/strip"}
			// One transport each, each used once: the upstream closes every
			// connection after its answer, which a second request on a
			// pooled connection could race.
			transport, err := NewTransport(TransportSettings{ResponseHeaderTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer transport.CloseIdleConnections()
			refTransport, err := NewTransport(TransportSettings{ResponseHeaderTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer refTransport.CloseIdleConnections()
			cfg.Upstream = transport
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}

			core := frontServer(t, func(w http.ResponseWriter, r *http.Request) {
				if _, err := p.Forward(w, r, tc.vouched); err != nil {
					if code := statusFor(err); code != 0 {
						w.WriteHeader(code)
					}
				}
			})
			ref := frontServer(t, referenceProxy(p, tc.vouched, refTransport))

			gotCore, upCore := exchangeRaw(t, core, up, tc)
			gotRef, upRef := exchangeRaw(t, ref, up, tc)
			if upCore != upRef {
				t.Errorf("upstream received from the core:\n%s\nfrom ReverseProxy:\n%s", upCore, upRef)
			}
			if gotCore != gotRef {
				t.Errorf("client received from the core:\n%s\nfrom ReverseProxy:\n%s", gotCore, gotRef)
			}
			if testing.Verbose() {
				t.Logf("upstream received:\n%s\nclient received:\n%s", upCore, gotCore)
			}
		})
	}
}

// referenceProxy is the forwarding this package did with
// httputil.ReverseProxy before it had its own core: Forward's upgrade
// check, then ReverseProxy with the Rewrite, ModifyResponse and
// ErrorHandler hooks it used.
func referenceProxy(p *Proxy, vouched []Header, transport http.RoundTripper) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		upgrade := false
		if hasUpgrade(r.Header) {
			if p.websocket && isWebSocketUpgrade(r) {
				upgrade = true
			} else {
				stripUpgrade(r.Header)
			}
		}
		peer := mustPeer(r.RemoteAddr)
		failed := false
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				p.rewritePath(pr.Out.URL)
				pr.SetURL(p.targets[0].url)
				if p.preserveHost {
					pr.Out.Host = pr.In.Host
				}
				p.setForwarding(pr.Out.Header, pr.In, peer, new([4]string))
				if !upgrade {
					delete(pr.Out.Header, "Upgrade")
					delete(pr.Out.Header, "Connection")
				}
				for _, v := range vouched {
					delete(pr.Out.Trailer, v.Name)
					pr.Out.Header[v.Name] = []string{v.Value}
				}
			},
			ModifyResponse: func(res *http.Response) error {
				delete(res.Header, "X-Request-Id")
				if res.StatusCode == http.StatusSwitchingProtocols && (!upgrade || !isWebSocketProtocol(res.Header)) {
					return errUnexpectedSwitch
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { failed = true },
			Transport:    transport,
			BufferPool:   refBuffers{},
			ErrorLog:     discardLog,
		}
		rp.ServeHTTP(w, r)
		if failed {
			w.WriteHeader(http.StatusBadGateway)
		}
	}
}

type refBuffers struct{}

func (refBuffers) Get() []byte  { return make([]byte, 32<<10) }
func (refBuffers) Put(b []byte) {}

// frontServer is a gateway listener running h.
func frontServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = discardLog
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// exchangeRaw sends tc's request to front over a fresh connection and
// returns what the client received and what the upstream received, both
// normalised (see the comment at the top of this file).
func exchangeRaw(t *testing.T, front *httptest.Server, up *rawUpstream, tc conformanceCase) (client, upstream string) {
	t.Helper()
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	raw := strings.ReplaceAll(tc.request, "{host}", front.Listener.Addr().String())
	expect := strings.Contains(raw, "Expect: 100-continue")
	if expect {
		// Send the head, wait for the 100 Continue, then the body.
		head, body, _ := strings.Cut(raw, "\r\n\r\n")
		if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("expected 100 Continue, got %q (%v)", line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, body); err != nil {
			t.Fatal(err)
		}
		client = "[100 Continue]\n" + readClientResponse(t, br, conn, raw, tc)
	} else {
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		client = readClientResponse(t, bufio.NewReader(conn), conn, raw, tc)
	}
	select {
	case upstream = <-up.got:
	case <-time.After(5 * time.Second):
		t.Fatalf("the upstream received nothing; the client received:\n%s", client)
	}
	return client, strings.ReplaceAll(upstream, front.Listener.Addr().String(), "{host}")
}

// readClientResponse reads the responses to raw (1xx ones, then the
// final one) and writes them in a normalised form.
func readClientResponse(t *testing.T, br *bufio.Reader, conn net.Conn, raw string, tc conformanceCase) string {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("the test's request does not parse: %v", err)
	}
	var out strings.Builder
	for {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
			return out.String()
		}
		if res.StatusCode == http.StatusContinue {
			continue // see the list of differences above
		}
		fmt.Fprintf(&out, "%s %s\n", res.Proto, res.Status)
		writeHeader(&out, res.Header, "Date")
		fmt.Fprintf(&out, "transfer-encoding: %v content-length: %d\n", res.TransferEncoding, res.ContentLength)
		if res.StatusCode == http.StatusSwitchingProtocols && tc.tunnel != "" {
			if _, err := io.WriteString(conn, tc.tunnel); err != nil {
				t.Fatal(err)
			}
			echo := make([]byte, len(tc.tunnel))
			if _, err := io.ReadFull(br, echo); err != nil {
				fmt.Fprintf(&out, "tunnel error: %v\n", err)
			}
			fmt.Fprintf(&out, "tunnel echoed: %q\n", echo)
			return out.String()
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 {
			continue
		}
		body, err := io.ReadAll(res.Body)
		fmt.Fprintf(&out, "body: %q (err %v)\n", body, err)
		out.WriteString("trailer:\n")
		writeHeader(&out, res.Trailer)
		return out.String()
	}
}

// writeHeader writes h sorted by name, one value per line, without the
// names in skip; a Trailer announcement's names are sorted.
func writeHeader(out *strings.Builder, h http.Header, skip ...string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if k == "Trailer" {
				names := strings.Split(v, ",")
				for i := range names {
					names[i] = strings.TrimSpace(names[i])
				}
				slices.Sort(names)
				v = strings.Join(names, ", ")
			}
			fmt.Fprintf(out, "  %s: %q\n", k, v)
		}
	}
}

// rawUpstream is a TCP server that records each request's head byte for
// byte, and its body decoded (chunk sizes depend on read timing), then
// answers with the bytes set by respond, and closes the connection.
type rawUpstream struct {
	ln       net.Listener
	got      chan string
	mu       sync.Mutex
	response string
}

func newRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, got: make(chan string, 16)}
	go u.serve()
	t.Cleanup(func() { ln.Close() })
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) respond(raw string) {
	u.mu.Lock()
	u.response = raw
	u.mu.Unlock()
}

func (u *rawUpstream) serve() {
	for {
		conn, err := u.ln.Accept()
		if err != nil {
			return
		}
		go u.handle(conn)
	}
}

func (u *rawUpstream) handle(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			u.got <- fmt.Sprintf("%s\n[read error: %v]", head.String(), err)
			return
		}
		if line == "\r\n" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head.Bytes())))
	if err != nil {
		u.got <- fmt.Sprintf("%s\n[parse error: %v]", head.String(), err)
		return
	}
	u.mu.Lock()
	response := u.response
	u.mu.Unlock()
	if req.Header.Get("Expect") == "100-continue" {
		_, _ = io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	// Re-read the body with its framing from the connection.
	req.Body.Close()
	full, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head.Bytes()), br)))
	var body []byte
	if err == nil {
		body, err = io.ReadAll(full.Body)
	}
	var rec strings.Builder
	rec.WriteString(head.String())
	fmt.Fprintf(&rec, "[body %q, read error %v]\n", body, err)
	if full != nil && len(full.Trailer) > 0 {
		rec.WriteString("[trailer]\n")
		writeHeader(&rec, full.Trailer)
	}
	u.got <- rec.String()
	_, _ = io.WriteString(conn, response)
	if strings.HasPrefix(response, "HTTP/1.1 101") {
		// The tunnel: echo what comes until the client closes.
		_, _ = io.Copy(conn, br)
	}
}

// mustPeer is an untrusted peer, as Forward resolves it without a
// Resolver.
func mustPeer(remoteAddr string) clientip.Client {
	return clientip.Client{Peer: clientip.Peer(remoteAddr)}
}

var discardLog = log.New(io.Discard, "", 0)

// TestExpectContinueAnsweredOnce: a client that sent Expect: 100-continue
// gets exactly one 100 Continue, however the upstream's own 100 and the
// gateway's reading of the body interleave (see the list of differences).
func TestExpectContinueAnsweredOnce(t *testing.T) {
	up := newRawUpstream(t)
	// The raw upstream closes every connection after its answer; saying
	// so keeps the transport from reusing one.
	up.respond("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
	p, err := New(Config{Targets: []*url.URL{mustURL(t, "http://"+up.addr())}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := frontServer(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := p.Forward(w, r, nil); err != nil {
			w.WriteHeader(statusFor(err))
		}
	})
	for i := range 20 {
		conn, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "PUT /up HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		br := bufio.NewReader(conn)
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("round %d: first line %q (%v), want a 100 Continue", i, line, err)
		}
		_, _ = br.ReadString('\n')
		_, _ = io.WriteString(conn, "hello")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("round %d: after the 100 came %d, want the final 200 only", i, res.StatusCode)
		}
		res.Body.Close()
		conn.Close()
		select {
		case <-up.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the upstream received nothing", i)
		}
	}
}
