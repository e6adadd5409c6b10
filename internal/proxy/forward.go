package proxy

// The forwarding core: Gatehouse's own loop over http.Transport.
//
// It does what httputil.ReverseProxy (configured with Rewrite, as this
// package used it before it had its own core) does to a request and its
// response, byte for byte on the wire except for the differences listed
// in conformance_test.go, but builds the outbound request once: a
// pre-sized header map filled in one pass that skips hop-by-hop headers
// (also those the client's Connection header names), the incoming
// forwarding headers and every header the gateway vouches for, and then
// adds the gateway's own headers, each written once. ReverseProxy instead
// clones the whole request and header map, deletes from the clone, and
// sets again; it also allocates a trace, a context and a second request
// copy per exchange, parses the response's media type with a map, and
// clones every response header value. The logic kept from ReverseProxy
// (1xx forwarding, trailers, protocol switches, flushing, query cleaning,
// the URL join) follows Go's net/http/httputil/reverseproxy.go:
//
//	Copyright 2011 The Go Authors. All rights reserved.
//	Use of this source code is governed by a BSD-style
//	license that can be found in the Go LICENSE file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// hopHeaders are removed when copying a request or a response (RFC 9110
// §7.6.1 and the RFC 2616 list ReverseProxy keeps for compatibility).
// Canonical, as the maps' keys are.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// isForwardingHeader reports the incoming forwarding headers, which the
// gateway writes itself (setForwarding) from what it believes.
func isForwardingHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// connectionTokens appends to dst the header names listed in h's
// Connection header, which are hop-by-hop too.
func connectionTokens(dst []string, h http.Header) []string {
	for _, v := range h["Connection"] {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = textproto.TrimString(tok); tok != "" {
				dst = append(dst, tok)
			}
		}
	}
	return dst
}

// namedIn reports whether the canonical key k is one of names (as Del
// would canonicalise them: for valid tokens, an ASCII case-insensitive
// match).
func namedIn(names []string, k string) bool {
	for _, n := range names {
		if len(n) == len(k) && strings.EqualFold(n, k) {
			return true
		}
	}
	return false
}

