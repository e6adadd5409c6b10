package pipeline

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/route"
)

// Gateway-owned endpoints: requests the gateway answers itself instead of
// proxying. A Route whose serve is set is one; after its stages ServeHTTP
// calls serveEndpoint instead of the proxy. Three kinds exist:
//
//   - routes of the configuration served by the gateway (direct_response,
//     direct.go), with their own stages like any route;
//   - endpoints that a component contributes (endpoint.Provider, asked of
//     every authenticator of every route, e.g. a session method's
//     /callback and /logout) and the RFC 9728 metadata document of a
//     route with protected_resource (metadata.go), mounted by
//     mountEndpoints next to the configured routes, on the hosts of the
//     route that brought them in; and the public endpoints of process
//     components given in Options.Endpoints and of the configuration's
//     own (shared_signals, leak_reports, the identity assertion's JWK Set:
//     p.ownEndpoints), on every host;
//   - CORS preflight answers (cors.go), reached by their own match.
//
// All of them write through the pipeline's recorder, so the access log
// (with no upstream), audit events, the observer and metrics (under a
// route label from the configuration), tracing and the response phase
// apply exactly as for proxied requests, and an error they return becomes
// the answer in respond.

// serveFunc answers a request to a gateway-owned endpoint; an error
// returned before anything was written is answered by respond.
type serveFunc func(w http.ResponseWriter, x *Exchange) error

// serveEndpoint runs rt.serve for x, after the route's body limit.
func (p *Plan) serveEndpoint(rec *recorder, w http.ResponseWriter, x *Exchange) {
	r, rt := x.Request, x.Route
	if rt.MaxBodyBytes > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.MaxBodyBytes {
			p.respond(rec, r, x.Log, &http.MaxBytesError{Limit: rt.MaxBodyBytes})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.MaxBodyBytes)
	}
	if err := rt.serve(rec, x); err != nil {
		p.respond(rec, r, x.Log, err)
		return
	}
	if !rec.started() {
		// Nothing written: the 200 that net/http would send goes through
		// the recorder, so the response phase still applies.
		rec.WriteHeader(http.StatusOK)
	}
}

// handlerServe adapts an endpoint.Handler to a route's serve.
func handlerServe(h endpoint.Handler) serveFunc {
	return func(w http.ResponseWriter, x *Exchange) error {
		return h.ServeEndpoint(w, x.Request, x.Identity)
	}
}

// mounted is one endpoint to mount, with the route that brought it in.
type mounted struct {
	ep endpoint.Endpoint
	// owner is the index of the configured route whose authenticator
	// (or protected_resource block) contributed it; gatewayOwner for a
	// provider of Options.Endpoints.
	owner int
	// source identifies the contributor, so the same provider bringing
	// the same endpoint in through several routes mounts it once (nil:
	// never the same as another).
	source any
}

// gatewayOwner is the owner of endpoints that Options.Endpoints
// contribute: the gateway itself, on every host.
const gatewayOwner = -1

// gatewayEndpointPrefix names the routes of Options.Endpoints
// ("gateway:jwks").
const gatewayEndpointPrefix = "gateway"

// endpointNameSep joins the owner route's name and the endpoint's: ':'
// cannot appear in a configured route name, so the two never clash.
const endpointNameSep = ":"

