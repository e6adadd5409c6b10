// Package pipeline is Gatehouse's request pipeline, in one place:
//
//	request id → client IP → framing check → request hygiene → route match → stages → body limit → in-flight limit → reverse proxy
//	                                  (authenticate → authorize → rate limit → identity headers)
//
// A Plan is the compiled form of one configuration: its route table, each
// route's stages and proxy. Nothing is parsed, compiled or looked up by name
// per request. Stages return typed errors; respond, in errors.go, is the only
// place where an error becomes an HTTP response.
package pipeline

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/framing"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/requestid"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/route"
)

// Stage is one step between the route match and the upstream: the seam
// where authentication, authorization, rate limiting and identity headers
// plug in. A stage either lets the request continue (nil), or stops it with
// a typed error that respond maps to a status. A stage never writes the
// response itself, so every refusal looks the same and is logged the same.
type Stage interface {
	// Name identifies the stage in logs and explanations ("authenticate").
	Name() string
	// Process runs the stage for one request. It may read and change x
	// (add an identity, set upstream headers), and must be safe for
	// concurrent use.
	Process(x *Exchange) error
}

// Exchange is the per-request state shared by the stages. It is pooled:
// stages must not keep a reference to it after Process returns.
type Exchange struct {
	// Request is the inbound request. Stages may remove headers from it
	// (a credential the upstream need not see); a header the gateway
	// vouches for is set with SetUpstreamHeader instead, never here, where
	// a client's Connection header could still remove it.
	Request   *http.Request
	Route     *Route
	Params    route.Params
	RequestID string
	// ClientIP is the TCP peer, or the address that trusted proxies
	// reported for it.
	ClientIP netip.Addr
	// Identity is the caller, set by the authenticate stage (nil before it
	// and on public routes).
	Identity *identity.Identity
	// Log is the access log entry; stages add who the caller is.
	Log *accesslog.Entry

	// upstream are the headers the gateway vouches for, set on the
	// outgoing request by the proxy (see SetUpstreamHeader).
	upstream []proxy.Header
	// response are the response phase's header edits (response.go);
	// applied counts those already applied, ran the stages whose Process
	// was called (their Respond runs).
	response []responseEdit
	applied  int
	ran      int

	// event is the audit event a stage is filling in, kept here so that
	// logging one does not allocate (audit.Logger does not keep it).
	event audit.Event
	// clientIP is ClientIP as text, made once per request when a rate-limit
	// key needs it (audit events take the address itself).
	clientIP string
	// rlKeys and rlDecisions hold the rate-limit stage's keys and
	// decisions (ratelimit.go), so a decision allocates no slice.
	rlKeys      [maxLimitsPerSet]string
	rlDecisions [maxLimitsPerSet]ratelimit.Decision
}

// SetUpstreamHeader makes the upstream request carry name: value, set by
// the proxy on the outgoing request after hop-by-hop removal, so no client
// header can remove or precede it; it replaces any client-sent header of
// that name. name must be canonical (http.CanonicalHeaderKey). This is the
// one way the gateway vouches for something to the upstream: identity
// headers, the request id, a signed identity assertion.
func (x *Exchange) SetUpstreamHeader(name, value string) {
	x.upstream = append(x.upstream, proxy.Header{Name: name, Value: value})
}

// auditEvent returns x's scratch event, reset to the request's fields.
// The client's address goes in as a netip.Addr, which the audit writer
// appends as text in place: no string is made for it.
func (x *Exchange) auditEvent(typ string) *audit.Event {
	x.event = audit.Event{
		Type: typ, RequestID: x.RequestID, Route: x.Route.Name, ClientAddr: x.ClientIP,
		HTTPMethod: x.Request.Method, Path: x.Request.URL.Path,
	}
	return &x.event
}

// Route is one compiled route.
type Route struct {
	Name         string
	Stages       []Stage
	Proxy        *proxy.Proxy
	MaxBodyBytes int64
	// Deadline bounds reading the request and writing the response; 0
	// clears the listener's deadlines so streams and WebSockets can live on.
	Deadline time.Duration
	// inFlight bounds the requests in flight to the upstream
	// (max_in_flight); nil: no bound.
	inFlight *ratelimit.Concurrency
	// public: the route authenticates nobody (public: true). A method may
	// not move a request from an authenticated route to a public one
	// (hygiene.go).
	public bool
	// observer sees this route's requests (observe.go); nil: none.
	observer RouteObserver
	// serve, when set, makes this a gateway-owned endpoint (endpoint.go):
	// after the stages the gateway answers itself (writing through w, so
	// the response phase applies) instead of proxying; an error it
	// returns before writing is answered by respond. Proxy is then nil.
	serve serveFunc
	// decisionOnly: the route has no upstream and is decided for the
	// decision API only (decide.go); the proxy path answers 404.
	decisionOnly bool
	// responders are the stages that take part in the response phase
	// (response.go).
	responders []responder
	// resourceMetadata is the URL of the route's RFC 9728 metadata
	// document, named in its 401 challenges ("": none; metadata.go).
	resourceMetadata string
	// cors is the route's compiled CORS policy (cors.go), nil: none;
	// preflight and refusedPreflight are the gateway-owned routes that
	// answer its preflights.
	cors             *corsPolicy
	preflight        *Route
	refusedPreflight *Route
}

