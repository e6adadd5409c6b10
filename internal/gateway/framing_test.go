package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