// mountEndpoints compiles the route table: the configured routes
// (p.entries, in configuration order, index for index with p.routes and
// p.hygiene.routes), then every gateway-owned endpoint that a route's
// authenticators or protected_resource block contribute. An endpoint whose
// path a configured route matches exactly, or that another contributor
// also serves, is a configuration error. opts supplies the observer.
func (p *Plan) mountEndpoints(cfg *config.Config, file *config.File, opts Options) error {
	n := len(p.entries)
	p.routes, p.hygiene.routes = p.routes[:n], p.hygiene.routes[:n]
	var all []mounted
	for i, rt := range p.routes {
		for _, prov := range endpointProviders(rt) {
			src := any(prov)
			if !reflect.TypeOf(prov).Comparable() {
				src = nil
			}
			for _, ep := range prov.Endpoints() {
				all = append(all, mounted{ep: ep, owner: i, source: src})
			}
		}
	}
	meta, err := p.metadataEndpoints(cfg, file)
	if err != nil {
		return err
	}
	all = append(all, meta...)
	for _, prov := range append(slices.Clone(opts.Endpoints), p.ownEndpoints...) {
		for _, ep := range prov.Endpoints() {
			all = append(all, mounted{ep: ep, owner: gatewayOwner})
		}
	}

	entries := slices.Clone(p.entries)
	var done []mounted
	for _, m := range all {
		at, hosts, owner := "routes", []string(nil), (*Route)(nil)
		if m.owner != gatewayOwner {
			at, hosts, owner = fmt.Sprintf("routes[%d]", m.owner), cfg.Routes[m.owner].Match.Hosts, p.routes[m.owner]
		}
		if err := p.checkEndpoint(m.ep); err != nil {
			return file.Errorf(at, "endpoint %q: %v", m.ep.Path, err)
		}
		dup, err := endpointConflict(m, hosts, done, cfg)
		if err != nil {
			return file.Errorf(at, "endpoint %s: %v", m.ep.Path, err)
		}
		if dup {
			continue
		}
		if j, ok := routeClaims(cfg, m.ep, hosts); ok {
			return file.Errorf(at, "endpoint %s of %s is also matched by routes[%d] (%s): two owners of one path", m.ep.Path, ownerName(m.owner), j, cfg.Routes[j].Name)
		}
		done = append(done, m)
		rt := &Route{
			Name:         gatewayEndpointPrefix + endpointNameSep + m.ep.Name,
			MaxBodyBytes: config.DefaultMaxBodyBytes,
			public:       m.ep.Public,
			serve:        handlerServe(m.ep.Handler),
		}
		if owner != nil {
			rt.Name, rt.MaxBodyBytes = owner.Name+endpointNameSep+m.ep.Name, owner.MaxBodyBytes
		}
		if !m.ep.Public {
			if owner == nil || owner.public {
				return file.Errorf(at, "endpoint %s needs authentication, and %s authenticates nobody", m.ep.Path, ownerName(m.owner))
			}
			rt.Stages = authenticationOnly(owner.Stages)
		}
		rt.responders = responders(rt.Stages)
		if opts.Observer != nil {
			rt.observer = opts.Observer.Route(rt.Name, p.methods)
		}
		p.routes = append(p.routes, rt)
		p.hygiene.routes = append(p.hygiene.routes, routeHygiene{methods: slices.Clone(m.ep.Methods)})
		entries = append(entries, route.Entry[*Route]{
			Spec:  route.Spec{Hosts: hosts, Path: m.ep.Path, Methods: m.ep.Methods},
			Value: rt,
		})
	}
	p.table, err = route.NewTable(entries)
	if err != nil {
		return file.Errorf("routes", "%v", err)
	}
	for k := n; k < len(entries); k++ {
		if j, ok := p.shadowed(entries[k], k); ok {
			m, at := done[k-n], "routes"
			if m.owner != gatewayOwner {
				at = fmt.Sprintf("routes[%d]", m.owner)
			}
			return file.Errorf(at, "endpoint %s of %s is taken by routes[%d] (%s), which ranks first on its hosts: two owners of one path",
				m.ep.Path, ownerName(m.owner), j, p.routes[j].Name)
		}
	}
	return nil
}

// shadowed reports the route that a request for endpoint entry k (on its
// hosts: each exact one, a name under each wildcard, or, for any host, a
// name no route lists) would reach instead, if any: a route with a more
// specific host ranks before any path.
func (p *Plan) shadowed(e route.Entry[*Route], k int) (int, bool) {
	hosts := []string{"gatehouse.invalid"}
	if len(e.Spec.Hosts) > 0 {
		hosts = hosts[:0]
		for _, h := range e.Spec.Hosts {
			hosts = append(hosts, strings.Replace(strings.ToLower(h), "*", "gatehouse-probe", 1))
		}
	}
	for _, h := range hosts {
		for _, m := range e.Spec.Methods {
			res := p.table.Match(h, e.Spec.Path, m)
			if res.Status == route.Matched && res.Index != k {
				return res.Index, true
			}
		}
	}
	return 0, false
}

// endpointProviders returns the authenticators of rt that contribute
// endpoints, in chain order.
func endpointProviders(rt *Route) []endpoint.Provider {
	var out []endpoint.Provider
	for _, s := range rt.Stages {
		if t, ok := s.(*tracedStage); ok {
			s = t.Stage
		}
		as, ok := s.(*authenticateStage)
		if !ok || as.chain == nil {
			continue
		}
		for _, a := range as.chain.Authenticators {
			if prov, ok := a.(endpoint.Provider); ok {
				out = append(out, prov)
			}
		}
	}
	return out
}

