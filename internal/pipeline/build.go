package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/route"
	"github.com/gatehouse/gatehouse/internal/tlsclient"
)

// Options are the process-wide things a plan is built with.
type Options struct {
	// Log is the operational logger.
	Log *slog.Logger
	// Stdout and Stderr are where "stdout" and "stderr" outputs go
	// (injectable for tests). Default os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// HTTPClient fetches identity provider keys, for every provider:
	// identity_providers[].tls is then checked (its files read) but not
	// applied (tests, offline tools). Default: each key set's own client,
	// with its provider's tls.
	HTTPClient *http.Client
	// UserAgent is sent with discovery and JWKS requests, e.g.
	// keyset.UserAgent(version). Default: keyset's, from the build info.
	UserAgent string
	// Now is the clock for token validation. Default time.Now.
	Now func() time.Time
	// Resources holds what plans share across reloads: identity providers'
	// key sets, verified-token caches, upstream transports, the API-key
	// runtime and its store (resources.go). The plan holds what it uses
	// until Close. One per gateway process; default: a registry of the
	// plan's own (nothing shared), as offline tools want.
	Resources *resource.Registry
	// APIKeys, if set, is the API-key runtime every api_key route uses,
	// owned by the caller (offline tools open one read-only, or none).
	// Default nil: the plan acquires one from Resources when a route
	// accepts api_key, unless Validating.
	APIKeys *APIKeys
	// Observer, if set, sees every request of the plan (observe.go), and
	// the key fetches and cache lookups behind its credentials. It must
	// outlive the plan; the gateway passes the same one to every build.
	Observer Observer
	// Tracer, if set, records a span per request with child spans for
	// authentication, authorization and the upstream exchange (trace.go).
	// Like Observer, it outlives the plan. nil: no tracing work at all.
	Tracer trace.Tracer
	// Endpoints are process components that serve public endpoints of
	// their own on every host (the gateway's JWKS, say), mounted like
	// those of authenticators (endpoint.go), under the route name
	// "gateway:<endpoint name>". A path a route also claims is a
	// configuration error.
	Endpoints []endpoint.Provider
	// Validating builds a plan only to check a configuration (gatehouse
	// validate): stages that need process resources (the API-key store)
	// are checked for configuration errors but not connected.
	Validating bool
}

