// Package proxy forwards a matched request to its upstream.
//
// A Proxy is built once per route when the configuration is loaded: targets
// are parsed and validated, and one httputil.ReverseProxy is set up, on an
// http.Transport of its own or on one shared with other proxies whose
// TransportSettings are equal (Config.Upstream), so that upstream
// connections outlive a configuration reload. Forward then proxies a request without parsing
// anything, and returns errors to its caller instead of writing them: the
// pipeline owns every error response.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// Errors returned by Forward wrap one of these sentinels, so the pipeline
// can map them with errors.Is. The one exception is a request body that
// exceeds its http.MaxBytesReader limit: that error wraps only the
// *http.MaxBytesError (see Forward).
var (
	// ErrUpstreamUnavailable means the upstream could not be reached or
	// answered badly (connection refused or reset, malformed response).
	// The pipeline answers 502.
	ErrUpstreamUnavailable = errors.New("proxy: upstream unavailable")
	// ErrUpstreamTimeout means a dial, response-header or request timeout
	// expired. The pipeline answers 504.
	ErrUpstreamTimeout = errors.New("proxy: upstream timeout")
	// ErrClientGone means the client cancelled the request or broke its
	// side of the exchange; nothing should be written to it.
	ErrClientGone = errors.New("proxy: client went away")
	// ErrInvalidConfig is wrapped by New when the Config cannot be used.
	ErrInvalidConfig = errors.New("proxy: invalid config")
	// ErrMalformedBody means the client's request body could not be read
	// because its framing is broken (a bad chunk size, a bare LF where CRLF
	// is required, an overlong chunk line or extension, a malformed
	// trailer). The pipeline answers 400 and closes the connection: after a
	// framing error, nothing later on the connection can be trusted to
	// start where the client meant it to.
	ErrMalformedBody = errors.New("proxy: malformed request body")
)

// errUnexpectedSwitch refuses a 101 Switching Protocols response that the
// gateway did not ask for: after a switch the gateway no longer sees
// requests, so only an upgrade it let through may become a tunnel.
var errUnexpectedSwitch = errors.New("proxy: upstream switched protocols without an allowed upgrade request")

// Header is one header the gateway vouches for on the upstream request
// (identity headers, the request id, later a signed identity assertion).
// Name must be in canonical form (http.CanonicalHeaderKey).
type Header struct{ Name, Value string }

// errRequestTimeout is the cause attached to the RequestTimeout context, so
// that its expiry can be told apart from any deadline the caller set.
var errRequestTimeout = errors.New("proxy: request timeout")

// Config describes one upstream. The zero value of every duration means
// "no limit"; the config package supplies the documented defaults.
type Config struct {
	// Targets are the upstream base URLs, used round-robin: http or https
	// with a host, optionally a base path (prepended to the request path)
	// and a query (prepended to the request query). "builtin:echo" is the
	// in-process demo backend (see EchoHandler). At least one is required.
	// Credentials in a target URL are refused: they would not be sent.
	Targets []*url.URL
	// StripPrefix is removed from the request path before forwarding, only
	// when the path has it on a segment boundary ("/api" strips "/api" and
	// "/api/x" but not "/apix"). A trailing slash is ignored. Default: none.
	StripPrefix string
	// AddPrefix is prepended to the path after StripPrefix. A trailing
	// slash is ignored. Default: none.
	AddPrefix string
	// PreserveHost sends the client's Host header upstream instead of the
	// target's host. Default false.
	PreserveHost bool
	// DialTimeout bounds the TCP connect and, separately, the TLS
	// handshake. Default 0: no limit beyond the operating system's.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request has been written. Default 0: no limit.
	ResponseHeaderTimeout time.Duration
	// RequestTimeout bounds the whole exchange, response body included.
	// Default 0: no limit, as SSE and WebSocket routes need (a WebSocket
	// connection is closed when it expires).
	RequestTimeout time.Duration
	// Resolver decides whose forwarding headers are believed. Default nil:
	// nobody's, so incoming X-Forwarded-* and Forwarded are replaced.
	Resolver *clientip.Resolver
	// Upstream, if set, is the transport (made by NewTransport) the Proxy
	// uses instead of building its own, so that proxies with equal
	// TransportSettings share one connection pool, across reloads too.
	// DialTimeout and ResponseHeaderTimeout are then the transport's and
	// are ignored here. The Proxy does not own it: Close leaves it open.
	// Default nil: the Proxy builds and owns its transport.
	Upstream *http.Transport
	// Transport, if set, carries every exchange instead of the Proxy's own
	// http.Transport (whose timeouts and pool settings above then do not
	// apply, and builtin:echo targets cannot be reached). It is for tests
	// and benchmarks that need an upstream without a network. Default nil:
	// the Proxy's own transport.
	Transport http.RoundTripper
	// WebSocket lets a client's WebSocket upgrade request (a GET with
	// "Connection: upgrade" and exactly one "Upgrade: websocket") through
	// to the upstream, which may then switch protocols. Every other
	// upgrade request, and every upgrade when WebSocket is false, is
	// forwarded as an ordinary request with its Upgrade header removed,
	// and a 101 answer to it is refused (ErrUpstreamUnavailable): after a
	// switch the gateway authenticates nothing, so a tunnel nobody allowed
	// would be a bypass. Default false.
	WebSocket bool
	// Logger receives httputil.ReverseProxy's own diagnostics (such as a
	// read error while copying a response body) at debug level. They
	// contain no request headers. Default nil: discarded.
	Logger *slog.Logger
}

