package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/tlsclient"
)

// providerHealth is an identity provider's key set, as the admin listener
// shows it and a reload refreshes it.
type providerHealth struct {
	name   string
	set    *keyset.Set
	reused bool // taken over from an earlier plan: RefreshKeys refetches it
}

// buildAudit opens the audit sink.
func (p *Plan) buildAudit(cfg *config.Config, file *config.File, opts Options) error {
	if cfg.Audit.Disabled {
		p.audit = audit.Discard{}
		return nil
	}
	// Audit trails may name people: readable by the gateway's user only.
	w, closer, err := openOutput(cfg.Audit.Output, opts, 0o600)
	if err != nil {
		return file.Errorf("audit.output", "cannot open: %v", err)
	}
	aw := audit.NewWriter(w, closer)
	p.audit = aw
	p.closers = append(p.closers, func() { _ = aw.Close() })
	return nil
}

// buildProviders starts one key set per identity provider and compiles the
// JWT verifier shared by every route.
func (p *Plan) buildProviders(cfg *config.Config, file *config.File, opts Options) (*jwt.Verifier, error) {
	if len(cfg.IdentityProviders) == 0 {
		return nil, nil
	}
	providers := make([]jwt.Provider, 0, len(cfg.IdentityProviders))
	replay, err := p.dpopReplayCache(cfg, opts)
	if err != nil {
		return nil, file.Errorf("dpop.replay_cache", "%v", err)
	}
	for i, pc := range cfg.IdentityProviders {
		path := fmt.Sprintf("identity_providers[%d]", i)
		kc := keyset.Config{
			Name:               pc.Name,
			Issuer:             pc.Issuer,
			JWKSURI:            pc.JWKSURI,
			Discovery:          pc.JWKSURI == "" && pc.StaticKeys == nil,
			HTTPClient:         opts.HTTPClient,
			UserAgent:          opts.UserAgent,
			FetchTimeout:       pc.Keys.FetchTimeout.Std(),
			RefreshInterval:    pc.Keys.RefreshInterval.Std(),
			MinRefreshInterval: pc.Keys.MinRefreshInterval.Std(),
			MaxRefreshInterval: pc.Keys.MaxRefreshInterval.Std(),
			UnknownKIDInterval: pc.Keys.UnknownKIDInterval.Std(),
			MaxStale:           pc.Keys.MaxStale.Std(),
			Log:                p.log,
		}
		if o := opts.Observer; o != nil {
			name := pc.Name
			kc.OnFetch = func(err error) { o.KeyFetch(name, err) }
		}
		var providerTLS tlsclient.Settings
		if t := pc.TLS; t != nil {
			var err error
			// Read at every build; the contents key the key set, so a
			// rotated CA or certificate gets a fresh set (and client).
			if providerTLS, err = p.loadTLS(t.Files(), path+".tls", file, opts.Now); err != nil {
				return nil, err
			}
			if kc.TLS, err = providerTLS.Config(); err != nil {
				return nil, file.Errorf(path+".tls", "%v", err)
			}
		}
		if pc.Keys.NegativeCacheTTL != 0 {
			p.log.Warn("pipeline: identity_providers[].keys.negative_cache_ttl is deprecated and ignored: unknown key ids are no longer remembered",
				"provider", pc.Name)
		}
		if sk := pc.StaticKeys; sk != nil {
			for j, f := range sk.Files {
				keys, err := keyset.LoadKeyFile(f)
				if err != nil {
					return nil, file.Errorf(fmt.Sprintf("%s.static_keys.files[%d]", path, j), "%v", err)
				}
				kc.Static = append(kc.Static, keys...)
			}
			if sk.HMACSecret != "" {
				k, err := keyset.HMACKey([]byte(sk.HMACSecret), "")
				if err != nil {
					return nil, file.Errorf(path+".static_keys.hmac_secret", "%v", err)
				}
				kc.Static = append(kc.Static, k)
			}
		}
		set, reused, err := p.keySet(pc, kc, providerTLS)
		if err != nil {
			return nil, file.Errorf(path, "%v", err)
		}
		p.readies = append(p.readies, set.Ready)
		p.providers = append(p.providers, providerHealth{name: pc.Name, set: set, reused: reused})

		jp := jwt.ProviderFromConfig(pc)
		jp.Keys = set
		if err := bindingSettings(&jp, pc, replay, opts.Now); err != nil {
			return nil, file.Errorf(path+".dpop", "%v", err)
		}
		if jp.Cache, err = p.tokenCache(jp); err != nil {
			return nil, file.Errorf(path, "%v", err)
		}
		if jp.Cache != nil {
			p.tokenCaches = append(p.tokenCaches, jp.Cache)
		}
		providers = append(providers, jp)
	}
	vopts := jwt.VerifierOptions{Now: opts.Now}
	if opts.Observer != nil {
		vopts.OnCacheLookup = opts.Observer.JWTCache
	}
	v, err := jwt.NewVerifierWithOptions(providers, vopts)
	if err != nil {
		return nil, file.Errorf("identity_providers", "%v", err)
	}
	return v, nil
}

