package pipeline

import (
	"errors"
	"github.com/gatehouse/gatehouse/internal/quota"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/framing"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/reply"
)

var (
	errRouteNotFound = errors.New("pipeline: no route matches")
	errPanic         = errors.New("pipeline: internal error")
	errBadPath       = errors.New("pipeline: path is not absolute or has dot segments")
)

// MethodNotAllowedError means a route matched the host and path but not
// the method. Allow lists the methods that would have matched.
type MethodNotAllowedError struct{ Allow string }

func (e *MethodNotAllowedError) Error() string {
	return "pipeline: method not allowed (allow: " + e.Allow + ")"
}

// ConcurrencyLimitError means the route's max_in_flight requests are
// already at the upstream: 503 with Retry-After, never queued.
type ConcurrencyLimitError struct{ Route string }

func (e *ConcurrencyLimitError) Error() string {
	return "pipeline: route " + e.Route + " has too many requests in flight"
}

// errConcurrencyLimit is the one value answered, so refusing costs no
// allocation (the access log names the route).
var errConcurrencyLimit = &ConcurrencyLimitError{}

// respond is the one place where an error becomes an HTTP response. It
// matches typed errors (never error strings), writes a problem+json body
// with a fixed, safe detail, and records a stable reason in the access log.
// The error's own text is never sent: it may hold internal addresses.
func (p *Plan) respond(w *recorder, r *http.Request, e *accesslog.Entry, err error) {
	var (
		t         problem.Type
		detail    string
		mna       *MethodNotAllowedError
		tooBig    *http.MaxBytesError
		chall     *challengeError
		unavl     *authn.UnavailableError
		forbidden *ForbiddenError
		hdrBig    *HeaderTooLargeError
		reqErr    *RequestError
		redirect  *reply.RedirectError
		tooMany   *reply.TooManyRequestsError
		refused   *reply.RefusedError
		forbids   *reply.ForbiddenError
		inFlight  *ConcurrencyLimitError
	)
	switch {
	case errors.As(err, &redirect):
		p.redirect(w, e, redirect)
		return
	case errors.As(err, &tooMany):
		t, detail = problem.TooManyRequests, "Too many requests; try again later."
		if tooMany.QuotaExceeded {
			t, detail = problem.QuotaExceeded, "The caller's quota is used up until it resets (Retry-After)."
		}
		p.tooManyRequests(w, e, tooMany)
	case errors.Is(err, quota.ErrUnavailable):
		// Fail closed: the quota could not be counted.
		t, detail = problem.Unavailable, "The quota cannot be checked right now; try again later."
		w.Header().Set("Retry-After", "5")
		if ok, suppressed := p.unavailableLog.allow("quota_store", time.Now()); ok {
			p.log.Warn("pipeline: quota store unavailable (at most one line every 10s)",
				"request_id", e.RequestID, "route", e.Route, "error", err, "suppressed", suppressed)
		}
	case errors.As(err, &inFlight):
		t, detail = problem.ConcurrencyLimit, "Too many requests to this service are in progress; try again shortly."
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, proxy.ErrClientGone):
		// Nobody is listening; 499 is the de-facto code for it in logs.
		e.Error = "client_closed_request"
		if !w.started() {
			w.status = 499
		}
		return
	case errors.Is(err, proxy.ErrMalformedBody):
		// The body's framing is broken, so where the next request on this
		// connection starts is unknown: answer, then close the connection.
		t, detail = problem.BadRequest, "The request body is malformed (invalid chunked encoding)."
		w.Header().Set("Connection", "close")
	case errors.Is(err, framing.ErrAmbiguous):
		// RFC 9112 §6.1: refuse, and close, so that no byte after this
		// head is ever read as a request.
		t, detail = problem.BadRequest, "The request framing is ambiguous (Content-Length with Transfer-Encoding, or Transfer-Encoding in HTTP/1.0)."
		w.Header().Set("Connection", "close")
	case errors.As(err, &refused):
		t, detail = problem.BadRequest, refused.Detail
		if refused.Unauthenticated {
			t = problem.Unauthorized
			c := refused.Challenge
			if c == "" || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				c = `Bearer realm="gatehouse"`
			}
			w.Header().Set("WWW-Authenticate", c)
		}
	case errors.As(err, &forbids):
		t, detail = problem.Forbidden, forbids.Detail
	case errors.Is(err, errBadPath):
		t, detail = problem.BadRequest, "The request path must be absolute and must not contain \".\" or \"..\" segments."
	case errors.As(err, &reqErr):
		t, detail = reqErr.Type, reqErr.Detail
	case errors.As(err, &chall):
		t, detail = problem.Unauthorized, chall.failure.Description
		if detail == "" {
			detail = "Authentication is required."
		}
		if w.x != nil && w.x.Route != nil {
			chall.resourceMetadata = w.x.Route.resourceMetadata
		}
		c, headers := chall.wwwAuthenticate(r)
		w.Header().Set("WWW-Authenticate", c)
		for _, h := range headers {
			w.Header().Set(h[0], h[1])
		}
	case errors.As(err, &forbidden):
		// The rule that denied goes to the audit event only.
		t, detail = problem.Forbidden, "The caller is not allowed to perform this request."
		if c := forbidden.wwwAuthenticate(); c != "" {
			if w.x != nil && w.x.Route != nil && w.x.Route.resourceMetadata != "" {
				// RFC 9728 §5.1, as MCP clients expect it on a scope step-up.
				c += `, resource_metadata="` + quoteSafe(w.x.Route.resourceMetadata) + `"`
			}
			w.Header().Set("WWW-Authenticate", c)
		}
	case errors.As(err, &unavl):
		// Fail closed: the credential could not be checked, so the request
		// is refused, with a status that tells the client to retry.
		t, detail = problem.Unavailable, "Credentials cannot be verified right now; try again later."
		w.Header().Set("Retry-After", "5")
		if ok, suppressed := p.unavailableLog.allow(string(unavl.Reason), time.Now()); ok {
			p.log.Warn("pipeline: authentication unavailable (at most one line per reason every 10s)",
				"request_id", e.RequestID, "route", e.Route, "error", err, "suppressed", suppressed)
		}
	case errors.Is(err, errAssertionUnavailable):
		// Fail closed: the route promises its upstream a signed identity.
		t, detail = problem.Unavailable, "The gateway cannot sign the identity assertion right now; try again later."
		w.Header().Set("Retry-After", "5")
		if ok, suppressed := p.unavailableLog.allow("identity_assertion", time.Now()); ok {
			p.log.Warn("pipeline: identity assertion unavailable (at most one line every 10s)",
				"request_id", e.RequestID, "route", e.Route, "error", err, "suppressed", suppressed)
		}
	case errors.Is(err, errRouteNotFound):
		t, detail = problem.RouteNotFound, "No route is configured for this host, path and method."
	case errors.As(err, &mna):
		t, detail = problem.MethodNotAllowed, "This path accepts: "+mna.Allow+"."
		w.Header().Set("Allow", mna.Allow)
	case errors.As(err, &hdrBig):
		// Nothing more of this connection is worth reading.
		t, detail = problem.HeaderTooLarge, "The request line and header fields exceed this listener's limit of "+strconv.FormatInt(hdrBig.Limit, 10)+" bytes."
		w.Header().Set("Connection", "close")
	case errors.As(err, &tooBig):
		t, detail = problem.BodyTooLarge, "The request body exceeds this route's limit."
	case errors.Is(err, proxy.ErrUpstreamTimeout):
		t, detail = problem.UpstreamTimeout, "The upstream service did not answer in time."
	case errors.Is(err, proxy.ErrUpstreamUnavailable):
		t, detail = problem.UpstreamError, "The upstream service could not be reached or answered badly."
	default:
		t, detail = problem.Internal, "An internal error occurred; quote the request id when reporting it."
		p.log.Error("pipeline: unexpected error", "request_id", e.RequestID, "route", e.Route, "error", err)
	}
	e.Error = t.Slug
	if w.started() {
		// Headers are gone; the most we can do is log what happened.
		return
	}
	problem.Write(w, t, detail, e.RequestID)
}