// Result is what the access log needs to know about one exchange.
type Result struct {
	// Target is the upstream chosen: "host:port", or "builtin:echo".
	Target string
	// Latency runs from the call to Forward until the upstream's response
	// headers arrived, or until the exchange failed.
	Latency time.Duration
	// Status is the upstream's response status; 0 if none arrived.
	Status int
	// Switched reports that the client connection was handed over to the
	// upstream after a 101 (a WebSocket); nothing more can be written.
	Switched bool
}

// Proxy forwards requests to one upstream's targets. It is safe for
// concurrent use.
type Proxy struct {
	targets        []target
	next           atomic.Uint64
	strip          string // trailing slash trimmed; "" = none
	add            string // trailing slash trimmed; "" = none
	addEscaped     string // add as it is written in an escaped path
	preserveHost   bool
	websocket      bool
	requestTimeout time.Duration
	resolver       *clientip.Resolver
	transport      *http.Transport
	// sharedTransport: transport is Config.Upstream, owned by its
	// caller, so Close leaves its connections alone.
	sharedTransport bool
	rp              *httputil.ReverseProxy
}

type target struct {
	url  *url.URL
	name string
}

const builtinScheme = "builtin"

// New validates cfg and builds the Proxy.
func New(cfg Config) (*Proxy, error) {
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: no targets", ErrInvalidConfig)
	}
	if cfg.DialTimeout < 0 || cfg.ResponseHeaderTimeout < 0 || cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout", ErrInvalidConfig)
	}
	for _, prefix := range []string{cfg.StripPrefix, cfg.AddPrefix} {
		if prefix != "" && !strings.HasPrefix(prefix, "/") {
			return nil, fmt.Errorf("%w: path prefix %q must start with /", ErrInvalidConfig, prefix)
		}
	}
	p := &Proxy{
		strip:          strings.TrimRight(cfg.StripPrefix, "/"),
		add:            strings.TrimRight(cfg.AddPrefix, "/"),
		preserveHost:   cfg.PreserveHost,
		websocket:      cfg.WebSocket,
		requestTimeout: cfg.RequestTimeout,
		resolver:       cfg.Resolver,
	}
	p.addEscaped = (&url.URL{Path: p.add}).EscapedPath()
	for _, u := range cfg.Targets {
		t, err := newTarget(u)
		if err != nil {
			return nil, err
		}
		p.targets = append(p.targets, t)
	}

	if cfg.Upstream != nil {
		p.transport, p.sharedTransport = cfg.Upstream, true
	} else {
		p.transport = NewTransport(TransportSettings{DialTimeout: cfg.DialTimeout, ResponseHeaderTimeout: cfg.ResponseHeaderTimeout})
	}

	errorLog := log.New(io.Discard, "", 0)
	if cfg.Logger != nil {
		errorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	}
	var rt http.RoundTripper = p.transport
	if cfg.Transport != nil {
		rt = cfg.Transport
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      rt,
		ModifyResponse: recordResponse,
		ErrorHandler:   recordError,
		ErrorLog:       errorLog,
		BufferPool:     copyBuffers,
	}
	return p, nil
}

