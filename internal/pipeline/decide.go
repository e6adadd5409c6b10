package pipeline

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/framing"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/requestid"
)

// The decision API (decision_api, docs/forward-auth.md): another proxy
// (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy
// ext_authz) asks whether a request may pass, and the gateway decides
// exactly as the proxy path would, without proxying:
//
//	trusted caller? → original request from its headers → request hygiene → route match → stages → 200 + identity headers
//
// The original request is rebuilt from the caller's headers into an
// *http.Request of its own, and that request goes through the same
// p.route (hygiene and route match), the route's stages (authentication,
// authorization, rate limits and quotas, identity headers, with their
// audit events and metrics) and respond as ServeHTTP uses; the access log
// line and the observer's request describe the original request. Only
// the last step differs: instead of the upstream, the answer is 200 with
// the headers the gateway would have set on the upstream request, for
// the caller to copy onto its own.
//
// Nothing here runs on the proxy path: ServeHTTP is unchanged, and the
// gateway's listener hands a request to Decide only when IsDecision says
// it is one.

// Dialects: how a caller describes the original request.
type dialect uint8

const (
	// dialectForwarded: X-Forwarded-Method, -Uri, -Host, -Proto (Traefik,
	// Caddy).
	dialectForwarded dialect = iota + 1
	// dialectNginx: X-Original-Method and X-Original-URI, with
	// X-Forwarded-Host and -Proto (nginx auth_request, as
	// docs/forward-auth.md configures it).
	dialectNginx
	// dialectEnvoy: the check request's own method and path below the
	// decision path, its Host, and X-Forwarded-Proto (Envoy ext_authz
	// http_service with path_prefix).
	dialectEnvoy
)

// headerGatehouseStatus carries the real status of a refusal mapped to
// 403 for nginx (nginx_status_mapping).
const headerGatehouseStatus = "X-Gatehouse-Status"

// headerEnvoyRemove asks Envoy ext_authz to remove the listed headers
// from the request it forwards (an allowed answer only).
const headerEnvoyRemove = "X-Envoy-Auth-Headers-To-Remove"

// maxDecisionMethod bounds a forwarded method token.
const maxDecisionMethod = 32

// decisionAPI is the compiled decision_api.
type decisionAPI struct {
	path     string
	listener string
	// callers are the trusted callers; clients resolves the original
	// client's address from X-Forwarded-For, trusting both the callers
	// and forwarding.trusted_proxies.
	callers, clients *clientip.Resolver
	nginxMapping     bool
}

// Decision refusals: the caller, not the original request, is at fault.
var (
	problemCallerUntrusted = problem.Type{Slug: "decision-caller-untrusted", Title: "Not a trusted decision API caller", Status: http.StatusForbidden}
	problemDecisionRequest = problem.Type{Slug: "decision-request-invalid", Title: "The original request cannot be read", Status: http.StatusBadRequest}

	errCallerUntrusted = &RequestError{problemCallerUntrusted,
		"Only the proxies listed in decision_api.trusted_callers may ask for decisions."}
	errDecisionMissing = &RequestError{problemDecisionRequest,
		"The original method, URI, host and scheme must each be given exactly once: X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host and X-Forwarded-Proto (or X-Original-Method and X-Original-URI for nginx)."}
	errDecisionMixed = &RequestError{problemDecisionRequest,
		"Both X-Forwarded-Method/-Uri and X-Original-Method/-URI were sent; a caller uses one dialect."}
	errDecisionURI = &RequestError{problemDecisionRequest,
		"The original URI must be an absolute path (with an optional query) of printable ASCII."}
	errDecisionMethod = &RequestError{problemDecisionRequest,
		"The original method must be an HTTP method token."}
	errDecisionProto = &RequestError{problemDecisionRequest,
		"X-Forwarded-Proto must be http or https."}
)

// decisionKey marks the context of a rebuilt original request; its value
// is the original's scheme and host (for DPoP's htu, see origin).
type decisionKey struct{}

type decisionOrigin struct{ scheme, host string }

// compileDecision compiles decision_api; nil when it is absent.
func compileDecision(cfg *config.Config, file *config.File) (*decisionAPI, error) {
	dc := cfg.DecisionAPI
	if dc == nil {
		return nil, nil
	}
	callers, err := clientip.NewResolver(dc.TrustedCallers)
	if err != nil {
		return nil, file.Errorf("decision_api.trusted_callers", "%v", err)
	}
	clients, err := clientip.NewResolver(append(slices.Clone(cfg.Forwarding.TrustedProxies), dc.TrustedCallers...))
	if err != nil {
		return nil, file.Errorf("decision_api.trusted_callers", "%v", err)
	}
	path := dc.Path
	if path == "" {
		path = config.DefaultDecisionPath
	}
	return &decisionAPI{path: path, listener: dc.Listener, callers: callers, clients: clients, nginxMapping: dc.NginxStatusMapping}, nil
}

