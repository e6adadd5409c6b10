package pipeline

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// Observer watches what the pipeline does, for metrics (and, later, traces
// and the access log): the one place that sees each request's route, the
// outcome of authentication and authorization, the upstream exchange and
// the final status. It is given to Build in Options and lives as long as
// the process, across reloads; each plan asks it for one RouteObserver per
// compiled route, so whatever a route's requests need (metric children
// with the route's labels) is resolved once per route, never per request.
//
// Every method may be called concurrently and on the request path: it must
// be cheap, must not block and should not allocate. Labels an Observer
// derives must stay bounded: everything it is given comes from the
// configuration or from fixed sets of codes, never from the request (the
// path, a token, a subject).
type Observer interface {
	// Route returns the observer of one compiled route's requests. It is
	// called once per route when a plan is built, and once per plan with
	// UnmatchedRoute for every request no route takes (unknown paths,
	// refused methods, malformed requests). methods are the plan's method
	// classes: RequestDone.MethodClass indexes them, and len(methods)
	// stands for any other method. A plan that fails to build may have
	// asked for routes it never serves.
	Route(name string, methods []string) RouteObserver
	// JWTCache reports whether a JWT was answered from the verified-token
	// cache (hit) or verified in full (miss).
	JWTCache(hit bool)
	// KeyFetch reports one fetch of an identity provider's keys (discovery
	// and JWKS) and its error, nil on success.
	KeyFetch(provider string, err error)
	// APIKeyCache and APIKeyStore report API-key lookups (see
	// authn/apikey.LookupObserver); store is api_keys.store.type.
	APIKeyCache(store string, hit bool)
	APIKeyStore(store string, d time.Duration, result authnapikey.StoreResult)
}

// UnmatchedRoute is the route name under which an Observer sees requests
// that matched no route.
const UnmatchedRoute = "_unmatched"

// RouteObserver sees the requests of one compiled route. Each request calls
// Done exactly once, at the end; Authentication, Authorization and Upstream
// when those steps ran.
type RouteObserver interface {
	Authentication(Authentication)
	Authorization(Authorization)
	Upstream(UpstreamExchange)
	Done(RequestDone)
}

// RateLimitObserver is implemented by RouteObservers that count the
// rate-limit stage's decisions and brute-force lockouts (optional, so
// that observers written before it still satisfy RouteObserver).
type RateLimitObserver interface {
	// RateLimit reports one limit's part in a decision: result is
	// "allowed" (the request was admitted, counted once per limit),
	// "limited" (this limit refused it) or "exempt" (limit ""). policy
	// and limit are configured names.
	RateLimit(policy, limit, result string)
	// Lockout reports the start of a brute-force lockout; key is "ip"
	// or "credential".
	Lockout(key string)
}

// Authentication is the outcome of a route's authentication chain, as the
// audit event records it (without who the caller is).
type Authentication struct {
	// Method is the credential method that decided ("jwt", "api_key",
	// "anonymous"), "" when no method applied (no credential at all).
	Method string
	// Outcome is audit.OutcomeAllow, OutcomeDeny or OutcomeError.
	Outcome string
	// Reason is the stable reason code (authn.Reason).
	Reason string
	// Provider is the identity provider's configured name, "" if none.
	Provider string
}

// Authorization is the outcome of a route's policy.
type Authorization struct {
	Outcome string // audit.OutcomeAllow or OutcomeDeny
	Reason  string // authz.Reason
}

// UpstreamExchange is one forwarding of a request to the upstream.
type UpstreamExchange struct {
	// Duration runs until the upstream's response headers arrived, or until
	// the exchange failed.
	Duration time.Duration
	Error    UpstreamError
}

// UpstreamError classifies how an upstream exchange failed.
type UpstreamError uint8

// Upstream error classes.
const (
	UpstreamOK          UpstreamError = iota
	UpstreamUnavailable               // could not connect, or a broken answer: 502
	UpstreamTimeout                   // a dial, response-header or request timeout: 504
	UpstreamClientGone                // the client went away first
	UpstreamBadRequest                // the client's body was malformed or too large
	UpstreamOther                     // anything else
	UpstreamTLS                       // the TLS handshake failed (certificate refused either way): 502
)

