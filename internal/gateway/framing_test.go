package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bodyUpstream records, for each request it gets, whether it read a
// complete body and what that body was.
type bodyUpstream struct {
	url  string
	got  chan upstreamBody
	seen chan struct{}
}

type upstreamBody struct {
	complete bool
	body     string
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	t.Helper()
	u := &bodyUpstream{got: make(chan upstreamBody, 16), seen: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.seen <- struct{}{}
		b, err := io.ReadAll(r.Body)
		u.got <- upstreamBody{complete: err == nil, body: string(b)}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"body": string(b)})
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

// completeBodies drains what the upstream reported and returns the bodies
// it read completely.
func (u *bodyUpstream) completeBodies() []string {
	var out []string
	for {
		select {
		case b := <-u.got:
			if b.complete {
				out = append(out, b.body)
			}
		case <-time.After(200 * time.Millisecond):
			return out
		}
	}
}

// checkRefusedAndClosed asserts a 400 problem+json answer that announces
// and performs the closing of the connection.
func checkRefusedAndClosed(t *testing.T, c *rawConn, res *http.Response, body []byte) {
	t.Helper()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %s", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["type"] != "urn:gatehouse:problem:bad-request" || p["status"] != float64(400) {
		t.Fatalf("problem body %s", body)
	}
	if !res.Close {
		t.Fatalf("no Connection: close in %v", res.Header)
	}
	if !c.closedByServer() {
		t.Fatal("the connection stayed open after a framing error")
	}
}

// TestMalformedChunkedBody: a chunked request body whose framing is broken
// is answered 400 problem+json and the connection is closed; the upstream
// never receives a complete body (and so never a complete request).
func TestMalformedChunkedBody(t *testing.T) {
	up := newBodyUpstream(t)
	tg := startGateway(t, header+"routes:\n"+routeYAML("up", "{path_prefix: /}", `{targets: ["`+up.url+`"]}`)).serve()

	const head = "POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct{ name, body string }{
		{"size is not hex", "zz\r\nhello\r\n0\r\n\r\n"},
		{"size with 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"size with a trailing non-hex byte", "5g\r\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"empty size", "\r\nhello\r\n0\r\n\r\n"},
		{"size overflows 64 bits", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n"},
		{"data longer than the size", "3\r\nhello\r\n0\r\n\r\n"},
		{"overlong size line", "5" + strings.Repeat(" ", 5000) + "\r\nhello\r\n0\r\n\r\n"},
		{"overlong chunk extension", "5;ext=" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n"},
		{"extensions outweigh the data", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\na\r\n", 400) + "0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, tg.url)
			res, body := c.send(head + tc.body)
			checkRefusedAndClosed(t, c, res, body)
			if got := up.completeBodies(); len(got) != 0 {
				t.Fatalf("the upstream read complete bodies %q", got)
			}
		})
	}

	t.Run("a well-formed chunked body still passes", func(t *testing.T) {
		c := dialRaw(t, tg.url)
		res, body := c.send(head + "5;name=v\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		if res.StatusCode != 200 || !strings.Contains(string(body), `"hello world"`) {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		if res2, _ := c.send("GET /again HTTP/1.1\r\nHost: gw.test\r\n\r\n"); res2.StatusCode != 200 {
			t.Fatalf("keep-alive request: %d", res2.StatusCode)
		}
		up.completeBodies()
	})
}

// TestAmbiguousFramingRefused: a request with both Content-Length and
// Transfer-Encoding (RFC 9112 §6.1), or with Transfer-Encoding in HTTP/1.0,
// is refused with 400 problem+json before anything else happens, and the
// connection is closed, so the bytes after its head (here, a smuggled
// request) are never read as a request. The upstream receives nothing.
func TestAmbiguousFramingRefused(t *testing.T) {
	up := newBodyUpstream(t)
	tg := startGateway(t, header+"routes:\n"+routeYAML("up", "{path_prefix: /}", `{targets: ["`+up.url+`"]}`)).serve()
	const smuggled = "GET /admin HTTP/1.1\r\nHost: gw.test\r\n\r\n"
	for _, tc := range []struct{ name, request string }{
		{"Content-Length then Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"Transfer-Encoding then Content-Length", "POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"lower case names", "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"zero Content-Length", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"GET with both", "GET /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"HTTP/1.0 with both", "POST /x HTTP/1.0\r\nHost: gw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 with Transfer-Encoding", "POST /x HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, tg.url)
			res, body := c.send(tc.request)
			checkRefusedAndClosed(t, c, res, body)
			select {
			case <-up.seen:
				t.Fatal("the upstream received a request")
			case <-time.After(100 * time.Millisecond):
			}
		})
	}

	t.Run("after a good request on the same connection", func(t *testing.T) {
		c := dialRaw(t, tg.url)
		if res, body := c.send("GET /first HTTP/1.1\r\nHost: gw.test\r\n\r\n"); res.StatusCode != 200 {
			t.Fatalf("first request: %d %s", res.StatusCode, body)
		}
		<-up.seen
		res, body := c.send("POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
		checkRefusedAndClosed(t, c, res, body)
		select {
		case <-up.seen:
			t.Fatal("the upstream received a request")
		case <-time.After(100 * time.Millisecond):
		}
		up.completeBodies()
	})

	t.Run("pipelined requests with bodies stay in step", func(t *testing.T) {
		c := dialRaw(t, tg.url)
		body := "GET /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
		raw := "POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body +
			"POST /b HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n" +
			"GET /c HTTP/1.1\r\nHost: gw.test\r\n\r\n"
		if _, err := io.WriteString(c.conn, raw); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if res, b := c.read(); res.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i, res.StatusCode, b)
			}
		}
		if got := up.completeBodies(); len(got) != 3 || got[0] != body || got[1] != body {
			t.Fatalf("upstream bodies %q", got)
		}
		for range 3 {
			<-up.seen
		}
	})

	t.Run("OPTIONS * reaches the pipeline and the count stays in step", func(t *testing.T) {
		c := dialRaw(t, tg.url)
		if res, body := c.send("OPTIONS * HTTP/1.1\r\nHost: gw.test\r\n\r\n"); res.StatusCode != 400 {
			t.Fatalf("OPTIONS *: %d %s", res.StatusCode, body)
		}
		if res, body := c.send("GET /next HTTP/1.1\r\nHost: gw.test\r\n\r\n"); res.StatusCode != 200 {
			t.Fatalf("next request: %d %s", res.StatusCode, body)
		}
		<-up.seen
		up.completeBodies()
	})

	// net/http itself refuses these (501 Not Implemented) and closes the
	// connection before the pipeline runs.
	for _, tc := range []struct{ name, te string }{
		{"gzip", "Transfer-Encoding: gzip\r\n"},
		{"identity", "Transfer-Encoding: identity\r\n"},
		{"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n"},
		{"chunked twice in one header", "Transfer-Encoding: chunked, chunked\r\n"},
		{"two headers", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"},
		{"chunked with a parameter", "Transfer-Encoding: chunked;q=1\r\n"},
	} {
		t.Run("Transfer-Encoding "+tc.name, func(t *testing.T) {
			c := dialRaw(t, tg.url)
			res, body := c.send("POST /x HTTP/1.1\r\nHost: gw.test\r\n" + tc.te + "\r\n0\r\n\r\n")
			if res.StatusCode < 400 || res.StatusCode >= 600 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if !c.closedByServer() {
				t.Fatal("connection left open")
			}
			select {
			case <-up.seen:
				t.Fatal("the upstream received a request")
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}