// Build compiles a validated configuration into a Plan. Everything
// expensive happens here, once: URLs are parsed, transports built, the
// route table sorted, files opened.
func Build(cfg *config.Config, file *config.File, opts Options) (plan *Plan, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	p := &Plan{log: opts.Log, validating: opts.Validating}
	reg := opts.Resources
	if reg == nil {
		reg = resource.New()
	}
	p.scope = reg.Scope()
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	p.resolver, err = clientip.NewResolver(cfg.Forwarding.TrustedProxies)
	if err != nil {
		return nil, file.Errorf("forwarding.trusted_proxies", "%v", err)
	}
	if p.decision, err = compileDecision(cfg, file); err != nil { // decision_api (decide.go)
		return nil, err
	}

	p.access = accesslog.Discard()
	if !cfg.AccessLog.Disabled {
		w, closer, err := openOutput(cfg.AccessLog.Output, opts, 0o640)
		if err != nil {
			return nil, file.Errorf("access_log.output", "cannot open: %v", err)
		}
		// Buffered, so a request never waits for the write; Close (on
		// shutdown and when a reload retires the plan) writes the rest.
		access := accesslog.NewBuffered(w, closer, redactedParams(cfg))
		p.access = access
		p.closers = append(p.closers, func() { _ = access.Close() })
	}

	if err := p.buildAudit(cfg, file, opts); err != nil {
		return nil, err
	}
	verifier, err := p.buildProviders(cfg, file, opts)
	if err != nil {
		return nil, err
	}
	p.stripHeaders = identityHeaderNames(cfg)
	p.hygiene = compileHygiene(cfg)
	if opts.Observer != nil || opts.Tracer != nil {
		p.methods = p.hygiene.methodClasses()
	}
	p.tracer = opts.Tracer
	if opts.Observer != nil {
		p.unmatched = opts.Observer.Route(UnmatchedRoute, p.methods)
	}
	keys := opts.APIKeys
	if keys == nil && !opts.Validating && (acceptsAPIKeys(cfg) || cfg.LeakReports.Path != "" || hasQuotas(cfg) && cfg.RateLimitStore() != "redis") {
		var reused bool
		if keys, reused, err = p.acquireAPIKeys(reg, cfg.APIKeys, opts); err != nil {
			return nil, file.Errorf("api_keys.store", "%v", err)
		}
		if reused {
			static := cfg.APIKeys.Static
			p.staticKeys = &static // applied by Activate
		}
	}
	p.apiKeys = keys
	if cfg.Revocation.Enabled && !opts.Validating {
		if p.revocations, err = p.acquireRevocations(reg, cfg, opts); err != nil {
			return nil, file.Errorf("revocation.enabled", "%v", err)
		}
		p.readies = append(p.readies, p.revocations.Replica.Ready)
	}
	if err := p.buildSecurityEndpoints(cfg, file, opts); err != nil { // shared_signals, leak_reports (signals.go)
		return nil, err
	}
	if err := p.buildAssertion(cfg, file, opts, reg); err != nil { // identity_assertion (assertion.go)
		return nil, err
	}
	if err := p.buildRateLimits(cfg, file); err != nil {
		return nil, err
	}
	policies, err := compileNamedPolicies(cfg, file)
	if err != nil {
		return nil, err
	}

	entries := make([]route.Entry[*Route], 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		rt := buildServedRoute(rc) // direct_response (direct.go), decision_only (decide.go); nil: proxied
		if rt == nil {
			var upstreamTLS tlsclient.Settings
			if t := rc.Upstream.TLS; t != nil {
				// Read at every build: the contents key the transport.
				if upstreamTLS, err = p.loadTLS(t.Files(), fmt.Sprintf("routes[%d].upstream.tls", i), file, opts.Now); err != nil {
					return nil, err
				}
			}
			if rt, err = p.buildRoute(rc, upstreamTLS); err != nil {
				return nil, file.Errorf(fmt.Sprintf("routes[%d]", i), "%v", err)
			}
		}
		pol, err := routePolicy(i, rc, policies, file)
		if err != nil {
			return nil, err
		}
		if rt.Stages, err = p.buildStages(rc, cfg, verifier, opts, pol); err != nil {
			return nil, file.Errorf(fmt.Sprintf("routes[%d].authenticate", i), "%v", err)
		}
		if rc.MaxInFlight > 0 {
			// Kept across reloads, so requests in flight when a reload
			// lands still count.
			rt.inFlight, _, err = resource.Get(p.scope, resource.Key("ratelimit.inflight", [2]any{rc.Name, rc.MaxInFlight}),
				func() (*ratelimit.Concurrency, func(), error) {
					return ratelimit.NewConcurrency(rc.MaxInFlight), func() {}, nil
				})
			if err != nil {
				return nil, file.Errorf(fmt.Sprintf("routes[%d].max_in_flight", i), "%v", err)
			}
		}
		if opts.Observer != nil {
			rt.observer = opts.Observer.Route(rt.Name, p.methods)
		}
		if err := buildCORS(rt, rc); err != nil {
			return nil, file.Errorf(fmt.Sprintf("routes[%d].cors", i), "%v", err)
		}
		p.anyCORS = p.anyCORS || rt.cors != nil
		if opts.Tracer != nil {
			rt.Stages = tracedStages(rt.Stages, opts.Tracer)
		}
		rt.responders = responders(rt.Stages)
		p.routes = append(p.routes, rt)
		spec := route.Spec{Hosts: rc.Match.Hosts, Path: rc.Match.Path, Methods: rc.Match.Methods}
		if rc.Match.PathPrefix != "" {
			spec.Path, spec.Prefix = rc.Match.PathPrefix, true
		}
		entries = append(entries, route.Entry[*Route]{Spec: spec, Value: rt})
	}
	p.entries = entries
	if err := p.mountEndpoints(cfg, file, opts); err != nil { // the route table, with gateway-owned endpoints
		return nil, err
	}
	if p.aliases, err = compileAliases(cfg); err != nil {
		return nil, file.Errorf("routes", "%v", err)
	}
	return p, nil
}