// String is the class's label value.
func (e UpstreamError) String() string {
	switch e {
	case UpstreamOK:
		return "none"
	case UpstreamUnavailable:
		return "unavailable"
	case UpstreamTimeout:
		return "timeout"
	case UpstreamClientGone:
		return "client_gone"
	case UpstreamBadRequest:
		return "bad_request"
	case UpstreamTLS:
		return "tls"
	}
	return "other"
}

// upstreamErrorClass classifies an error of proxy.Forward.
func upstreamErrorClass(err error) UpstreamError {
	if err == nil {
		return UpstreamOK
	}
	return upstreamFailureClass(err)
}

// upstreamFailureClass is upstreamErrorClass of an error, apart so that
// the errors.As target is allocated only when there is one.
func upstreamFailureClass(err error) UpstreamError {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, proxy.ErrClientGone):
		return UpstreamClientGone
	case errors.Is(err, proxy.ErrUpstreamTimeout):
		return UpstreamTimeout
	case errors.Is(err, proxy.ErrUpstreamTLS):
		return UpstreamTLS
	case errors.Is(err, proxy.ErrUpstreamUnavailable):
		return UpstreamUnavailable
	case errors.Is(err, proxy.ErrMalformedBody), errors.As(err, &tooBig):
		return UpstreamBadRequest
	}
	return UpstreamOther
}

// RequestDone is a request's end, as the access log records it.
type RequestDone struct {
	// MethodClass indexes the methods given to Observer.Route; the length
	// of that list means any other method.
	MethodClass int
	// Status is the status sent (499: the client went away first).
	Status int
	// Duration runs from the request's arrival to the end of the response.
	Duration time.Duration
	// Overhead is the gateway's own share: from arrival until the request
	// was handed to the upstream. Zero for a request that was not
	// forwarded (refused, or answered by the gateway).
	Overhead time.Duration
}

// methodClasses are the methods a plan accepts, as Observer.Route gets them.
func (h *hygiene) methodClasses() []string {
	out := make([]string, 0, len(h.allowed)+len(h.routeMethods))
	out = append(out, h.allowed...)
	return append(out, h.routeMethods...)
}

// methodClass is the index of m in p.methods, len(p.methods) if absent.
func (p *Plan) methodClass(m string) int {
	for i, c := range p.methods {
		if c == m {
			return i
		}
	}
	return len(p.methods)
}

// observe reports the end of a request served by ServeHTTP. It runs after
// finish (deferred before it), so the status and duration are final.
func (p *Plan) observe(st *state, r *http.Request) {
	if st.span != nil {
		p.endTrace(st, r)
	}
	o := p.unmatched
	if rt := st.x.Route; rt != nil {
		o = rt.observer
	}
	if o == nil {
		return
	}
	d := RequestDone{MethodClass: p.methodClass(r.Method), Status: st.entry.Status, Duration: st.entry.Duration}
	if !st.forwarded.IsZero() {
		d.Overhead = st.forwarded.Sub(st.entry.Start)
	}
	o.Done(d)
}

// observeRefused reports the end of a request refused by Refuse.
func (p *Plan) observeRefused(r *http.Request, e *accesslog.Entry) {
	if p.unmatched != nil {
		p.unmatched.Done(RequestDone{MethodClass: p.methodClass(r.Method), Status: e.Status, Duration: e.Duration})
	}
}

// apiKeyObserver adapts an Observer to authn/apikey's LookupObserver.
type apiKeyObserver struct {
	o     Observer
	store string
}

func (a apiKeyObserver) CacheLookup(hit bool) { a.o.APIKeyCache(a.store, hit) }
func (a apiKeyObserver) StoreLookup(d time.Duration, r authnapikey.StoreResult) {
	a.o.APIKeyStore(a.store, d, r)
}
