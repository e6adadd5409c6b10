package pipeline

import (
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/reply"
)

// The answers of respond for the typed replies of package reply.

// redirect answers a reply.RedirectError: 302 or 303, Location, its
// cookies, Cache-Control: no-store (a redirect that sets a session must
// never be replayed from a cache) and no body. One that does not pass
// Check (a Location with CR or LF, "//host", a bad cookie) is a bug of
// whoever built it: refused with 500, nothing of it sent.
func (p *Plan) redirect(w *recorder, e *accesslog.Entry, rd *reply.RedirectError) {
	if err := rd.Check(); err != nil {
		e.Error = problem.Internal.Slug
		p.log.Error("pipeline: refused an invalid redirect", "request_id", e.RequestID, "route", e.Route, "error", err)
		if !w.started() {
			problem.Write(w, problem.Internal, "An internal error occurred; quote the request id when reporting it.", e.RequestID)
		}
		return
	}
	if w.started() {
		return
	}
	h := w.Header()
	h["Location"] = []string{rd.Location}
	for _, c := range rd.Cookies {
		h["Set-Cookie"] = append(h["Set-Cookie"], c.String())
	}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(rd.Status)
}

// tooManyRequests sets the headers of a 429: Retry-After in whole
// seconds and the extra fields (RateLimit, RateLimit-Policy), dropping any
// whose value could split the header.
func (p *Plan) tooManyRequests(w *recorder, e *accesslog.Entry, tm *reply.TooManyRequestsError) {
	if w.started() {
		return
	}
	h := w.Header()
	if s := tm.RetryAfterSeconds(); s > 0 {
		h["Retry-After"] = []string{strconv.FormatInt(s, 10)}
	}
	for name, vs := range tm.Header {
		if name != http.CanonicalHeaderKey(name) || !httpguts.ValidHeaderFieldName(name) {
			p.log.Warn("pipeline: dropped a 429 header with an invalid name", "request_id", e.RequestID)
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				h[name] = append(h[name], v)
			} else {
				p.log.Warn("pipeline: dropped a 429 header value with a control character", "request_id", e.RequestID, "header", name)
			}
		}
	}
}
