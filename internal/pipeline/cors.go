package pipeline

import (
	"net/http"
	"slices"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/cors"
	"github.com/gatehouse/gatehouse/internal/route"
)

// CORS (docs/cors.md). A route with a cors policy gets two things:
//
//   - a preflight endpoint: an OPTIONS request with Origin and
//     Access-Control-Request-Method is routed as the method it asks about
//     (matchPreflight), and if that route has cors the gateway answers it
//     itself (servePreflight) — before any stage, so without
//     authentication, and never forwarded. An origin, method or header
//     the policy does not allow gets the same 204 without any
//     Access-Control-Allow-* header (as rs/cors does), which the browser
//     reports as a CORS failure;
//   - a first stage (corsStage) that, through the response phase
//     (response.go), removes every Access-Control-* header the upstream
//     sends, adds Vary: Origin, and for an allowed origin sets the
//     gateway's own Access-Control-Allow-Origin, -Allow-Credentials and
//     -Expose-Headers, on the upstream's answer and on the gateway's own
//     errors (a script must be able to read a 401 to react to it).
//
// Actual requests still run every stage: CORS tells a browser what a
// script may read, it never grants access.

// corsPolicy is a route's compiled policy.
type corsPolicy struct{ *cors.Policy }

const (
	hdrOrigin        = "Origin"
	hdrRequestMethod = "Access-Control-Request-Method"
	hdrACAO          = "Access-Control-Allow-Origin"
	hdrACAC          = "Access-Control-Allow-Credentials"
	hdrACEH          = "Access-Control-Expose-Headers"
	// preflightVary is Vary on every preflight answer: it depends on all three.
	preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)

// buildCORS compiles rc's cors block onto rt: its first stage and its
// preflight endpoint. A route without one is left alone.
func buildCORS(rt *Route, rc config.Route) error {
	if rc.CORS == nil {
		return nil
	}
	pol, err := cors.New(rc.CORS.Policy())
	if err != nil {
		return err
	}
	rt.cors = &corsPolicy{pol}
	rt.Stages = slices.Insert(rt.Stages, 0, Stage(corsStage{rt.cors}))
	rt.preflight = &Route{Name: rt.Name, observer: rt.observer, cors: rt.cors, serve: rt.cors.servePreflight}
	rt.refusedPreflight = &Route{Name: rt.Name, observer: rt.observer, cors: rt.cors, serve: refusePreflight}
	return nil
}

// corsStage sets a cross-origin request's response headers. It never
// refuses: a request from a disallowed origin goes on, and its answer
// carries no Access-Control-Allow-Origin, so the browser keeps it from
// the script.
type corsStage struct{ p *corsPolicy }

func (corsStage) Name() string { return "cors" }

func (s corsStage) Process(x *Exchange) error {
	x.RemoveResponseHeaders("Access-Control-")
	x.AddResponseHeader("Vary", hdrOrigin)
	o := x.Request.Header[hdrOrigin]
	if len(o) != 1 || !s.p.AllowOrigin(o[0]) || !s.p.AllowMethod(x.Request.Method) {
		return nil
	}
	s.p.allow(x, o[0])
	if s.p.Exposed != "" {
		x.SetResponseHeader(hdrACEH, s.p.Exposed)
	}
	return nil
}

// allow sets the headers every allowed answer carries.
func (p *corsPolicy) allow(x *Exchange, origin string) {
	x.SetResponseHeader(hdrACAO, p.AllowOriginValue(origin))
	if p.Credentials {
		x.SetResponseHeader(hdrACAC, "true")
	}
}

// servePreflight answers a preflight: 204, with the allow headers only if
// the origin, the method and every requested header are allowed.
func (p *corsPolicy) servePreflight(w http.ResponseWriter, x *Exchange) error {
	h := x.Request.Header
	x.AddResponseHeader("Vary", preflightVary)
	o, m := h[hdrOrigin], h.Get(hdrRequestMethod)
	reqHeaders := h.Values("Access-Control-Request-Headers")
	var asked string
	switch len(reqHeaders) {
	case 0:
	case 1:
		asked = reqHeaders[0]
	default:
		asked = "," // two header lines: not what a browser sends, refused below
	}
	if len(o) == 1 && p.AllowOrigin(o[0]) && p.AllowMethod(m) && asked != "," && p.AllowHeaders(asked) {
		p.allow(x, o[0])
		x.SetResponseHeader("Access-Control-Allow-Methods", m)
		if asked != "" {
			x.SetResponseHeader("Access-Control-Allow-Headers", asked)
		}
		if p.MaxAge != "" {
			x.SetResponseHeader("Access-Control-Max-Age", p.MaxAge)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// refusePreflight answers a preflight that asks for a method this route
// does not serve: 204 without allow headers, never forwarded.
func refusePreflight(w http.ResponseWriter, x *Exchange) error {
	x.AddResponseHeader("Vary", preflightVary)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// preflightMethod returns the method a CORS preflight asks about, or ""
// if r is not one.
func preflightMethod(r *http.Request) string {
	if r.Method != http.MethodOptions || len(r.Header[hdrOrigin]) == 0 {
		return ""
	}
	if m := r.Header[hdrRequestMethod]; len(m) == 1 {
		return m[0]
	}
	return ""
}

// matchPreflight routes a CORS preflight as the method it asks about. If
// the route that would serve that method has a cors policy, the result is
// its preflight endpoint (its match.methods need not list OPTIONS);
// otherwise ok is false and the OPTIONS request is routed like any other
// (then see refusedPreflight). found is what the hygiene checks saw in the
// request; the route's opt-ins apply as they would to the actual request.
func (p *Plan) matchPreflight(r *http.Request, found finding) (res route.Result[*Route], ok bool) {
	if !p.anyCORS {
		return res, false
	}
	m := preflightMethod(r)
	if m == "" {
		return res, false
	}
	h := &p.hygiene
	found &^= foundExtensionMethod // that was about OPTIONS
	switch {
	case slices.Contains(h.allowed, m):
		res = p.table.Match(r.Host, r.URL.Path, m)
	case slices.Contains(h.routeMethods, m):
		res = p.table.MatchListed(r.Host, r.URL.Path, m)
		found |= foundExtensionMethod
	default:
		return res, false
	}
	if res.Status != route.Matched || res.Value.preflight == nil {
		return res, false
	}
	if found != 0 && h.routes[res.Index].admit(found, m) != nil {
		return res, false
	}
	res.Value = res.Value.preflight
	return res, true
}

// refusedPreflight: a preflight that matchPreflight did not take (its
// method is refused, or served by no route with cors) but that reached a
// route with cors as an OPTIONS request is answered by that route's
// refusal, so no preflight to a cors route is ever forwarded.
func refusedPreflight(r *http.Request, res route.Result[*Route]) route.Result[*Route] {
	if res.Value.refusedPreflight != nil && preflightMethod(r) != "" {
		res.Value = res.Value.refusedPreflight
	}
	return res
}
