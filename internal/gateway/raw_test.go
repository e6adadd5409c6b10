package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawConn is a client connection to a gateway listener that writes bytes
// exactly as given, so that tests can send what net/http's client never
// would (several Connection headers, broken chunked bodies, both
// Content-Length and Transfer-Encoding).
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to a gateway URL ("http://127.0.0.1:port").
func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// send writes raw (with "\n" turned into "\r\n" when crlf is set) and
// reads one response, body included.
func (c *rawConn) send(raw string) (*http.Response, []byte) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.read()
}

func (c *rawConn) read() (*http.Response, []byte) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return res, body
}

// closedByServer reports whether the gateway closed the connection: a
// further request gets no response, only EOF (or a reset).
func (c *rawConn) closedByServer() bool {
	c.t.Helper()
	_, _ = io.WriteString(c.conn, "GET /after HTTP/1.1\r\nHost: gw.test\r\n\r\n")
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.br.ReadByte()
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection neither answered nor closed within 3s")
	}
	return true // io.EOF or connection reset
}

// crlf turns a request written with "\n" line ends into the wire form.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
