package pipeline

import (
	"encoding/hex"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// Tracing is the per-request side of OpenTelemetry, beside the Observer:
// a server span per request, a child span for the authenticate and
// authorize stages and a client span for the upstream exchange, whose
// context the upstream receives as traceparent/tracestate. It only runs
// when Options.Tracer is set; with none, a request does no tracing work.
//
// A client's traceparent and tracestate are believed only from a trusted
// proxy (forwarding.trusted_proxies); from anyone else the request starts
// a new trace and the client's headers never reach the upstream. Spans
// carry route names, the method, the URL path (never the query), the
// status and the decisions' reason codes: never a credential, a subject
// or a header value.

// traceContext is the W3C Trace Context propagator, for extracting a
// trusted proxy's traceparent and tracestate (baggage is not carried).
var traceContext propagation.TraceContext

// Trace header names, canonical, as they appear in http.Header.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
)

// Span start options, made once: passing them as a fixed slice costs no
// allocation per span.
var (
	serverSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	internalSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

// Span attribute keys (OpenTelemetry semantic conventions, and ours).
const (
	attrMethod      = attribute.Key("http.request.method")
	attrRoute       = attribute.Key("http.route")
	attrStatus      = attribute.Key("http.response.status_code")
	attrPath        = attribute.Key("url.path")
	attrGHRoute     = attribute.Key("gatehouse.route")
	attrRequestID   = attribute.Key("gatehouse.request_id")
	attrAuthMethod  = attribute.Key("gatehouse.auth.method")
	attrOutcome     = attribute.Key("gatehouse.outcome")
	attrReason      = attribute.Key("gatehouse.reason")
	attrProvider    = attribute.Key("gatehouse.auth.provider")
	attrServerAddr  = attribute.Key("server.address")
	attrServerPort  = attribute.Key("server.port")
	attrErrorType   = attribute.Key("error.type")
	attrUpstreamDur = attribute.Key("gatehouse.upstream.duration_ms")
)

// startTrace starts the request's server span. It runs before the route
// is known: the name and route attributes are set when the span ends. A
// sampled request gets r back with the span in its context, so the
// decision stages and the upstream call become its children; an unsampled
// one (the usual case at low ratios) keeps r and records nothing: only
// its trace context is passed upstream.
func (p *Plan) startTrace(st *state, r *http.Request) *http.Request {
	// The request's context holds no span (net/http sets none), so a
	// client that is not trusted starts a new root trace. The span's
	// start and end are the SDK's clock readings: a timestamp option
	// would cost an allocation per request.
	ctx := r.Context()
	if st.client.PeerTrusted {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, st.span = p.tracer.Start(ctx, UnmatchedRoute, serverSpan...)
	// Whatever the client sent is not the upstream's business: the
	// gateway's trace context replaces it (upstreamSpan), and a client's
	// tracestate must not ride along with the gateway's traceparent.
	delete(r.Header, headerTraceparent)
	delete(r.Header, headerTracestate)
	if !st.span.IsRecording() {
		return r
	}
	return r.WithContext(ctx)
}

// endTrace ends the server span with what the access log entry holds.
func (p *Plan) endTrace(st *state, r *http.Request) {
	s := st.span
	e := &st.entry
	name := UnmatchedRoute
	if rt := st.x.Route; rt != nil {
		name = rt.Name
	}
	s.SetName(name)
	if s.IsRecording() {
		method := r.Method
		if p.methodClass(method) == len(p.methods) {
			method = "_OTHER" // semantic conventions: a method the gateway does not know is not recorded verbatim
		}
		s.SetAttributes(
			attrMethod.String(method),
			attrRoute.String(name),
			attrGHRoute.String(name),
			attrPath.String(r.URL.Path),
			attrStatus.Int(e.Status),
			attrRequestID.String(e.RequestID),
		)
		if e.Status >= 500 {
			s.SetStatus(codes.Error, "")
		}
	}
	s.End()
}

// tracedStages wraps the stages that make decisions (authenticate,
// authorize) so each gets a child span; the others run as they are.
func tracedStages(stages []Stage, tracer trace.Tracer) []Stage {
	out := make([]Stage, len(stages))
	for i, s := range stages {
		switch s.(type) {
		case *authenticateStage, *authorizeStage:
			out[i] = &tracedStage{Stage: s, tracer: tracer}
		default:
			out[i] = s
		}
	}
	return out
}

// tracedStage runs a stage inside a child span of the request's, and
// records the decision its audit event holds (method, outcome, reason:
// never who the caller is or what the credential was).
type tracedStage struct {
	Stage
	tracer trace.Tracer
}

func (s *tracedStage) Process(x *Exchange) error {
	parent := trace.SpanFromContext(x.Request.Context())
	if !parent.IsRecording() {
		return s.Stage.Process(x)
	}
	_, span := s.tracer.Start(x.Request.Context(), s.Name(), internalSpan...)
	x.event.Type = "" // so a stage that logs no event leaves no stale one
	err := s.Stage.Process(x)
	if span.IsRecording() {
		ev := &x.event
		switch ev.Type {
		case audit.TypeAuthentication:
			span.SetAttributes(attrAuthMethod.String(ev.AuthMethod), attrOutcome.String(ev.Outcome), attrReason.String(ev.Reason))
			if ev.Provider != "" {
				span.SetAttributes(attrProvider.String(ev.Provider))
			}
		case audit.TypeAuthorization:
			span.SetAttributes(attrOutcome.String(ev.Outcome), attrReason.String(ev.Reason))
		}
		if ev.Type != "" && ev.Outcome == audit.OutcomeError {
			// Only a failure to decide is an error: a denial is the
			// gateway doing its job.
			span.SetStatus(codes.Error, ev.Reason)
		}
	}
	span.End()
	return err
}

// upstreamSpan starts the client span of the upstream exchange and makes
// the upstream request carry its context (traceparent, and tracestate when
// there is one) through the vouched-header seam, so a client's Connection
// header cannot remove it. An unsampled request gets no span: the upstream
// is given the server span's context. nil when no span was started.
func (p *Plan) upstreamSpan(st *state) trace.Span {
	if st.span == nil {
		return nil
	}
	x := &st.x
	if !st.span.IsRecording() {
		setTraceHeaders(x, st.span.SpanContext())
		return nil
	}
	_, span := p.tracer.Start(x.Request.Context(), "upstream", clientSpan...)
	setTraceHeaders(x, span.SpanContext())
	return span
}

// setTraceHeaders makes the upstream request carry sc as W3C Trace
// Context (version 00), set on the outgoing request by the proxy.
func setTraceHeaders(x *Exchange, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	var b [55]byte // 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & trace.FlagsSampled)})
	x.SetUpstreamHeader(headerTraceparent, string(b[:]))
	if ts := sc.TraceState(); ts.Len() > 0 {
		x.SetUpstreamHeader(headerTracestate, ts.String())
	}
}

// endUpstreamSpan ends the upstream span with the exchange's result.
func endUpstreamSpan(span trace.Span, result proxy.Result, err error) {
	if span.IsRecording() {
		host, port, err := net.SplitHostPort(result.Target)
		if err != nil {
			host, port = result.Target, "" // builtin:echo
		}
		span.SetAttributes(attrServerAddr.String(host))
		if port != "" {
			span.SetAttributes(attrServerPort.String(port))
		}
		span.SetAttributes(attrUpstreamDur.Float64(float64(result.Latency) / float64(time.Millisecond)))
		if result.Status != 0 {
			span.SetAttributes(attrStatus.Int(result.Status))
		}
		if class := upstreamErrorClass(err); class != UpstreamOK {
			span.SetAttributes(attrErrorType.String(class.String()))
			span.SetStatus(codes.Error, class.String())
		} else if result.Status >= 500 {
			span.SetAttributes(attrErrorType.Int(result.Status))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}