func newTarget(u *url.URL) (target, error) {
	switch {
	case u == nil:
		return target{}, fmt.Errorf("%w: nil target", ErrInvalidConfig)
	case u.Scheme == builtinScheme:
		if u.Opaque != "echo" {
			return target{}, fmt.Errorf("%w: unknown builtin backend %q (only builtin:echo exists)", ErrInvalidConfig, u.Redacted())
		}
		return target{url: &url.URL{Scheme: builtinScheme, Host: "echo"}, name: "builtin:echo"}, nil
	case u.Scheme != "http" && u.Scheme != "https":
		return target{}, fmt.Errorf("%w: target %q: scheme must be http or https", ErrInvalidConfig, u.Redacted())
	case u.Host == "" || u.Opaque != "":
		return target{}, fmt.Errorf("%w: target %q has no host", ErrInvalidConfig, u.Redacted())
	case u.User != nil:
		return target{}, fmt.Errorf("%w: target %q: credentials in the URL are not supported", ErrInvalidConfig, u.Redacted())
	}
	name := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		name = net.JoinHostPort(u.Hostname(), port)
	}
	// Copy so that a caller mutating its URL later cannot change routing.
	cp := *u
	return target{url: &cp, name: name}, nil
}

// Close releases idle upstream connections. Exchanges in flight finish
// normally; call it when a reloaded configuration replaces this Proxy. A
// transport given as Config.Upstream belongs to the caller and is left
// alone: other proxies (and the next plan) may be using its connections.
func (p *Proxy) Close() {
	if !p.sharedTransport {
		p.transport.CloseIdleConnections()
	}
}