// Plan is one compiled configuration. It is immutable once built and
// served through an atomic pointer, so a reload swaps whole plans and an
// in-flight request finishes on the plan it started with.
type Plan struct {
	table *route.Table[*Route]
	// entries are the configured routes' table entries; the table adds
	// the gateway-owned endpoints (endpoint.go).
	entries  []route.Entry[*Route]
	routes   []*Route
	resolver *clientip.Resolver
	access   *accesslog.Logger
	// stripHeaders are identity header names removed from every request.
	stripHeaders []string
	// hygiene is the compiled request_hygiene (hygiene.go).
	hygiene hygiene
	// aliases finds paths a lenient backend reads as another route's
	// (alias.go).
	aliases    aliases
	providers  []providerHealth
	audit      audit.Logger
	validating bool
	log        *slog.Logger
	closers    []func()
	readies    []func() error
	// scope is the plan's hold on shared resources (resources.go),
	// released by Close.
	scope *resource.Scope
	// apiKeys is the API-key runtime of api_key routes; nil: none.
	// staticKeys, when set, are the static keys Activate gives a runtime
	// kept from an earlier plan.
	apiKeys    *APIKeys
	staticKeys *[]config.StaticAPIKey
	// revocations is the revocation list runtime (revocation.go); nil:
	// revocation.enabled is false.
	revocations *Revocations
	// ownEndpoints are the security endpoints of the configuration
	// (shared_signals, leak_reports; signals.go), mounted on every host.
	ownEndpoints []endpoint.Provider
	// tokenCaches are the providers' verified-token caches, for
	// invalidation by Shared Signals events.
	tokenCaches []*jwt.TokenCache
	// unavailableLog throttles the warning of credentials that cannot be
	// checked (one per request would flood the log during an outage).
	unavailableLog logThrottle
	// methods are the method classes given to the observer, and unmatched
	// sees requests no route takes (observe.go); nil: no observer.
	methods   []string
	unmatched RouteObserver
	// anyCORS: some route has a cors policy, so preflights are looked for.
	anyCORS bool
	// tracer records each request's spans (trace.go); nil: tracing off.
	tracer trace.Tracer

	// assertion is the compiled identity_assertion (assertion.go); nil:
	// none.
	assertion *assertionRuntime

	// rateLimits are the compiled rate_limits (ratelimit.go); nil: none.
	rateLimits *rateLimits

	// credHeaders are the registered methods' credential headers
	// (credentialHeaders), removed before the upstream on every route.
	credHeaders []string

	// decision is the compiled decision_api (decide.go); nil: off.
	decision *decisionAPI
}

// state is everything one request needs, pooled so the hot path does not
// allocate it per request.
type state struct {
	rec   recorder
	x     Exchange
	entry accesslog.Entry
	// upstream backs x.upstream, so the usual few headers cost nothing;
	// response backs x.response.
	upstream [8]proxy.Header
	response [8]responseEdit
	// forwarded is when the request was handed to the upstream, for the
	// observer (zero: not forwarded, or no observer).
	forwarded time.Time
	// span is the request's server span; nil when not traced (trace.go).
	span trace.Span
	// client is the request's client, resolved once (peer, its trust,
	// the client address) for every stage, the trace and the proxy.
	client clientip.Client
}

var statePool = sync.Pool{New: func() any { return new(state) }}

