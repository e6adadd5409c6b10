package gateway

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTLSCloseAfterUnobservableFraming: on a TLS listener the framing
// observer cannot run (net/http needs the *tls.Conn), so net/http's rule
// applies to Content-Length with Transfer-Encoding (chunked wins). RFC 9112
// §6.1 still requires the connection to be closed after such a request:
// Gatehouse closes it after every chunked or HTTP/1.0 request there, so
// bytes after the request are never read as another one.
func TestTLSCloseAfterUnobservableFraming(t *testing.T) {
	up := newBodyUpstream(t)
	certFile, keyFile, pool := selfSigned(t)
	tg := startGateway(t, `
listeners:
  - name: main
    address: "127.0.0.1:0"
    tls: {cert_file: "`+certFile+`", key_file: "`+keyFile+`"}
admin: {disabled: true}
routes:
`+routeYAML("all", "{path_prefix: /}", `{targets: ["`+up.url+`"]}`)).serve()
	addr := tg.Addr("main").String()

	for _, tc := range []struct {
		name      string
		raw       string
		wantClose bool
	}{
		{"content-length and chunked, smuggled request after", "POST /a HTTP/1.1\nHost: gw.test\nContent-Length: 40\nTransfer-Encoding: chunked\n\n0\n\nGET /smuggled HTTP/1.1\nHost: gw.test\n\n", true},
		{"chunked alone", "POST /a HTTP/1.1\nHost: gw.test\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", true},
		{"HTTP/1.0 keep-alive with transfer-encoding", "POST /a HTTP/1.0\nHost: gw.test\nConnection: keep-alive\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n\n", true},
		{"content-length alone stays open", "POST /a HTTP/1.1\nHost: gw.test\nContent-Length: 3\n\nabc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(conn)
			if _, err := conn.Write([]byte(crlf(tc.raw))); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.Close != tc.wantClose {
				t.Fatalf("Connection: close = %v, want %v (status %d)", res.Close, tc.wantClose, res.StatusCode)
			}
			// Whatever followed the request on the wire must never be
			// answered as a request of its own.
			_, _ = conn.Write([]byte("GET /after HTTP/1.1\r\nHost: gw.test\r\n\r\n"))
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			next, err := http.ReadResponse(br, nil)
			if tc.wantClose {
				if err == nil {
					t.Fatalf("connection stayed open: a further response %d", next.StatusCode)
				}
			} else if err != nil {
				t.Fatalf("keep-alive connection closed: %v", err)
			}
			for {
				select {
				case b := <-up.got:
					if strings.Contains(b.body, "smuggled") {
						t.Fatalf("upstream body %q", b.body)
					}
					continue
				default:
				}
				break
			}
		})
	}
}