// IsDecision reports whether r, arriving on the named listener, is for
// the decision API: on its own listener every request is, otherwise a
// request for its path or below. One string comparison when the decision
// API is on; nothing when it is off.
func (p *Plan) IsDecision(r *http.Request, listener string) bool {
	d := p.decision
	if d == nil {
		return false
	}
	if d.listener != "" {
		return listener == d.listener
	}
	path := r.URL.Path
	return strings.HasPrefix(path, d.path) && (len(path) == len(d.path) || path[len(d.path)] == '/')
}

// isDecisionRequest reports whether r is an original request rebuilt by
// Decide.
func isDecisionRequest(r *http.Request) bool {
	_, ok := r.Context().Value(decisionKey{}).(*decisionOrigin)
	return ok
}

// origin is the scheme and host a client addressed r to (DPoP's htu): the
// original's for a decision, as the caller reported them; the resolver's
// otherwise.
func (p *Plan) origin(r *http.Request) (scheme, host string) {
	if o, ok := r.Context().Value(decisionKey{}).(*decisionOrigin); ok {
		return o.scheme, o.host
	}
	return p.resolver.Origin(r)
}

// Decide answers one decision API request cr on this plan (one for which
// IsDecision holds). listener names the front door for the access log.
func (p *Plan) Decide(w http.ResponseWriter, cr *http.Request, listener string) {
	d := p.decision
	if d == nil {
		// No decision API (a reload turned it off between IsDecision and
		// here cannot happen, as both read one plan): an ordinary request.
		p.ServeHTTP(w, cr, listener)
		return
	}
	st := statePool.Get().(*state)
	defer func() { *st = state{}; statePool.Put(st) }()

	rid := requestid.FromIncoming(cr.Header.Get(requestid.Header))
	cr.Header[requestid.Header] = []string{rid}
	w.Header()[requestid.Header] = []string{rid}

	nw := &nginxWriter{ResponseWriter: w}
	st.rec = recorder{ResponseWriter: nw, x: &st.x}
	rec := &st.rec
	e := &st.entry
	*e = accesslog.Entry{
		Start: time.Now(), RequestID: rid, Listener: listener, Method: cr.Method, Host: cr.Host,
		Path: cr.URL.Path, RawQuery: cr.URL.RawQuery, Proto: cr.Proto, ClientIP: clientip.Peer(cr.RemoteAddr),
	}
	r := cr // what the access log, observer and trace describe
	defer func() { p.observe(st, r) }()
	defer func() { p.finish(rec, r, e) }()

	if !d.callers.Trusted(clientip.Peer(cr.RemoteAddr)) {
		// Nothing the caller sent is read: its forwarded headers are
		// claims of a stranger.
		p.respond(rec, cr, e, errCallerUntrusted)
		return
	}
	if err := framing.Check(cr); err != nil {
		p.respond(rec, cr, e, err)
		return
	}
	if framing.CloseAfter(cr) {
		w.Header()["Connection"] = []string{"close"}
	}
	if d.listener != "" && !strings.HasPrefix(cr.URL.Path, d.path) {
		p.respond(rec, cr, e, errRouteNotFound)
		return
	}
	orig, dl, err := d.original(cr)
	if err != nil {
		p.respond(rec, cr, e, err)
		return
	}
	r = orig
	nw.nginx = d.nginxMapping && dl == dialectNginx
	e.Method, e.Host, e.Path, e.RawQuery = r.Method, r.Host, r.URL.Path, r.URL.RawQuery
	e.ClientIP = d.clients.ClientIP(r)
	if p.tracer != nil {
		r = p.startTrace(st, r)
	}

	stripIdentityCopies(r, p.stripHeaders)
	res, err := p.route(r, false)
	if err != nil {
		p.respond(rec, r, e, err)
		return
	}
	x := p.runStages(st, w, r, rid, res)
	if x == nil {
		return
	}
	p.allow(rec.Header(), x, cr, dl)
	rec.WriteHeader(http.StatusOK)
}

// allow writes the headers of an allowed decision into h: every header
// the gateway would have set on the upstream request (the request id,
// identity headers, an identity assertion), for the caller to copy onto
// its own. For Envoy, which removes the headers an answer lists in
// x-envoy-auth-headers-to-remove from the request it forwards, that list
// holds the identity header names left unset (a client's copy must not
// reach the upstream) and the credentials the route would not have
// passed on (Authorization, the API-key header), as the proxy path
// removes them.
func (p *Plan) allow(h http.Header, x *Exchange, cr *http.Request, dl dialect) {
	for _, u := range x.upstream {
		h[u.Name] = []string{u.Value}
	}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{"0"}
	if dl != dialectEnvoy {
		return
	}
	var remove []string
	for _, n := range p.stripHeaders {
		if _, set := h[n]; !set {
			remove = append(remove, strings.ToLower(n))
		}
	}
	for _, n := range append([]string{"Authorization"}, p.credHeaders...) {
		_, sent := cr.Header[n]
		if _, kept := x.Request.Header[n]; sent && !kept {
			remove = append(remove, strings.ToLower(n))
		}
	}
	if len(remove) > 0 {
		slices.Sort(remove)
		h[headerEnvoyRemove] = []string{strings.Join(slices.Compact(remove), ", ")}
	}
}