// ServeHTTP runs the pipeline for one request on this plan. listener names
// the front door for the access log.
func (p *Plan) ServeHTTP(w http.ResponseWriter, r *http.Request, listener string) {
	st := statePool.Get().(*state)
	defer func() { *st = state{}; statePool.Put(st) }()

	rid := requestid.FromIncoming(r.Header.Get(requestid.Header))
	// One allocation for both headers; each gets its own element, capped
	// so that an append to one can never write into the other.
	ids := []string{rid, rid}
	r.Header[requestid.Header] = ids[0:1:1]
	w.Header()[requestid.Header] = ids[1:2:2]

	st.rec = recorder{ResponseWriter: w, x: &st.x}
	rec := &st.rec
	e := &st.entry
	st.client = p.resolver.Resolve(r)
	*e = accesslog.Entry{
		Start: time.Now(), RequestID: rid, Listener: listener, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, RawQuery: r.URL.RawQuery, Proto: r.Proto, ClientIP: st.client.IP,
	}
	if p.tracer != nil {
		r = p.startTrace(st, r)
	}
	defer p.observe(st, r) // after finish: the status and duration are final
	defer p.finish(rec, r, e)

	stripIdentityCopies(r, p.stripHeaders)
	if err := framing.Check(r); err != nil {
		// Before anything else: an answer that keeps the connection
		// open would let the bytes after this head be read as a request.
		p.respond(rec, r, e, err)
		return
	}
	if framing.CloseAfter(r) {
		w.Header()["Connection"] = []string{"close"}
	}
	// Request hygiene, then the route match (hygiene.go).
	res, err := p.route(r, st.client.PeerTrusted)
	if err != nil {
		p.respond(rec, r, e, err)
		return
	}
	x := p.runStages(st, w, r, rid, res)
	if x == nil {
		return
	}
	rt := x.Route

	if rt.MaxBodyBytes > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.MaxBodyBytes {
			p.respond(rec, r, e, &http.MaxBytesError{Limit: rt.MaxBodyBytes})
			return
		}
		// The real writer, so net/http closes the connection instead of
		// draining the rest of an oversized body.
		r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes)
	}
	setDeadlines(w, rt.Deadline)
	if rt.inFlight != nil {
		if !rt.inFlight.Acquire(rt.Name) {
			p.respond(rec, r, e, errConcurrencyLimit)
			return
		}
		defer rt.inFlight.Release(rt.Name)
	}

	obs := rt.observer
	if obs != nil {
		st.forwarded = time.Now()
	}
	span := p.upstreamSpan(st)
	result, err := rt.Proxy.ForwardFrom(rec, r, st.client, x.upstream)
	e.Upstream, e.UpstreamLatency = result.Target, result.Latency
	if span != nil {
		endUpstreamSpan(span, result, err)
	}
	if obs != nil {
		obs.Upstream(UpstreamExchange{Duration: result.Latency, Error: upstreamErrorClass(err)})
	}
	if result.Switched && !rec.started() {
		rec.status = result.Status // hijacked for a WebSocket: the recorder never saw it
	}
	if err != nil {
		p.respond(rec, r, e, err)
	}
}

// finish writes the access log line, also when a handler panics: a
// http.ErrAbortHandler (the proxy aborting a broken stream) is logged and
// passed on to net/http, anything else is answered with a 500.
func (p *Plan) finish(rec *recorder, r *http.Request, e *accesslog.Entry) {
	v := recover()
	if v != nil && v != http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		p.log.Error("pipeline: panic while serving a request", "request_id", e.RequestID, "route", e.Route, "panic", v)
		p.respond(rec, r, e, errPanic)
	}
	if v == http.ErrAbortHandler { //nolint:errorlint
		e.Error = "response_aborted"
	}
	e.Status, e.Bytes = rec.status, rec.bytes
	if e.Status == 0 {
		switch {
		case v != nil:
			e.Status = 499 // aborted mid-response; nothing more to send
		default:
			e.Status = http.StatusOK
		}
	}
	e.Duration = time.Since(e.Start)
	p.access.Log(e)
	if v == http.ErrAbortHandler { //nolint:errorlint
		panic(v)
	}
}

// runStages runs the matched route's stages over r. The proxy path and
// the decision API both call it, so that a decision is the proxy path's
// up to forwarding. It returns the exchange, or nil when the request has
// been answered: a stage refused it, or the route is one the gateway
// answers itself (direct_response, its own endpoints, a CORS preflight;
// through the decision API, its caller passes a refusal on and takes a
// 2xx as "allowed").
func (p *Plan) runStages(st *state, w http.ResponseWriter, r *http.Request, rid string, res route.Result[*Route]) *Exchange {
	rec, e := &st.rec, &st.entry
	rt := res.Value
	e.Route = rt.Name
	x := &st.x
	*x = Exchange{Request: r, Route: rt, Params: res.Params, RequestID: rid, ClientIP: e.ClientIP, Log: e,
		upstream: st.upstream[:0], response: st.response[:0]}
	x.SetUpstreamHeader(requestid.Header, rid)
	for i, s := range rt.Stages {
		x.ran = i + 1
		if err := s.Process(x); err != nil {
			p.respond(rec, r, e, err)
			return nil
		}
	}
	if rt.serve != nil {
		p.serveEndpoint(rec, w, x)
		return nil
	}
	return x
}

// setDeadlines gives a routed request its route's deadline instead of the
// listener's, or none for streaming routes. Writers that do not support
// deadlines (tests' recorders) are left alone.
func setDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	var at time.Time
	if d > 0 {
		// A second of grace so a 504 can still be written after the
		// upstream request timeout fires.
		at = time.Now().Add(d + time.Second)
	}
	_ = rc.SetReadDeadline(at)
	_ = rc.SetWriteDeadline(at)
}

// recorder captures the status and size of the response for the access log.
// It implements Unwrap so http.ResponseController (used by the reverse proxy
// to flush streams and hijack WebSocket connections) reaches the real writer.
//
// It is also where the response phase runs (response.go): the header
// edits that stages collected in x are applied once, just before the final
// status goes out, whoever writes it.
type recorder struct {
	http.ResponseWriter
	x      *Exchange
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		r.x.applyResponse(r.status, r.ResponseWriter.Header())
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
		r.x.applyResponse(r.status, r.ResponseWriter.Header())
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController find Flush, Hijack and deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes through, so streamed responses reach the client as they come.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
		r.x.applyResponse(r.status, r.ResponseWriter.Header())
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// started reports whether headers went out, after which no error response
// can be written.
func (r *recorder) started() bool { return r.status != 0 }