// authenticationOnly returns the stages of a route that an authenticated
// endpoint of it runs: its authentication (not its policy, which is about
// its own upstream's paths, nor identity headers, which have no upstream).
func authenticationOnly(stages []Stage) []Stage {
	var out []Stage
	for _, s := range stages {
		if s.Name() == "authenticate" {
			out = append(out, s)
		}
	}
	return out
}

// checkEndpoint refuses an endpoint the route table could not serve as
// described.
func (p *Plan) checkEndpoint(ep endpoint.Endpoint) error {
	switch {
	case ep.Handler == nil:
		return fmt.Errorf("no handler")
	case ep.Name == "" || strings.ContainsAny(ep.Name, " \t\r\n"):
		return fmt.Errorf("name %q: a word is required", ep.Name)
	case len(ep.Methods) == 0:
		return fmt.Errorf("no methods")
	case !strings.HasPrefix(ep.Path, "/") || strings.ContainsAny(ep.Path, "{}?#") || !cleanPath(ep.Path):
		return fmt.Errorf("the path must be an exact, clean absolute path")
	}
	if _, err := route.ParsePath(ep.Path); err != nil {
		return err
	}
	for _, m := range ep.Methods {
		if !slices.Contains(p.hygiene.allowed, m) {
			return fmt.Errorf("method %s is not in request_hygiene.allowed_methods", m)
		}
	}
	return nil
}

// endpointConflict compares m with the endpoints already mounted: dup is
// true when the same source already mounted the same path on the same
// hosts; an error when another one serves the path on a host both take.
func endpointConflict(m mounted, hosts []string, done []mounted, cfg *config.Config) (dup bool, err error) {
	for _, d := range done {
		if d.ep.Path != m.ep.Path {
			continue
		}
		var dh []string
		if d.owner != gatewayOwner {
			dh = cfg.Routes[d.owner].Match.Hosts
		}
		if !hostsOverlap(hosts, dh) {
			continue
		}
		if m.source != nil && d.source == m.source && slices.Equal(sortedLower(hosts), sortedLower(dh)) {
			return true, nil
		}
		if d.owner == gatewayOwner {
			return false, fmt.Errorf("also served by the gateway itself: two owners of one path")
		}
		return false, fmt.Errorf("also served for routes[%d] (%s): two owners of one path", d.owner, cfg.Routes[d.owner].Name)
	}
	return false, nil
}

// ownerName names an endpoint's owner in errors.
func ownerName(owner int) string {
	if owner == gatewayOwner {
		return "the gateway"
	}
	return "this route"
}

// hostsOverlap reports whether two host lists (empty: any host) can both
// take one request. Wildcards are compared by their suffix, loosely: a
// false overlap only refuses a configuration, it never serves a request
// wrongly.
func hostsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			x, y := strings.ToLower(x), strings.ToLower(y)
			if x == y || strings.HasPrefix(x, "*.") && strings.HasSuffix(y, x[1:]) || strings.HasPrefix(y, "*.") && strings.HasSuffix(x, y[1:]) {
				return true
			}
		}
	}
	return false
}

func sortedLower(hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = strings.ToLower(h)
	}
	slices.Sort(out)
	return out
}

// routeClaims reports the first configured route that would take a
// request for ep's path on one of hosts itself: an exact path (a pattern
// included) that matches it, or a prefix equal to it. A prefix route above
// the path (a catch-all "/") is refined by the endpoint, as by any more
// specific route, and is no conflict.
func routeClaims(cfg *config.Config, ep endpoint.Endpoint, hosts []string) (int, bool) {
	for j, rc := range cfg.Routes {
		if !hostsOverlap(hosts, rc.Match.Hosts) {
			continue
		}
		pattern := rc.Match.Path
		if pattern == "" {
			pattern = rc.Match.PathPrefix
		}
		t, err := route.NewTable([]route.Entry[int]{{Spec: route.Spec{Path: pattern}, Value: j}})
		if err != nil {
			continue // validation reports it
		}
		if t.Match("", ep.Path, http.MethodGet).Status == route.Matched {
			return j, true
		}
	}
	return 0, false
}