// original rebuilds the request that cr asks about, in the dialect its
// path and headers show. The result is a new request: cr's headers
// (cloned; the dialect's own removed), no body, the original method,
// target and host, and cr's connection (RemoteAddr, TLS), so that the
// client address is resolved through the caller.
func (d *decisionAPI) original(cr *http.Request) (*http.Request, dialect, error) {
	h := cr.Header
	var (
		dl                   dialect
		method, target, host string
		ok                   bool
	)
	switch {
	case cr.URL.Path == d.path:
		fwd := len(h["X-Forwarded-Method"]) > 0 || len(h["X-Forwarded-Uri"]) > 0
		ngx := len(h["X-Original-Method"]) > 0 || len(h["X-Original-Uri"]) > 0
		switch {
		case fwd && ngx:
			return nil, 0, errDecisionMixed
		case ngx:
			dl = dialectNginx
			method, ok = single(h, "X-Original-Method")
			if ok {
				target, ok = single(h, "X-Original-Uri")
			}
		default:
			dl = dialectForwarded
			method, ok = single(h, "X-Forwarded-Method")
			if ok {
				target, ok = single(h, "X-Forwarded-Uri")
			}
		}
		if ok {
			host, ok = single(h, "X-Forwarded-Host")
		}
		if !ok {
			return nil, 0, errDecisionMissing
		}
	default:
		// Envoy: the check request is the original, its path prefixed
		// with the decision path. RequestURI is the target as sent, so
		// the original's escaping is kept.
		dl, method, host = dialectEnvoy, cr.Method, cr.Host
		prefix := d.path + "/"
		if !strings.HasPrefix(cr.RequestURI, prefix) {
			return nil, 0, errRouteNotFound
		}
		target = cr.RequestURI[len(d.path):]
	}
	proto, ok := single(h, "X-Forwarded-Proto")
	if !ok {
		return nil, 0, errDecisionMissing
	}
	switch {
	case strings.EqualFold(proto, "https"):
		proto = "https"
	case strings.EqualFold(proto, "http"):
		proto = "http"
	default:
		return nil, 0, errDecisionProto
	}
	if !methodToken(method) {
		return nil, 0, errDecisionMethod
	}
	u, err := parseOriginalTarget(target)
	if err != nil {
		return nil, 0, err
	}

	o := &decisionOrigin{scheme: proto, host: host}
	r := cr.Clone(context.WithValue(cr.Context(), decisionKey{}, o))
	r.Method, r.URL, r.RequestURI, r.Host = method, u, target, host
	r.Body, r.ContentLength, r.TransferEncoding = http.NoBody, 0, nil
	for _, n := range [...]string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Original-Method", "X-Original-Uri", "Content-Length"} {
		delete(r.Header, n)
	}
	// The Host header as HTTP/2 would carry it: net/http has moved it
	// out of cr's map, and normalizeHost must not see a second one.
	delete(r.Header, "Host")
	return r, dl, nil
}

// single is the one value of header name in h; ok is false when it is
// missing, empty or repeated (a caller sets it once; two values mean a
// client's copy rode along).
func single(h http.Header, name string) (string, bool) {
	v := h[name]
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// methodToken: an RFC 9110 token of at most 32 bytes (request hygiene's
// allow-list decides which methods pass).
func methodToken(m string) bool {
	if m == "" || len(m) > maxDecisionMethod {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// parseOriginalTarget parses an original request target as net/http parses a
// request line's: an absolute path with an optional query, printable
// ASCII only (no space, control character, or byte of 0x80 and above,
// which a request line could not carry either). An absolute URL, "*", an
// authority or a fragment-only target is refused; what the path holds
// ("..", encoded slashes) is request hygiene's to judge, as on the proxy
// path.
func parseOriginalTarget(t string) (*url.URL, error) {
	if t == "" || t[0] != '/' {
		return nil, errDecisionURI
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= 0x20 || c >= 0x7f {
			return nil, errDecisionURI
		}
	}
	u, err := url.ParseRequestURI(t)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return nil, errDecisionURI
	}
	return u, nil
}

// nginxWriter maps, when nginx is set, a refusal nginx auth_request
// cannot pass on (anything but 2xx, 401 and 403, which it turns into
// 500) to 403, with the real status in X-Gatehouse-Status.
type nginxWriter struct {
	http.ResponseWriter
	nginx bool
}

func (w *nginxWriter) WriteHeader(code int) {
	if w.nginx && code >= 300 && code != http.StatusUnauthorized && code != http.StatusForbidden {
		w.Header()[headerGatehouseStatus] = []string{strconv.Itoa(code)}
		code = http.StatusForbidden
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *nginxWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// buildDecisionOnlyRoute compiles a decision_only route: no upstream
// (Proxy is nil); route() answers 404 to it on the proxy path before its
// stages run, so nothing ever forwards to it, and serve stays nil so an
// allowed decision is a 200 like any other route's.
func buildDecisionOnlyRoute(rc config.Route) *Route {
	return &Route{
		Name:         rc.Name,
		MaxBodyBytes: int64(rc.MaxBodyBytes),
		public:       rc.Authenticate == nil,
		decisionOnly: true,
	}
}