func (p *Plan) buildRoute(rc config.Route, upstreamTLS tlsclient.Settings) (*Route, error) {
	targets := make([]*url.URL, 0, len(rc.Upstream.Targets))
	for _, t := range rc.Upstream.Targets {
		u, err := url.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", t, err)
		}
		targets = append(targets, u)
	}
	ts := proxy.TransportSettings{
		DialTimeout:           rc.Upstream.Timeouts.Dial.Std(),
		ResponseHeaderTimeout: rc.Upstream.Timeouts.ResponseHeader.Std(),
		TLS:                   upstreamTLS,
	}
	upstream, err := p.transport(ts)
	if err != nil {
		return nil, err
	}
	px, err := proxy.New(proxy.Config{
		Upstream:              upstream,
		Targets:               targets,
		StripPrefix:           rc.Upstream.StripPrefix,
		AddPrefix:             rc.Upstream.AddPrefix,
		PreserveHost:          rc.Upstream.PreserveHost,
		WebSocket:             rc.WebSocket,
		DialTimeout:           rc.Upstream.Timeouts.Dial.Std(),
		ResponseHeaderTimeout: rc.Upstream.Timeouts.ResponseHeader.Std(),
		RequestTimeout:        rc.Upstream.Timeouts.Request.Std(),
		Resolver:              p.resolver,
	})
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, px.Close)
	return &Route{
		Name:         rc.Name,
		Proxy:        px,
		MaxBodyBytes: int64(rc.MaxBodyBytes),
		Deadline:     rc.Upstream.Timeouts.Request.Std(),
		public:       rc.Authenticate == nil,
	}, nil
}

// loadTLS reads the files of an outbound TLS block (routes[].upstream.tls,
// identity_providers[].tls) at path, and reports a failure at the key
// that caused it. A client certificate outside its validity period at
// now loads, with a warning: the server will refuse it, but failing the
// reload would not make it any better.
func (p *Plan) loadTLS(files tlsclient.Files, path string, file *config.File, now func() time.Time) (tlsclient.Settings, error) {
	s, err := tlsclient.Load(files)
	if err != nil {
		var fe *tlsclient.FileError
		if errors.As(err, &fe) {
			return s, file.Errorf(path+"."+fe.Key, "%v", fe.Err)
		}
		return s, file.Errorf(path, "%v", err)
	}
	if leaf := s.ClientCertificate(); leaf != nil {
		if now == nil {
			now = time.Now
		}
		if t := now(); t.Before(leaf.NotBefore) || t.After(leaf.NotAfter) {
			p.log.Warn("pipeline: the client certificate is not valid now; servers will refuse it",
				"key", path+".cert_file", "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
		}
	}
	return s, nil
}

// redactedParams adds every route's API-key query parameter to the
// configured list: a key sent in a URL must never reach the access log.
func redactedParams(cfg *config.Config) []string {
	out := slices.Clone(cfg.AccessLog.RedactQueryParams)
	for i := range cfg.Routes {
		if q := credentialQueries(&cfg.Routes[i]); len(q) > 0 {
			out = append(out, q...)
		}
	}
	return out
}

// openOutput resolves a log destination: "stdout", "stderr" or a file
// path opened for appending (the closer is nil for the standard streams).
func openOutput(name string, opts Options, perm os.FileMode) (io.Writer, io.Closer, error) {
	switch name {
	case "stdout":
		return opts.Stdout, nil, nil
	case "stderr":
		return opts.Stderr, nil, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// Ready reports whether every identity source of the plan is usable; the
// admin listener's /readyz answers 503 until it is. A plan without identity
// sources is ready as soon as it is built.
func (p *Plan) Ready() error {
	for _, ready := range p.readies {
		if err := ready(); err != nil {
			return err
		}
	}
	return nil
}

// Routes returns the number of routes, for status pages.
func (p *Plan) Routes() int { return len(p.routes) }

// Close releases what the plan holds (log files, its hold on shared
// resources: a resource no other plan holds is closed, idle upstream
// connections included). Call it once no request uses the plan any more.
func (p *Plan) Close() {
	for _, c := range p.closers {
		c()
	}
	p.closers = nil
	if p.scope != nil {
		p.scope.Close()
	}
}

// acceptsAPIKeys reports whether a route accepts api_key.
func acceptsAPIKeys(cfg *config.Config) bool {
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.Authenticate == nil {
			continue
		}
		if slices.Contains(r.Authenticate.Methods, "api_key") {
			return true
		}
		// A method that keeps its records in the key store (basic's
		// users_store) needs it open too.
		for _, m := range r.Authenticate.Methods {
			if method, ok := registry.Lookup(identity.Method(m)); ok && method.UsesKeyStore != nil && method.UsesKeyStore(r) {
				return true
			}
		}
	}
	return false
}