// buildStages compiles a route's authentication and identity headers.
// Each method of the route is found in the registry and built there; the
// pipeline names none of them.
func (p *Plan) buildStages(rc config.Route, cfg *config.Config, verifier *jwt.Verifier, opts Options, pol *authz.Policy) ([]Stage, error) {
	global := cfg.IdentityHeaders
	if p.credHeaders == nil {
		p.credHeaders = credentialHeaders(cfg)
	}
	if rc.Public {
		// Public routes still strip the Authorization header unless told
		// otherwise, and never carry identity headers.
		// Credential headers go too (the API-key header): a key sent to a
		// public route must not reach (and be logged by) a backend that
		// never asked for it.
		ihs := &identityHeadersStage{h: identityHeaders{
			forwardAuthorization: headersFor(rc, global).ForwardAuthorization,
			credentialHeaders:    p.credHeaders,
		}}
		rls, err := p.rateLimitStageFor(rc, time.Now)
		if err != nil || rls == nil {
			return []Stage{ihs}, err
		}
		return []Stage{rls, ihs}, nil
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := rc.Authenticate
	chain := &authn.Chain{RequireAll: a.RequireAll, AllowAnonymous: a.AllowAnonymous, Primary: identity.Method(a.Primary)}
	schemes := make([]string, 0, len(a.Methods))
	var credQuery string
	env := registry.Env{Config: cfg, Route: &rc, Log: p.log, Now: now, Validating: p.validating,
		Resources: p.scope, Shared: sharedResources(verifier, p.apiKeys, p.revocations), Origin: p.origin}
	if opts.Observer != nil {
		env.Observer = opts.Observer
	}
	var (
		challengers   []authn.Challenger
		advisors      []authn.ResponseAdvisor
		schemeParams  []string
		lockoutKeyers []authn.LockoutKeyer
	)
	for _, m := range a.Methods {
		method, ok := registry.Lookup(identity.Method(m))
		if !ok {
			return nil, fmt.Errorf("unknown authentication method %q", m)
		}
		env.Options = a.Options(m)
		au, err := method.Build(env)
		if err != nil {
			return nil, err
		}
		chain.Authenticators = append(chain.Authenticators, au)
		schemes = append(schemes, method.Challenge)
		if method.ChallengeParams != "" {
			schemeParams = append(schemeParams, make([]string, len(schemes)-len(schemeParams)-1)...)
			schemeParams = append(schemeParams, method.ChallengeParams)
		}
		if k, ok := au.(authn.LockoutKeyer); ok {
			lockoutKeyers = append(lockoutKeyers, k)
		}
		ch, _ := au.(authn.Challenger)
		challengers = append(challengers, ch)
		if ad, ok := au.(authn.ResponseAdvisor); ok {
			advisors = append(advisors, ad)
		}
		if method.CredentialQuery != nil && credQuery == "" {
			credQuery = method.CredentialQuery(&rc)
		}
	}
	h := headersFor(rc, global)
	ih := identityHeaders{
		subject: canon(h.Subject), issuer: canon(h.Issuer), method: canon(h.Method), clientID: canon(h.ClientID),
		scopes: canon(h.Scopes), roles: canon(h.Roles), groups: canon(h.Groups), credentials: canon(h.Credentials),
		clientCertificate: canon(h.ClientCertificate), forwardAuthorization: h.ForwardAuthorization,
	}
	ih.credentialHeaders = p.credHeaders // on every route, whatever it accepts
	ih.credentialQuery = credQuery
	claims := make([]string, 0, len(h.Claims))
	for c := range h.Claims {
		claims = append(claims, c)
	}
	slices.Sort(claims) // deterministic order
	for _, c := range claims {
		ih.claims = append(ih.claims, claimHeader{claim: c, header: canon(h.Claims[c])})
	}
	ihs := &identityHeadersStage{h: ih}
	if !slices.ContainsFunc(challengers, func(c authn.Challenger) bool { return c != nil }) {
		challengers = nil
	}
	as := &authenticateStage{chain: chain, schemes: schemes, schemeParams: schemeParams, lockoutKeyers: lockoutKeyers,
		challengers: challengers, advisors: advisors,
		audit: p.audit, realm: a.Realm, headers: &ihs.h}
	if p.revocations != nil {
		as.revoked = &p.revocations.Replica.List
	}
	if p.rateLimits != nil {
		as.bf = p.rateLimits.failures
	}
	stages := []Stage{as}
	if pol != nil {
		stages = append(stages, &authorizeStage{policy: pol, reads: compileReads(pol.Reads()), audit: p.audit, realm: a.Realm, now: now})
	}
	rls, err := p.rateLimitStageFor(rc, now)
	if err != nil {
		return nil, err
	}
	if rls != nil {
		stages = append(stages, rls)
	}
	return p.appendAssertionStage(append(stages, ihs), &rc, cfg), nil
}

// credentialHeaders are the headers every registered method reads its
// credential from (the API-key header), canonical: removed before the
// upstream on every route. Their underscore spellings (X_API_Key) never
// get that far: request hygiene drops or refuses underscore names.
func credentialHeaders(cfg *config.Config) []string {
	out := []string{}
	for _, name := range registry.Names() {
		m, _ := registry.Lookup(name)
		if m.CredentialHeaders == nil {
			continue
		}
		for _, h := range m.CredentialHeaders(cfg) {
			if h := canon(h); h != "" && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

func headersFor(rc config.Route, global config.IdentityHeaders) config.IdentityHeaders {
	if rc.IdentityHeaders != nil {
		return *rc.IdentityHeaders
	}
	return global
}

func canon(name string) string {
	if name == "" {
		return ""
	}
	return http.CanonicalHeaderKey(name)
}

// identityHeaderNames is every identity header name configured anywhere:
// all are stripped from every incoming request, so a client can never
// supply one, whichever route it reaches.
func identityHeaderNames(cfg *config.Config) []string {
	seen := map[string]bool{}
	var out []string
	addSet := func(h config.IdentityHeaders) {
		for _, n := range []string{h.Subject, h.Issuer, h.Method, h.Credentials, h.ClientID, h.Scopes, h.Roles, h.Groups, h.ClientCertificate} {
			if n != "" && !seen[canon(n)] {
				seen[canon(n)] = true
				out = append(out, canon(n))
			}
		}
		for _, n := range h.Claims {
			if n != "" && !seen[canon(n)] {
				seen[canon(n)] = true
				out = append(out, canon(n))
			}
		}
	}
	addSet(cfg.IdentityHeaders)
	for _, r := range cfg.Routes {
		if r.IdentityHeaders != nil {
			addSet(*r.IdentityHeaders)
		}
	}
	// The header a listener reads forwarded client certificates from:
	// the gateway reads it before this strip (internal/gateway), and the
	// upstream gets a certificate only as identity_headers.client_certificate
	// vouches for it, never the proxy's or a client's copy. (From peers
	// that are not trusted proxies, request hygiene removes the usual
	// certificate headers whether configured or not.)
	for _, l := range cfg.Listeners {
		if fc := l.ForwardedClientCertificates; fc != nil && !seen[canon(fc.Header)] {
			seen[canon(fc.Header)] = true
			out = append(out, canon(fc.Header))
		}
	}
	slices.Sort(out)
	return out
}

// Audit is the plan's audit sink.
func (p *Plan) Audit() audit.Logger { return p.audit }

// Flush writes buffered access log lines and audit events now (tests,
// shutdown).
func (p *Plan) Flush() {
	_ = p.access.Flush()
	if f, ok := p.audit.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// ProviderHealth reports each identity provider's key set, for the admin
// listener.
func (p *Plan) ProviderHealth() []keyset.Health {
	out := make([]keyset.Health, 0, len(p.providers))
	for _, ph := range p.providers {
		out = append(out, ph.set.Health())
	}
	return out
}

// WaitReady blocks until the plan is ready or ctx ends, polling: key sets
// fetch in the background from Build on.
func (p *Plan) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := p.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pipeline: not ready: %w", err)
		case <-t.C:
		}
	}
}