// TransportSettings are what an upstream http.Transport is built from.
// Proxies with equal settings can share one transport, and so one pool of
// upstream connections: the pipeline keeps one per distinct settings in
// its resource registry, across reloads, so a reload does not redial
// unchanged upstreams. Every field must be comparable and encodable as
// JSON (the registry keys the transport by it). Settings that name files
// (an upstream CA or client certificate, to come) should carry the files'
// contents or their digest, not only their paths, so that a rotated file
// yields a new transport at the next reload.
type TransportSettings struct {
	// DialTimeout bounds the TCP connect and, separately, the TLS
	// handshake. 0: no limit beyond the operating system's.
	DialTimeout time.Duration `json:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request has been written. 0: no limit.
	ResponseHeaderTimeout time.Duration `json:"response_header_timeout"`
}

// NewTransport builds the http.Transport proxies use: no HTTP_PROXY from
// the environment, a large idle pool per host, HTTP/2 by ALPN, no
// transparent compression, and the in-process builtin:echo backend. Close
// it with CloseIdleConnections once no proxy uses it.
func NewTransport(s TransportSettings) *http.Transport {
	dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// Upstreams are reached directly; an HTTP_PROXY in the gateway's
		// environment must not silently reroute (and expose) traffic.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   s.DialTimeout,
		ResponseHeaderTimeout: s.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// A gateway talks to few hosts at high rates; the default of 2
		// idle connections per host would make most requests dial.
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// HTTP/2 is negotiated by ALPN, so this only affects https targets.
		ForceAttemptHTTP2: true,
		// Pass the client's Accept-Encoding through untouched rather than
		// have the transport ask for gzip and decompress on our CPU.
		DisableCompression: true,
	}
	// The echo backend rides on the same transport and ReverseProxy, so
	// what it reports is exactly what a real upstream would receive.
	t.RegisterProtocol(builtinScheme, inProcessTransport{handler: EchoHandler()})
	return t
}

// Forward proxies r to the next target and reports how it went.
//
// vouched are the headers the gateway itself sets for the upstream. They
// are written on the outgoing request in the Rewrite hook, after
// ReverseProxy removed the hop-by-hop headers, so a client's Connection
// header (which names headers to remove) cannot delete any of them; each
// replaces any client-sent header of the same name. Forward does not keep
// vouched after it returns.
//
// Forward never writes an error response: errors are returned, wrapping
// ErrUpstreamUnavailable, ErrUpstreamTimeout or ErrClientGone, and the
// caller writes the answer (the error text is for logs only). When reading
// the request body fails with *http.MaxBytesError, the returned error wraps
// that error and no sentinel, so errors.As finds it whatever order the
// caller checks in. A request body whose framing is broken (see
// ErrMalformedBody) is ErrMalformedBody; other request body read failures
// are ErrClientGone.
//
// Once the response has started, an error can no longer be reported to the
// client: like httputil.ReverseProxy, Forward then panics with
// http.ErrAbortHandler, which makes net/http abort the connection. A caller
// that logs every request must do so in a deferred function.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, vouched []Header) (Result, error) {
	t := &p.targets[(p.next.Add(1)-1)%uint64(len(p.targets))]
	ex := &exchange{Context: r.Context(), target: t, start: time.Now(), vouched: vouched}
	if hasUpgrade(r.Header) {
		if p.websocket && isWebSocketUpgrade(r) {
			ex.upgrade = true
		} else {
			// Not allowed here: forwarded as an ordinary request.
			stripUpgrade(r.Header)
		}
	}
	if ex.upgrade {
		// Only upgrades hijack the connection; tracking that lets a failure
		// after the switch be reported as "write nothing".
		ex.hijack.ResponseWriter = w
		w = &ex.hijack
	}
	out := r.WithContext(ex)
	// ReverseProxy sends no body when ContentLength is 0; neither do we
	// track one then.
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		ex.body.rc = r.Body
		out.Body = &ex.body
	}
	if p.requestTimeout > 0 {
		var cancel context.CancelFunc
		ex.Context, cancel = context.WithTimeoutCause(r.Context(), p.requestTimeout, errRequestTimeout)
		defer cancel()
		if ex.body.rc != nil {
			// The transport cannot return while it is blocked reading the
			// request body, so a client trickling its upload would hold
			// the exchange past its timeout. Expiring the client
			// connection's read deadline unblocks that read; the client
			// is answered and the connection closed.
			stop := context.AfterFunc(ex.Context, func() {
				if context.Cause(ex.Context) == errRequestTimeout && !ex.body.finished() {
					_ = http.NewResponseController(w).SetReadDeadline(time.Now())
				}
			})
			defer stop()
		}
	}

	p.rp.ServeHTTP(w, out)

	res := Result{Target: t.name, Latency: ex.latency, Status: ex.status, Switched: ex.hijack.hijacked}
	if ex.err == nil {
		return res, nil
	}
	if ex.status == 0 {
		res.Latency = time.Since(ex.start)
	}
	return res, classify(r.Context(), ex)
}

// classify maps what went wrong to the error the pipeline acts on. The
// order matters: a failing client also makes the upstream exchange fail,
// so the client's side is examined before the upstream error itself.
func classify(clientCtx context.Context, ex *exchange) error {
	err, name := ex.err, ex.target.name
	bodyErr := ex.body.failure()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(bodyErr, &tooLarge):
		return fmt.Errorf("proxy: reading request body: %w", bodyErr)
	case ex.hijack.hijacked:
		return fmt.Errorf("%w: after switching protocols: %w", ErrClientGone, err)
	case context.Cause(ex.Context) == errRequestTimeout:
		// Checked before the client's context: expiring the read
		// deadline (see Forward) can make the server cancel that too.
		return fmt.Errorf("%w: %s: %w", ErrUpstreamTimeout, name, errRequestTimeout)
	case errors.Is(clientCtx.Err(), context.DeadlineExceeded):
		// A deadline set by the caller, not a departed client.
		return fmt.Errorf("%w: %s: %w", ErrUpstreamTimeout, name, err)
	case clientCtx.Err() != nil:
		// Also an HTTP/2 client that reset its stream mid-body.
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	case !clientBroke(bodyErr):
		// The client is still there (an HTTP/1.x framing error does not
		// end the request's context) and must hear why.
		return fmt.Errorf("%w: %w", ErrMalformedBody, bodyErr)
	case bodyErr != nil:
		return fmt.Errorf("%w: reading request body: %w", ErrClientGone, bodyErr)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("%w: %s: %w", ErrUpstreamTimeout, name, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUpstreamUnavailable, name, err)
}

// clientBroke reports whether a request body read error (nil: none) means the client
// stopped sending (closed, reset or timed out its connection, or ended it
// mid-body) rather than sent a body whose framing is malformed. net/http
// does not export its framing errors, so they are recognised as everything
// that is not a transport failure: an unknown error is answered 400 and the
// connection closed, which is also the safe answer to a vanished client.
func clientBroke(err error) bool {
	if err == nil {
		return true
	}
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrBodyReadAfterClose) ||
		errors.As(err, &netErr)
}

// exchange is the per-request state shared between Forward and the
// ReverseProxy hooks. It is the request's context itself (embedding the
// real one), which carries it to the hooks without a separate WithValue
// allocation. Its fields are only touched on the ServeHTTP goroutine,
// except body, which the transport may read from another.
type exchange struct {
	context.Context
	target  *target
	vouched []Header
	// vals backs the vouched headers' values on the outgoing request, so
	// that setting them costs no allocation for the usual few.
	vals [8]string
	// upgrade is set when the request is an upgrade this route allows;
	// only then may the upstream switch protocols.
	upgrade bool
	start   time.Time
	latency time.Duration
	status  int
	err     error
	body    trackedBody
	hijack  hijackRecorder
}

type exchangeKey struct{}

// Value makes the exchange findable from any context derived from it.
func (ex *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return ex
	}
	return ex.Context.Value(key)
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// recordResponse is the ReverseProxy ModifyResponse hook: it runs once the
// response headers have arrived (including a 101 for upgrades).
func recordResponse(res *http.Response) error {
	// The pipeline already set the request id on the response; an
	// upstream's own copy would be added as a second value.
	delete(res.Header, "X-Request-Id") // canonical, as Header.Del would make it
	ex := exchangeFrom(res.Request.Context())
	if ex != nil {
		ex.status = res.StatusCode
		ex.latency = time.Since(ex.start)
	}
	// ReverseProxy itself tunnels a 101 only when its Upgrade matches the
	// request's, but two empty values match too. Refusing here, before
	// ReverseProxy looks at it, also closes the upstream connection.
	if res.StatusCode == http.StatusSwitchingProtocols &&
		(ex == nil || !ex.upgrade || !isWebSocketProtocol(res.Header)) {
		return errUnexpectedSwitch
	}
	return nil
}

// recordError is the ReverseProxy ErrorHandler: it hands the error to
// Forward instead of answering, because the pipeline writes all errors.
func recordError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	if ex == nil {
		// Unreachable through Forward. Answer without detail rather
		// than leak err to the client.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if ex.err == nil {
		ex.err = err
	}
}

// trackedBody remembers the first error, other than EOF, from reading a
// request body. Forward uses it to blame a body failure on the client (or
// on the body limit) rather than on the upstream the transport was writing
// the body to; the in-process transport uses it to fail like a network one.
type trackedBody struct {
	rc   io.ReadCloser
	mu   sync.Mutex // the transport reads on its own goroutine
	err  error
	done bool // EOF or an error was returned
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.mu.Lock()
		b.done = true
		if b.err == nil && err != io.EOF {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *trackedBody) Close() error { return b.rc.Close() }

// failure returns the first read error other than EOF, if any.
func (b *trackedBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// finished reports whether the body has been read to its end or failed.
func (b *trackedBody) finished() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// hijackRecorder wraps the ResponseWriter of an upgrade request to notice
// when ReverseProxy takes over the connection. Unwrap keeps every other
// http.ResponseController feature of the real writer reachable.
type hijackRecorder struct {
	http.ResponseWriter
	hijacked bool
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.hijacked = true
	}
	return conn, brw, err
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// hasUpgrade reports whether h asks for a protocol upgrade in any form
// ReverseProxy or an upstream might act on: an Upgrade header (whatever
// its value) or an "upgrade" token in Connection.
func hasUpgrade(h http.Header) bool {
	_, up := h["Upgrade"]
	return up || connectionHasToken(h, "upgrade")
}

// isWebSocketUpgrade reports whether r is a WebSocket opening handshake as
// RFC 6455 §4.1 frames it: an HTTP/1.1 GET with "Connection: upgrade" and
// exactly one Upgrade header whose value is exactly "websocket" (any case).
// A list such as "websocket, h2c" is not one: the upstream could pick the
// other protocol.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoMajor == 1 && r.ProtoMinor >= 1 &&
		connectionHasToken(r.Header, "upgrade") && isWebSocketProtocol(r.Header)
}

// isWebSocketProtocol reports whether h has exactly one Upgrade header,
// "websocket" in any case.
func isWebSocketProtocol(h http.Header) bool {
	v := h["Upgrade"]
	return len(v) == 1 && strings.EqualFold(strings.TrimSpace(v[0]), "websocket")
}

func connectionHasToken(h http.Header, token string) bool {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// stripUpgrade turns an upgrade request into an ordinary one: the Upgrade
// header goes and so does the "upgrade" token of Connection (the other
// tokens keep naming the headers ReverseProxy must drop).
func stripUpgrade(h http.Header) {
	delete(h, "Upgrade")
	conn := h["Connection"]
	if len(conn) == 0 {
		return
	}
	kept := make([]string, 0, len(conn))
	for _, v := range conn {
		var b strings.Builder
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || strings.EqualFold(tok, "upgrade") {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tok)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// copyBuffers spares each response body copy a fresh 32 KiB allocation.
var copyBuffers httputil.BufferPool = &bufferPool{}

// copyBufferSize is the size of the buffers in copyBuffers.
const copyBufferSize = 32 << 10

// bufferPool pools array pointers rather than slices, so that Put does
// not allocate a slice header to store in the pool each time.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[copyBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return // not one of ours
	}
	b.pool.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}
