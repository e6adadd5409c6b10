// Package framing refuses HTTP/1.x requests whose message framing is
// ambiguous, which net/http cannot do itself.
//
// RFC 9112 §6.1: a request with both Content-Length and Transfer-Encoding
// "ought to be handled as an error", and the connection closed after it; a
// Transfer-Encoding in an HTTP/1.0 request must be treated as faulty
// framing. These are the classic request-smuggling shapes: a front proxy
// that frames by Content-Length and Gatehouse, which frames by
// Transfer-Encoding, disagree on where the next request starts, and the
// bytes one of them took for a body become a request the other never
// authenticated.
//
// net/http (Go 1.26, transfer.go) accepts such a request: for HTTP/1.1 it
// deletes both headers from Request.Header, frames by chunked, and keeps
// the connection open; for HTTP/1.0 it silently ignores Transfer-Encoding.
// By the time a handler runs, nothing in the Request says Content-Length
// was ever there. So the check happens where the bytes still are: a
// Listener whose connections follow the framing of every request head as
// net/http reads it (a push parser, no copies and no goroutine), and
// remember which heads were ambiguous. Check, called once at the start of
// every request, then tells the handler whether its own request was one.
//
// Why the connection and not the handler: the handler sees only what
// net/http kept. Why not a full parser in front of net/http: that would
// be a second HTTP implementation whose disagreements with net/http are
// themselves a smuggling risk. The observer reads the same bytes in the
// same order and only has to agree with net/http on where each head
// starts; whenever it cannot follow (a framing error net/http also
// rejects, a protocol switch), it stops, and every later request on that
// connection is refused rather than trusted (net/http has already closed
// the connection in the framing-error case).
//
// Only plain-TCP listeners can be observed: on a TLS listener net/http
// must see the *tls.Conn itself (for HTTP/2 and Request.TLS), so there the
// observer is not installed and Check always passes; HTTP/2 has no such
// ambiguity, and over TLS HTTP/1.x net/http's own rule (chunked wins,
// Content-Length removed before forwarding) applies, and CloseAfter has
// the connection closed after every request that could have been
// ambiguous, so no byte after it is read as a request.
package framing

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// ErrAmbiguous is returned by Check for a request whose framing must not
// be trusted: Content-Length together with Transfer-Encoding, or
// Transfer-Encoding in an HTTP/1.0 request, or a request the observer
// could not follow. The caller answers 400 and closes the connection.
var ErrAmbiguous = errors.New("framing: ambiguous request framing")

// Listener wraps a plain-TCP listener so that its connections can be
// checked with Check. Install ConnContext on the http.Server too.
type Listener struct{ net.Listener }

// Accept returns the next connection, observed.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Conn is an observed connection.
type Conn struct {
	net.Conn
	mu     sync.Mutex // net/http's background read runs while a handler calls Check
	obs    observer
	served int // requests checked so far
}

// Read reads from the connection and feeds what was read to the observer.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.obs.feed(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

type connKey struct{}

// ConnContext is an http.Server ConnContext hook that makes an observed
// connection findable from its requests' contexts.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if oc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connKey{}, oc)
	}
	return ctx
}

// ConnState is an http.Server ConnState hook: once a connection is
// hijacked (a WebSocket), what follows is no longer HTTP and observing it
// would only waste time.
func ConnState(c net.Conn, state http.ConnState) {
	if oc, ok := c.(*Conn); ok && state == http.StateHijacked {
		oc.mu.Lock()
		oc.obs.stop()
		oc.mu.Unlock()
	}
}

// Check reports whether the request r, the next one on its connection, had
// ambiguous framing. It must be called exactly once per request, before the
// body is read: net/http serves one request at a time per HTTP/1.x
// connection, so the n-th call belongs to the n-th request head. On a
// connection that is not observed (TLS, HTTP/2, tests without a listener)
// it returns nil.
func Check(r *http.Request) error {
	c, ok := r.Context().Value(connKey{}).(*Conn)
	if !ok || r.ProtoMajor != 1 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.served
	c.served++
	// net/http parsed this head from bytes that came through Read, so the
	// observer has seen all of it, unless it lost track of the framing.
	if i >= c.obs.heads || c.obs.isBad(i) {
		return ErrAmbiguous
	}
	return nil
}

// CloseAfter reports whether the connection of r, which Check could not
// observe (a TLS listener), must be closed after the response because r
// may have been one of the ambiguous shapes Check refuses elsewhere:
// net/http removes Content-Length from a chunked request and
// Transfer-Encoding from an HTTP/1.0 one before the handler runs, so the
// two cannot be told from honest requests. RFC 9112 §6.1 requires the
// connection to be closed after such a request in any case; closing after
// every chunked or HTTP/1.0 request on an unobserved connection meets
// that without knowing which ones were ambiguous, at the cost of a new
// connection for those (rare) requests.
func CloseAfter(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if _, observed := r.Context().Value(connKey{}).(*Conn); observed {
		return false
	}
	return r.ProtoMinor == 0 || len(r.TransferEncoding) > 0
}
