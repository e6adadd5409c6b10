// Package proxy forwards a matched request to its upstream.
//
// A Proxy is built once per route when the configuration is loaded: targets
// are parsed and validated, on an http.Transport of its own or on one
// shared with other proxies whose TransportSettings are equal
// (Config.Upstream), so that upstream connections outlive a configuration
// reload. Forward then proxies a request without parsing anything, and
// returns errors to its caller instead of writing them: the pipeline owns
// every error response.
//
// The forwarding core (forward.go) is Gatehouse's own loop over the
// transport. On the wire it behaves as httputil.ReverseProxy with a
// Rewrite hook does (conformance_test.go compares the two), at a lower cost
// per request.
package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/tlsclient"
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
	// ErrUpstreamTLS means the TLS handshake with the upstream failed:
	// its certificate is not trusted or does not carry the expected name,
	// it refused the gateway's client certificate (or its absence), or it
	// does not speak TLS. Errors wrapping it also wrap
	// ErrUpstreamUnavailable (the pipeline answers 502); it lets logs and
	// metrics tell a certificate problem from a dead upstream.
	ErrUpstreamTLS = errors.New("proxy: upstream TLS handshake failed")
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
	// Logger receives the forwarding core's own diagnostics (such as a
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
	// rt carries the exchanges: transport, or Config.Transport.
	rt       http.RoundTripper
	errorLog *log.Logger // nil: discard
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
		// Without TLS settings NewTransport cannot fail.
		p.transport, _ = NewTransport(TransportSettings{DialTimeout: cfg.DialTimeout, ResponseHeaderTimeout: cfg.ResponseHeaderTimeout})
	}

	if cfg.Logger != nil {
		p.errorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	}
	p.rt = p.transport
	if cfg.Transport != nil {
		p.rt = cfg.Transport
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
// carry the files' contents (TLS: tlsclient.Settings, which encode as
// digests), not their paths, so that a rotated file yields a new
// transport at the next reload.
type TransportSettings struct {
	// DialTimeout bounds the TCP connect and, separately, the TLS
	// handshake. 0: no limit beyond the operating system's.
	DialTimeout time.Duration `json:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request has been written. 0: no limit.
	ResponseHeaderTimeout time.Duration `json:"response_header_timeout"`
	// TLS is the client side of https targets: trusted CAs, a client
	// certificate (mutual TLS), the server name, the minimum version.
	// Zero: the system roots, no client certificate, the target's host,
	// TLS 1.2 or later. http targets ignore it.
	TLS tlsclient.Settings `json:"tls"`
}

// NewTransport builds the http.Transport proxies use: no HTTP_PROXY from
// the environment, a large idle pool per host, HTTP/2 by ALPN (also with
// custom TLS settings), no transparent compression, and the in-process
// builtin:echo backend. Close it with CloseIdleConnections once no proxy
// uses it. It fails only when s.TLS does not build (material not read by
// tlsclient.Load).
func NewTransport(s TransportSettings) (*http.Transport, error) {
	tlsConfig, err := s.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
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
		// nil: the standard library's defaults (system roots, the
		// target's host as server name).
		TLSClientConfig: tlsConfig,
		// HTTP/2 is negotiated by ALPN, so this only affects https
		// targets. It is also what keeps HTTP/2 on when TLSClientConfig
		// is set: without it, a custom TLS config turns HTTP/2 off.
		ForceAttemptHTTP2: true,
		// Pass the client's Accept-Encoding through untouched rather than
		// have the transport ask for gzip and decompress on our CPU.
		DisableCompression: true,
	}
	// The echo backend rides on the same transport and forwarding core, so
	// what it reports is exactly what a real upstream would receive.
	t.RegisterProtocol(builtinScheme, inProcessTransport{handler: EchoHandler()})
	return t, nil
}

// Forward proxies r to the next target and reports how it went. It is
// ForwardFrom with the client resolved from r alone (no trusted proxies
// beyond Config.Resolver); the pipeline, which resolved it already, calls
// ForwardFrom.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, vouched []Header) (Result, error) {
	peer := clientip.Peer(r.RemoteAddr)
	return p.ForwardFrom(w, r, clientip.Client{Peer: peer, PeerTrusted: p.resolver.Trusted(peer)}, vouched)
}

// ForwardFrom proxies r to the next target and reports how it went.
//
// client is r's client as the caller resolved it (clientip.Resolver.Resolve,
// with the Resolver given in Config): its Peer and PeerTrusted decide the
// forwarding headers (X-Forwarded-For, -Proto, -Host and Forwarded), so the
// peer is parsed once per request.
//
// vouched are the headers the gateway itself sets for the upstream. They
// are written on the outgoing request, never on r, while the hop-by-hop
// headers are left out, so a client's Connection header (which names
// headers to remove) cannot delete any of them; each replaces any
// client-sent header of the same name. ForwardFrom does not keep vouched
// after it returns.
//
// ForwardFrom never writes an error response: errors are returned, wrapping
// ErrUpstreamUnavailable, ErrUpstreamTimeout or ErrClientGone, and the
// caller writes the answer (the error text is for logs only). When reading
// the request body fails with *http.MaxBytesError, the returned error wraps
// that error and no sentinel, so errors.As finds it whatever order the
// caller checks in. A request body whose framing is broken (see
// ErrMalformedBody) is ErrMalformedBody; other request body read failures
// are ErrClientGone.
//
// Once the response has started, an error can no longer be reported to the
// client: like httputil.ReverseProxy, ForwardFrom then panics with
// http.ErrAbortHandler, which makes net/http abort the connection. A caller
// that logs every request must do so in a deferred function.
func (p *Proxy) ForwardFrom(w http.ResponseWriter, r *http.Request, client clientip.Client, vouched []Header) (Result, error) {
	t := &p.targets[(p.next.Add(1)-1)%uint64(len(p.targets))]
	ex := &exchange{Context: r.Context(), target: t, client: client, start: time.Now(), vouched: vouched}
	ex.trace.Got1xxResponse = ex.got1xx
	ex.parentTrace = httptrace.ContextClientTrace(ex.Context) != nil
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
	ex.w = w
	// No body is sent when ContentLength is 0 (an empty body, or none);
	// neither is one tracked then.
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		ex.body.rc = r.Body
	}
	if p.requestTimeout > 0 {
		// One cancelable context and one timer: the transport needs a
		// context to abandon an exchange (an HTTP/2 stream, a wait for
		// headers), and the timer also unblocks a trickling upload
		// (expire), which context.WithTimeout would need a second hook
		// for.
		ex.Context, ex.cancel = context.WithCancelCause(ex.Context)
		ex.deadline = ex.start.Add(p.requestTimeout)
		ex.timer = time.AfterFunc(p.requestTimeout, ex.expire)
		defer ex.cancel(nil)
		defer ex.timer.Stop()
	}

	p.serve(w, r, ex)

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
	if isTLSFailure(err) {
		return fmt.Errorf("%w: %w: %s: %w", ErrUpstreamUnavailable, ErrUpstreamTLS, name, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUpstreamUnavailable, name, err)
}

// isTLSFailure reports whether err comes from a failed TLS handshake: the
// upstream's certificate was refused (untrusted, wrong name, expired), the
// upstream sent an alert (it refused our certificate or its absence; in
// TLS 1.3 that alert arrives on the first read, after the handshake
// seemed done), or it answered TLS with something else.
func isTLSFailure(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		op       *net.OpError
	)
	if errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	// Over TCP, crypto/tls reports an alert from the peer as a
	// *net.OpError with Op "remote error" around a value of its own
	// unexported alert type (AlertError is only for QUIC).
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil &&
		reflect.TypeOf(op.Err).PkgPath() == "crypto/tls"
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
// when the forwarding core takes over the connection. Unwrap keeps every other
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
// the forwarding core or an upstream might act on: an Upgrade header (whatever
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
// tokens keep naming the headers the forwarding core must drop).
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
// It pools array pointers rather than slices, so that Put does not
// allocate a slice header to store in the pool each time.
var copyBuffers bufferPool

// copyBufferSize is the size of the buffers in copyBuffers.
const copyBufferSize = 32 << 10

type bufferPool struct{ pool sync.Pool }