// traceKey is the context key under which httptrace looks up a
// ClientTrace. It is unexported in httptrace; learning it once lets the
// exchange answer the lookup itself instead of allocating a value context
// per request (see exchange.Value).
var traceKey = func() any {
	var p keyProbe
	httptrace.ContextClientTrace(&p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(k any) any {
	p.key = k
	return nil
}

// outbound builds ex.out, the upstream request, from r in one pass.
func (p *Proxy) outbound(r *http.Request, ex *exchange) *http.Request {
	// Built here and copied once by WithContext, the only way to give a
	// request its context: one allocation for the request.
	var req http.Request
	out := &req
	ex.url = *r.URL
	u := &ex.url
	// As ReverseProxy with Rewrite: unparsable query parameters are
	// removed before the target's query is joined in.
	u.RawQuery = cleanQueryParams(u.RawQuery)
	p.rewritePath(u)
	rewriteRequestURL(u, ex.target.url)

	*out = http.Request{
		Method: r.Method, URL: u,
		Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
	}
	if p.preserveHost {
		out.Host = r.Host
	}
	if ex.body.rc != nil {
		out.Body = &ex.body
	}

	in := r.Header
	var named [8]string
	conn := connectionTokens(named[:0], in)
	te := headerValuesContainsToken(in["Te"], "trailers")
	// Room for what is copied and what the gateway adds (four forwarding
	// headers, User-Agent, the vouched ones, Te, the upgrade pair), and no
	// more: a map sized for at most 8 is one group, and the estimate
	// counts every inbound header, skipped or not.
	added := 5 + len(ex.vouched)
	if te {
		added++
	}
	if ex.upgrade {
		added += 2
	}
	size := len(in) + added
	if size > 8 {
		size = added
		for k := range in {
			if !p.skipOutbound(k, conn, ex) {
				size++
			}
		}
	}
	h := make(http.Header, size)
	for k, vv := range in {
		if p.skipOutbound(k, conn, ex) {
			continue
		}
		// The values are shared with the inbound request, capped so that
		// an append on either side cannot write into the other (nothing
		// writes header values in place: the transport only reads them).
		h[k] = vv[:len(vv):len(vv)]
	}
	// Issue 21096 of ReverseProxy: a client that said it accepts trailers
	// keeps saying so.
	// The gateway's own values live in ex.misc, each capped, so that no
	// request shares a slice with another.
	misc := ex.misc[:0:len(ex.misc)]
	set := func(k, v string) {
		misc = append(misc, v)
		n := len(misc)
		h[k] = misc[n-1 : n : n]
	}
	if te {
		set("Te", "trailers")
	}
	if ex.upgrade {
		// An allowed WebSocket upgrade; its Upgrade value is printable
		// (isWebSocketProtocol checked it).
		set("Connection", "Upgrade")
		h["Upgrade"] = in["Upgrade"][:1:1]
	}
	p.setForwarding(h, r, ex.client, &ex.fwd)
	if _, ok := h["User-Agent"]; !ok {
		// No User-Agent from the client: send none rather than Go's.
		set("User-Agent", "")
	}
	setVouched(h, ex)
	out.Header = h

	if r.Trailer != nil {
		// As ReverseProxy: the declared trailer names are announced
		// upstream (their values, read later into r.Trailer, are not
		// sent), minus any the gateway vouches for.
		out.Trailer = r.Trailer.Clone()
		for _, v := range ex.vouched {
			delete(out.Trailer, v.Name)
		}
	}
	if ex.parentTrace {
		// Someone traces the client request already: compose with
		// their hooks rather than hide them.
		return out.WithContext(httptrace.WithClientTrace(ex, &ex.trace))
	}
	return out.WithContext(ex)
}

// skipOutbound reports whether the client's header k stays off the
// upstream request: hop-by-hop (also when named in its Connection header,
// conn), a forwarding header (written afresh), or one the gateway vouches
// for (replaced).
func (p *Proxy) skipOutbound(k string, conn []string, ex *exchange) bool {
	return isHopHeader(k) || isForwardingHeader(k) || namedIn(conn, k) || ex.isVouched(k)
}

// serve is one exchange: ReverseProxy.ServeHTTP for the gateway's needs.
// Errors are recorded in ex (first one wins); nothing is written for them.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, ex *exchange) {
	out := p.outbound(r, ex)
	if ex.body.rc != nil {
		// A transport goroutine may still read the body after this
		// returns (the response can come before the upload ends);
		// closing makes such a read fail instead of touching a request
		// whose handler has finished (ReverseProxy, issue 46866).
		defer ex.body.Close()
	}
	res, err := p.rt.RoundTrip(out)
	ex.mu.Lock()
	ex.roundTripDone = true
	ex.mu.Unlock()
	if err != nil {
		ex.fail(err)
		return
	}
	ex.status, ex.latency = res.StatusCode, time.Since(ex.start)
	// The pipeline already set the request id on the response; an
	// upstream's own copy would be added as a second value.
	delete(res.Header, "X-Request-Id")

	if res.StatusCode == http.StatusSwitchingProtocols {
		// Refused before anything else looks at it, which also closes
		// the upstream connection: only an upgrade this route let
		// through may become a tunnel.
		if !ex.upgrade || !isWebSocketProtocol(res.Header) {
			res.Body.Close()
			ex.fail(errUnexpectedSwitch)
			return
		}
		p.switchProtocols(w, out, res, ex)
		return
	}

	dst := w.Header()
	var named [8]string
	conn := connectionTokens(named[:0], res.Header)
	for k, vv := range res.Header {
		if isHopHeader(k) || namedIn(conn, k) {
			continue
		}
		// res.Header is ours alone: its values move without a copy.
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior[:len(prior):len(prior)], vv...)
		} else {
			dst[k] = vv
		}
	}
	// The transport keeps the Trailer header out of res.Header; announce
	// the upstream's trailers from res.Trailer.
	announced := len(res.Trailer)
	if announced > 0 {
		var b strings.Builder
		for k := range res.Trailer {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
		}
		dst["Trailer"] = append(dst["Trailer"], b.String())
	}
	w.WriteHeader(res.StatusCode)

	if err := p.copyResponse(w, res.Body, flushInterval(res)); err != nil {
		defer res.Body.Close()
		// The response has started: all that is left is to abort the
		// connection (ReverseProxy, issue 23643), when net/http is
		// there to recover it.
		if r.Context().Value(http.ServerContextKey) == nil {
			p.logf("proxy: response copy error outside a server: %v", err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, not deferred: this fills res.Trailer

	if len(res.Trailer) > 0 {
		// Force chunking when trailers came, so net/http does not
		// compute a Content-Length for a short body and drop them.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		dst[k] = append(dst[k], vv...)
	}
}

// got1xx forwards an informational response (103 Early Hints, 102
// Processing; 100 Continue aside) to the client as it arrives, as
// ReverseProxy does.
func (ex *exchange) got1xx(code int, header textproto.MIMEHeader) error {
	if code == http.StatusContinue {
		// net/http answers the client's Expect: 100-continue itself when
		// the transport starts reading the body, which the upstream's 100
		// triggers at the same time: relaying it too would sometimes send
		// the client two (ReverseProxy does).
		return nil
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.roundTripDone {
		// RoundTrip has returned: the header map is no longer ours to
		// touch from this goroutine.
		return nil
	}
	h := ex.w.Header()
	// What the gateway set before forwarding (the request id) goes out
	// with the 1xx and stays for the final response; ReverseProxy clears
	// it with the 1xx's own headers. Copied only here, on the rare 1xx.
	var before http.Header
	if len(h) > 0 {
		before = h.Clone()
	}
	for k, vv := range header {
		h[k] = append(h[k], vv...)
	}
	ex.w.WriteHeader(code)
	// WriteHeader does not clear the map for 1xx responses.
	clear(h)
	for k, vv := range before {
		h[k] = vv
	}
	return nil
}

// flushInterval is ReverseProxy's choice with FlushInterval 0: flush
// after every write for server-sent events and for responses of unknown
// length (streams), else only at the end.
func flushInterval(res *http.Response) time.Duration {
	if res.ContentLength == -1 {
		return -1
	}
	ct := res.Header["Content-Type"]
	if len(ct) == 0 || len(ct[0]) < len("text/event-stream") ||
		!strings.EqualFold(ct[0][:len("text/event-stream")], "text/event-stream") {
		// Cannot be text/event-stream: skip the parser and its map.
		return 0
	}
	if base, _, _ := mime.ParseMediaType(ct[0]); base == "text/event-stream" {
		return -1
	}
	return 0
}

// copyResponse copies the body to the client with a pooled buffer; with a
// negative flushInterval the headers are flushed at once and every write
// is flushed.
func (p *Proxy) copyResponse(w http.ResponseWriter, src io.Reader, flushInterval time.Duration) error {
	var dst io.Writer = w
	if flushInterval < 0 {
		f := &flushWriter{w: w, rc: http.NewResponseController(w)}
		// ReverseProxy flushes the headers from a timer that fires at
		// once; doing it here gives the same bytes without a goroutine.
		_ = f.rc.Flush()
		dst = f
	}
	bp := copyBuffers.pool.Get()
	buf, ok := bp.(*[copyBufferSize]byte)
	if !ok {
		buf = new([copyBufferSize]byte)
	}
	defer copyBuffers.pool.Put(buf)
	for {
		nr, rerr := src.Read(buf[:])
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			p.logf("proxy: read error during body copy: %v", rerr)
		}
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nr != nw {
				return io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// flushWriter flushes after every write (ReverseProxy's maxLatencyWriter
// with a negative latency).
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	_ = f.rc.Flush()
	return n, err
}

// switchProtocols turns the client connection into a tunnel to the
// upstream after an allowed 101 (ReverseProxy's handleUpgradeResponse).
func (p *Proxy) switchProtocols(w http.ResponseWriter, out *http.Request, res *http.Response, ex *exchange) {
	reqUpType := upgradeType(out.Header)
	resUpType := upgradeType(res.Header)
	if !isPrint(resUpType) {
		res.Body.Close()
		ex.fail(fmt.Errorf("proxy: backend tried to switch to invalid protocol %q", resUpType))
		return
	}
	if !strings.EqualFold(reqUpType, resUpType) {
		res.Body.Close()
		ex.fail(fmt.Errorf("proxy: backend tried to switch protocol %q when %q was requested", resUpType, reqUpType))
		return
	}
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		ex.fail(errors.New("proxy: 101 switching protocols response with non-writable body"))
		return
	}
	conn, brw, hijackErr := http.NewResponseController(w).Hijack()
	if errors.Is(hijackErr, http.ErrNotSupported) {
		backConn.Close()
		ex.fail(fmt.Errorf("proxy: can't switch protocols using non-Hijacker ResponseWriter type %T", w))
		return
	}
	backConnCloseCh := make(chan struct{})
	go func() {
		// A cancelled exchange (the client left, the request timeout
		// expired) closes the tunnel.
		select {
		case <-ex.Done():
		case <-backConnCloseCh:
		}
		backConn.Close()
	}()
	defer close(backConnCloseCh)
	if hijackErr != nil {
		ex.fail(fmt.Errorf("proxy: hijack failed on protocol switch: %w", hijackErr))
		return
	}
	defer conn.Close()

	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	res.Header = h
	res.Body = nil // res.Write writes only the head; backConn has the body
	if err := res.Write(brw); err != nil {
		ex.fail(fmt.Errorf("proxy: response write: %w", err))
		return
	}
	if err := brw.Flush(); err != nil {
		ex.fail(fmt.Errorf("proxy: response flush: %w", err))
		return
	}
	errc := make(chan error, 1)
	go tunnel(conn, backConn, errc)
	go tunnel(backConn, conn, errc)
	// Until both directions ended, or one failed.
	if err := <-errc; err == nil {
		<-errc
	}
}

var errCopyDone = errors.New("proxy: tunnel copy complete")

// tunnel copies src to dst, then half-closes dst so the other side sees
// the end of this direction.
func tunnel(dst io.Writer, src io.Reader, errc chan<- error) {
	if _, err := io.Copy(dst, src); err != nil {
		errc <- err
		return
	}
	if wc, ok := dst.(interface{ CloseWrite() error }); ok {
		errc <- wc.CloseWrite()
		return
	}
	errc <- errCopyDone
}

// upgradeType is the protocol h asks to switch to, "" if none.
func upgradeType(h http.Header) string {
	if !headerValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// headerValuesContainsToken reports whether any comma-separated element
// of values is token, ASCII case-insensitively (httpguts'
// HeaderValuesContainsToken, for the tokens used here).
func headerValuesContainsToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

// rewriteRequestURL points u at target, joining their paths and queries
// (httputil.ProxyRequest.SetURL).
func rewriteRequestURL(u, target *url.URL) {
	targetQuery := target.RawQuery
	u.Scheme = target.Scheme
	u.Host = target.Host
	u.Path, u.RawPath = joinURLPath(target, u)
	if targetQuery == "" || u.RawQuery == "" {
		u.RawQuery = targetQuery + u.RawQuery
	} else {
		u.RawQuery = targetQuery + "&" + u.RawQuery
	}
}

func singleJoiningSlash(a, b string) string {
	aslash := strings.HasSuffix(a, "/")
	bslash := strings.HasPrefix(b, "/")
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

func joinURLPath(a, b *url.URL) (path, rawpath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return singleJoiningSlash(a.Path, b.Path), ""
	}
	// Same as singleJoiningSlash, but uses EscapedPath to determine
	// whether a slash should be added
	apath := a.EscapedPath()
	bpath := b.EscapedPath()

	aslash := strings.HasSuffix(apath, "/")
	bslash := strings.HasPrefix(bpath, "/")

	switch {
	case aslash && bslash:
		return a.Path + b.Path[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + b.Path, apath + "/" + bpath
	}
	return a.Path + b.Path, apath + bpath
}

// cleanQueryParams removes what url.ParseQuery would refuse (a ';'
// separator, a bad escape, more than 10,000 parameters) by re-encoding
// the query, as ReverseProxy does; a clean query is returned as is.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if numParams := strings.Count(s, "&") + 1; numParams > 10000 {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

// outBody is the upstream request's body: it remembers how reading the
// client's body went (trackedBody), and Close only stops further reads,
// because the transport closes the body it was given when it fails, and
// closing the client's body early would hang a 100-continue request.
type outBody struct {
	trackedBody
	closed atomic.Bool
}

var errReadAfterClose = errors.New("proxy: read on the request body after the exchange ended")

func (b *outBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterClose
	}
	return b.trackedBody.Read(p)
}

func (b *outBody) Close() error {
	b.closed.Store(true)
	return nil
}

// exchange is the per-request state of one Forward. It is the upstream
// request's context itself (embedding the client request's context, or
// the request timeout's), which carries it to the transport's hooks without
// a separate WithValue allocation, and it holds the outbound request and
// URL so that building them allocates nothing of their own.
type exchange struct {
	context.Context
	target  *target
	client  clientip.Client
	vouched []Header
	// vals backs the vouched headers' values on the outgoing request, so
	// that setting them costs no allocation for the usual few.
	vals [8]string
	// fwd backs the forwarding headers' values (setForwarding), misc
	// the other headers the core sets (Te, Connection, User-Agent).
	fwd  [4]string
	misc [3]string
	// upgrade is set when the request is an upgrade this route allows;
	// only then may the upstream switch protocols.
	upgrade bool
	start   time.Time
	latency time.Duration
	status  int
	err     error
	body    outBody
	hijack  hijackRecorder
	// timer expires the request timeout (nil: none); deadline is when.
	timer    *time.Timer
	deadline time.Time
	cancel   context.CancelCauseFunc

	url   url.URL
	trace httptrace.ClientTrace
	// parentTrace: the client request's context carries a ClientTrace
	// of its own, composed with trace by httptrace.WithClientTrace.
	parentTrace bool
	// w is the writer 1xx responses go to; mu and roundTripDone keep
	// the transport's goroutine off it once RoundTrip returned.
	w             http.ResponseWriter
	mu            sync.Mutex
	roundTripDone bool
}

// Value answers httptrace's lookup with the exchange's own ClientTrace.
func (ex *exchange) Value(key any) any {
	if key == traceKey && !ex.parentTrace {
		return &ex.trace
	}
	return ex.Context.Value(key)
}

// Deadline is the request timeout's, when it is earlier than the
// client request's own.
func (ex *exchange) Deadline() (time.Time, bool) {
	d, ok := ex.Context.Deadline()
	if ex.timer != nil && (!ok || ex.deadline.Before(d)) {
		return ex.deadline, true
	}
	return d, ok
}

// expire ends the exchange when the request timeout passes.
func (ex *exchange) expire() {
	ex.cancel(errRequestTimeout)
	if ex.body.rc != nil && !ex.body.finished() {
		// The transport cannot return while it is blocked reading the
		// request body, so a client trickling its upload would hold the
		// exchange past its timeout. Expiring the client connection's
		// read deadline unblocks that read; the client is answered and
		// the connection closed.
		_ = http.NewResponseController(ex.w).SetReadDeadline(time.Now())
	}
}

func (ex *exchange) fail(err error) {
	if ex.err == nil {
		ex.err = err
	}
}

func (ex *exchange) isVouched(k string) bool {
	for _, v := range ex.vouched {
		if v.Name == k {
			return true
		}
	}
	return false
}

func (p *Proxy) logf(format string, args ...any) {
	if p.errorLog != nil {
		p.errorLog.Printf(format, args...)
	}
}
