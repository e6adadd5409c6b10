package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
)

// kind tells how a scenario's credentials behave, which decides the
// budget it is held to.
type kind string

const (
	kindReference kind = "reference" // direct, bare proxy: no credential
	kindPublic    kind = "public"    // Gatehouse, no credential
	kindWarm      kind = "warm"      // the same credential every request
	kindCold      kind = "cold"      // a credential never seen before, every request
)

// scenario is one configuration measured beside the bare proxy.
type scenario struct {
	Name        string
	Description string
	Kind        kind
	server      string // "upstream", "bare" or "gatehouse"
	path        string
	header      string
	// credential returns the credentials for a phase that may send up to
	// n requests; nil for scenarios without credentials.
	credential func(n int) (credentials, error)
	// variantOf names the scenario this one repeats on a differently
	// configured Gatehouse (metrics off, tracing on): it is held to the
	// observability budget against that scenario, not to its own.
	variantOf string
	// pairWith names the scenario measured beside this one instead of the
	// bare proxy (its ratios are to that scenario): an observability
	// variant is paired directly with the Gatehouse it is compared with,
	// so that its budget line is one same-run ratio, not a ratio of two
	// ratios to the bare proxy whose paired slices ran at other speeds.
	pairWith string
	// headers and headerSets replace header and credential for
	// credentials carried in several headers (DPoP: the token and a proof).
	headers    []string
	headerSets func(n int) (headerSets, error)
	// fixed headers go with every request, beside the credential (the
	// decision API's description of the original request).
	fixed http.Header
	// decision: the server answers for another proxy (the decision API),
	// so the self-check reads the subject from the answer's
	// X-Auth-Subject, not from the upstream's echo.
	decision bool
	// tls sends the requests over HTTPS to Gatehouse's mtls listener with
	// the bench client certificate; noKeepAlive opens a connection (a
	// full handshake) for every request.
	tls, noKeepAlive bool
	// reportOnly scenarios are measured and reported with no budget line
	// of their own (the issues that asked for them set none), except
	// those evaluateBudget names.
	reportOnly bool
	// prepare runs once before the self-check (revocation entries).
	prepare func(ctx context.Context) error
	// check proves what the generic self-check cannot: that the
	// scenario's own mechanism refuses what it must.
	check func(ctx context.Context, s *scenario) error
	// needs, if set, says why the scenario cannot run on this machine (a
	// service it needs is unreachable): it is then skipped with that
	// message, not failed.
	needs func(ctx context.Context) error
}

// bed is the running test bed: the three servers and what the scenarios
// need from them.
type bed struct {
	dir      string
	upstream *child
	bare     *child
	gate     *child
	// variants are Gatehouse processes with one observability setting
	// changed, started only when a selected scenario needs one.
	variants map[string]*child
	cfg      string // the main Gatehouse's configuration text
	issuers  map[string]*issuer
	apiKey   string
	minted   int // tokens minted so far: every token's subject is distinct
	children []*child
	pki      *pki
	opaque   string      // the one token the introspection endpoint calls active
	dpop     *dpopClient // made on first use: its proofs name Gatehouse's port
	// redisPrefix is the run's Redis key prefix (jwt-ratelimit-redis).
	redisPrefix string
	// pin places the processes in pinned mode; nil: not pinned.
	pin *pinning
	// nginx is the nginx reference (pinned mode, when nginx is installed),
	// started by startVariants when selected; nginxBin is its binary.
	nginx    *child
	nginxBin string
	// secrets are the session key and the Basic user's password.
	secrets *methodSecrets
}

// The introspection scenario's provider and its client at the in-harness
// authorization server (the upstream). The secret is a fixed test value
// of a server that lives only for the run.
const (
	introspectionIssuer = "https://as.bench.invalid"
	introspectionClient = "gatehouse-bench"
	introspectionSecret = "bench-introspection-secret"
)

// gatehouseConfig is the configuration of the Gatehouse under test: what a
// production deployment has (access log and audit on, to files), one
// route per scenario, keys for three providers and an embedded key store.
const gatehouseConfig = `# Written by the benchmark harness (bench/).
listeners:
  - name: main
    address: "127.0.0.1:0"
  - name: mtls
    address: "127.0.0.1:0"
    tls:
      cert_file: {{dir}}/server.pem
      key_file: {{dir}}/server.key
      client_certificates:
        ca_files: [{{dir}}/ca.pem]
admin:
  address: "127.0.0.1:0"
  token_file: {{dir}}/admin.token
access_log:
  output: {{dir}}/access.log
audit:
  output: {{dir}}/audit.log
log:
  level: warn
lifecycle:
  watch_config: false
  drain_timeout: 1s
identity_providers:
{{providers}}
api_keys:
  store:
    type: embedded
    path: {{dir}}/keys.db
routes:
  - name: public
    public: true
    match: {path_prefix: /public}
    upstream: {targets: ["{{upstream}}"]}
  - name: apikey
    match: {path_prefix: /apikey}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["{{upstream}}"]}
  - name: jwt
    match: {path_prefix: /jwt}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["{{upstream}}"]}
  - name: jwt-policy
    match: {path: "/policy/{tenant}/orders"}
    authenticate: {methods: [jwt]}
    authorize:
      scopes: {all_of: [orders:read]}
      expression: >-
        "bench" in identity.groups && identity.subject.startsWith("user-")
        && request.path_params.tenant == "acme" && request.method == "GET"
    upstream: {targets: ["{{upstream}}"]}
  - name: mtls
    match: {path_prefix: /mtls}
    authenticate:
      methods: [mtls]
      mtls: {trust_domains: [bench.invalid]}
    upstream: {targets: ["{{upstream}}"]}
  - name: dpop
    match: {path_prefix: /dpop}
    authenticate: {methods: [jwt], providers: [dpop]}
    upstream: {targets: ["{{upstream}}"]}
  - name: opaque
    match: {path_prefix: /opaque}
    authenticate: {methods: [introspection]}
    upstream: {targets: ["{{upstream}}"]}
`

// introspectionProvider introspects the opaque tokens of the
// introspection scenario at the upstream, with a cache that outlives any
// run.
const introspectionProvider = `  - name: opaque
    issuer: ` + introspectionIssuer + `
    audiences: [` + audience + `]
    insecure_allow_http: true
    introspection:
      endpoint: http://{{upstream_addr}}/introspect
      client_id: ` + introspectionClient + `
      client_secret: ` + introspectionSecret + `
      cache_ttl: 1h
`

const providerConfig = `  - name: %s
    issuer: %s
    audiences: [%s]
    algorithms: [%s]
    static_keys: {files: [%s]}
    claims: {groups: groups}
`

// startBed starts the upstream, the bare proxy and Gatehouse, and issues
// the API key the API-key scenario uses.
func startBed(ctx context.Context, dir string, pin *pinning) (_ *bed, err error) {
	b := &bed{dir: dir, issuers: map[string]*issuer{}, variants: map[string]*child{}, pin: pin}
	if pin != nil {
		b.nginxBin = findNginx()
	}
	defer func() {
		if err != nil {
			b.stop()
		}
	}()
	issuers, err := newIssuers(dir)
	if err != nil {
		return nil, err
	}
	if b.pki, err = newPKI(dir); err != nil {
		return nil, err
	}
	if b.secrets, err = newMethodSecrets(dir); err != nil {
		return nil, err
	}
	for _, is := range issuers {
		b.issuers[is.name] = is
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	b.opaque = "bench-opaque-" + hex.EncodeToString(secret)
	if b.upstream, err = b.start(ctx, "upstream", b.opaque); err != nil {
		return nil, err
	}
	upstreamURL := "http://" + b.upstream.Addr
	if b.bare, err = b.start(ctx, "bare", upstreamURL, b.pki.certFile, b.pki.keyFile, b.pki.caFile); err != nil {
		return nil, err
	}
	cfg := mainConfig(dir, providersConfig(issuers, b.upstream.Addr), upstreamURL, b.secrets.sessionKey)
	b.cfg = cfg
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if b.gate, err = b.start(ctx, "gatehouse", cfgPath); err != nil {
		return nil, err
	}
	if b.apiKey, err = b.issueAPIKey(ctx); err != nil {
		return nil, fmt.Errorf("issuing the API key: %w", err)
	}
	return b, nil
}

// providersConfig is the identity_providers entries: one per issuer (DPoP
// allowed on its own), and the introspecting provider whose authorization
// server is the upstream at upstreamAddr.
func providersConfig(issuers []*issuer, upstreamAddr string) string {
	var providers strings.Builder
	for _, is := range issuers {
		fmt.Fprintf(&providers, providerConfig, is.name, is.iss, audience, is.alg, is.jwks)
		if is.name == "dpop" {
			providers.WriteString("    dpop: {mode: allowed, algorithms: [ES256]}\n")
		}
	}
	providers.WriteString(strings.ReplaceAll(introspectionProvider, "{{upstream_addr}}", upstreamAddr))
	return providers.String()
}

// mainConfig is the main Gatehouse's configuration text.
func mainConfig(dir, providers, upstreamURL, sessionKey string) string {
	return strings.NewReplacer("{{dir}}", dir, "{{providers}}", strings.TrimRight(providers, "\n"),
		"{{upstream}}", upstreamURL, "{{session_key}}", sessionKey).Replace(gatehouseConfig + rateLimitRoutes + newMethodRoutes + rateLimitConfig)
}

func (b *bed) start(ctx context.Context, role string, args ...string) (*child, error) {
	c, err := startChild(ctx, b.pin, role, args...)
	if err != nil {
		return nil, err
	}
	b.children = append(b.children, c)
	if b.pin != nil {
		if err := b.pin.check(c, role != "upstream"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (b *bed) stop() {
	for i := len(b.children) - 1; i >= 0; i-- {
		b.children[i].stop()
	}
}

// issueAPIKey creates a consumer and a key through the admin API, as an
// operator would.
func (b *bed) issueAPIKey(ctx context.Context) (string, error) {
	token, err := os.ReadFile(filepath.Join(b.dir, "admin.token"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ac := &adminclient.Client{BaseURL: "http://" + b.gate.Admin, Token: strings.TrimSpace(string(token))}
	if _, err := ac.CreateConsumer(ctx, adminclient.NewConsumer{Name: "bench", Groups: []string{"bench"}}); err != nil {
		return "", err
	}
	k, err := ac.CreateKey(ctx, "bench", adminclient.NewKey{Name: "bench", Scopes: []string{"orders:read"}})
	if err != nil {
		return "", err
	}
	return k.Secret, nil
}

// server returns the child a scenario sends its requests to.
func (b *bed) server(s *scenario) *child {
	switch s.server {
	case "upstream":
		return b.upstream
	case "bare":
		return b.bare
	case "nginx":
		return b.nginx
	}
	if c, ok := b.variants[s.server]; ok {
		return c
	}
	return b.gate
}

// variantSettings are the configuration blocks appended to the main
// Gatehouse's configuration for each variant: what it costs to have
// metrics (on by default) and tracing at 1 % (off by default), measured as
// ratios in the same run. The traced variant exports to the upstream,
// which answers OTLP exports with an empty success.
var variantSettings = map[string]string{
	"gatehouse-nometrics": "metrics:\n  enabled: false\n",
	"gatehouse-traced":    "tracing:\n  enabled: true\n  insecure: true\n  endpoint: http://{{upstream_addr}}\n  sampling_ratio: 0.01\n",
	// The revocation list on (issue 13), loaded with revokedEntries
	// entries before the self-check.
	"gatehouse-revocation": "revocation:\n  enabled: true\n",
	// Rate limits counted in the real Redis (issue 14): the redis block
	// makes it their store.
	"gatehouse-redis": redisVariantSettings,
	// Issue 15: the signed identity assertion on every route, and the
	// decision API.
	"gatehouse-assertion": assertionVariantSettings,
	"gatehouse-decision":  decisionVariantSettings,
}

// startVariants starts the variant Gatehouses the scenarios in list use,
// each in its own directory (an embedded key store is one process's).
func (b *bed) startVariants(ctx context.Context, list []*scenario) error {
	for _, s := range list {
		if s.server == "nginx" && b.nginx == nil {
			c, err := startNginx(ctx, b.nginxBin, filepath.Join(b.dir, "nginx"), b.upstream.Addr, b.pin)
			if err != nil {
				return err
			}
			b.children = append(b.children, c)
			b.nginx = c
			if err := b.pin.check(c, true); err != nil {
				return err
			}
			continue
		}
		settings, ok := variantSettings[s.server]
		if !ok || b.variants[s.server] != nil {
			continue
		}
		dir := filepath.Join(b.dir, s.server)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		cfg := variantConfig(b.cfg, b.dir, dir, settings, b.upstream.Addr, b.redisPrefix)
		path := filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		c, err := b.start(ctx, "gatehouse", path)
		if err != nil {
			return fmt.Errorf("%s: %w", s.server, err)
		}
		b.variants[s.server] = c
	}
	return nil
}

// variantConfig is a variant's configuration: the main one (main, in
// dir) with its own admin token, logs and key store in vdir, the same
// issuers' keys, and settings appended.
func variantConfig(main, dir, vdir, settings, upstreamAddr, redisPrefix string) string {
	own := strings.NewReplacer(
		dir+"/admin.token", vdir+"/admin.token", dir+"/access.log", vdir+"/access.log",
		dir+"/audit.log", vdir+"/audit.log", dir+"/keys.db", vdir+"/keys.db")
	return own.Replace(main) + strings.NewReplacer("{{upstream_addr}}", upstreamAddr,
		"{{redis_addr}}", redisAddr(), "{{redis_prefix}}", redisPrefix).Replace(settings)
}

func (b *bed) url(s *scenario) string {
	if s.tls {
		return "https://" + b.server(s).TLS + s.path
	}
	return "http://" + b.server(s).Addr + s.path
}

// client is a load-generator client for s with conns connections: HTTPS
// with the client certificate for the mTLS scenarios.
func (b *bed) client(s *scenario, conns int) *http.Client {
	if !s.tls {
		return newClient(conns)
	}
	return newTLSClient(conns, b.pki.clientConfig(true), !s.noKeepAlive)
}

// mint signs n new tokens of issuer name.
func (b *bed) mint(name string, n int) ([]string, error) {
	toks, err := b.issuers[name].mintMany(n, b.minted)
	b.minted += n
	return toks, err
}

// scenarios lists what is measured, in order.
func (b *bed) scenarios() []*scenario {
	list := []*scenario{
		{Name: "direct", Kind: kindReference, server: "upstream", path: "/direct",
			Description: "The load generator straight to the upstream: the ceiling of this machine."},
		{Name: "bare-proxy", Kind: kindReference, server: "bare", path: "/bare",
			Description: "A bare httputil.ReverseProxy (Rewrite, X-Forwarded-*), same transport settings: the reference for every ratio."},
	}
	if b.nginxBin != "" {
		list = append(list, &scenario{Name: "nginx", Kind: kindReference, server: "nginx", path: "/nginx", reportOnly: true,
			Description: "nginx (one process, proxy_pass with keep-alive upstream connections, X-Forwarded-*, no access log) on the same pinned core: the C floor (pinned mode, when nginx is installed)."})
	}
	list = append(list, []*scenario{
		{Name: "gatehouse-public", Kind: kindPublic, server: "gatehouse", path: "/public/x",
			Description: "Gatehouse on a public route: request id, header stripping, routing, access log, proxy."},
		{Name: "apikey", Kind: kindWarm, server: "gatehouse", path: "/apikey/x", header: "X-API-Key",
			credential:  func(int) (credentials, error) { return repeated(b.apiKey), nil },
			Description: "An API key from the embedded (bbolt) store, the same key every request; authn audit event and identity headers."},
	}...)
	for _, alg := range []string{"rs256", "es256", "eddsa"} {
		upper := strings.ToUpper(alg)
		if alg == "eddsa" {
			upper = "EdDSA"
		}
		list = append(list, &scenario{Name: "jwt-" + alg + "-warm", Kind: kindWarm, server: "gatehouse", path: "/jwt/x", header: "Authorization",
			credential: func(int) (credentials, error) {
				t, err := b.mint(alg, 1)
				if err != nil {
					return nil, err
				}
				return repeated("Bearer " + t[0]), nil
			},
			Description: "A " + upper + " JWT, one token repeated: served by the verified-token cache."})
	}
	for _, alg := range []string{"rs256", "es256", "eddsa"} {
		upper := strings.ToUpper(alg)
		if alg == "eddsa" {
			upper = "EdDSA"
		}
		list = append(list, &scenario{Name: "jwt-" + alg + "-cold", Kind: kindCold, server: "gatehouse", path: "/jwt/x", header: "Authorization",
			credential: func(n int) (credentials, error) {
				toks, err := b.mint(alg, n)
				if err != nil {
					return nil, err
				}
				for i := range toks {
					toks[i] = "Bearer " + toks[i]
				}
				return &pool{values: toks}, nil
			},
			Description: "A " + upper + " JWT never seen before on every request (pre-minted): full parse and signature check."})
	}
	list = append(list, &scenario{Name: "jwt-rs256-cel", Kind: kindWarm, server: "gatehouse", path: "/policy/acme/orders", header: "Authorization",
		credential: func(int) (credentials, error) {
			t, err := b.mint("rs256", 1)
			if err != nil {
				return nil, err
			}
			return repeated("Bearer " + t[0]), nil
		},
		Description: "An RS256 JWT (repeated) on a route with a scope rule and a CEL expression over identity and request."})
	warmRS256 := func(int) (credentials, error) {
		t, err := b.mint("rs256", 1)
		if err != nil {
			return nil, err
		}
		return repeated("Bearer " + t[0]), nil
	}
	list = append(list,
		&scenario{Name: "jwt-rs256-warm-nometrics", Kind: kindWarm, server: "gatehouse-nometrics", path: "/jwt/x", header: "Authorization",
			credential: warmRS256, variantOf: "jwt-rs256-warm", pairWith: "jwt-rs256-warm",
			Description: "jwt-rs256-warm on a Gatehouse with metrics turned off: what the Prometheus observer costs. Paired with jwt-rs256-warm (metrics on), not with the bare proxy."},
		&scenario{Name: "jwt-rs256-warm-traced", Kind: kindWarm, server: "gatehouse-traced", path: "/jwt/x", header: "Authorization",
			credential: warmRS256, variantOf: "jwt-rs256-warm", pairWith: "jwt-rs256-warm-nometrics",
			Description: "jwt-rs256-warm on a Gatehouse with tracing on at 1 % sampling (OTLP/HTTP export to a local receiver) and metrics on. Paired with jwt-rs256-warm-nometrics (neither), not with the bare proxy."})
	list = append(list, b.credentialScenarios(warmRS256)...)
	list = append(list, b.rateLimitScenarios(warmRS256)...)
	return append(list, b.methodScenarios(warmRS256)...)
}

// selfCheck proves, before anything is measured, that each scenario does
// what its name says: credentials are required and really checked, and
// the identity reaches the upstream.
func (b *bed) selfCheck(ctx context.Context, list []*scenario) error {
	for _, s := range list {
		h := s.fixed.Clone()
		if h == nil {
			h = http.Header{}
		}
		if s.credential != nil {
			cr, err := s.credential(1)
			if err != nil {
				return err
			}
			v, _ := cr.next()
			h.Set(s.header, v)
		}
		if s.headerSets != nil {
			hs, err := s.headerSets(1)
			if err != nil {
				return err
			}
			vs, _ := hs.nextSet()
			for i, name := range s.headers {
				h.Set(name, vs[i])
			}
		}
		c := b.client(s, 1)
		subjectHeader := "X-Seen-Subject"
		if s.decision {
			subjectHeader = "X-Auth-Subject"
		}
		status, subject, err := probeFor(ctx, c, b.url(s), h, subjectHeader)
		c.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: status %d with a valid credential", s.Name, status)
		}
		if s.Kind == kindReference || (s.credential == nil && s.headerSets == nil && !s.tls) {
			continue
		}
		if subject == "" {
			return fmt.Errorf("%s: the upstream saw no X-Auth-Subject", s.Name)
		}
		if s.credential != nil {
			value := h.Get(s.header)
			for _, bad := range []string{"", tamper(value)} {
				hb := s.fixed.Clone()
				if hb == nil {
					hb = http.Header{}
				}
				hb[http.CanonicalHeaderKey(s.header)] = []string{bad}
				status, _, err := probe(ctx, newClient(1), b.url(s), hb)
				if err != nil {
					return fmt.Errorf("%s: %w", s.Name, err)
				}
				if status != http.StatusUnauthorized {
					return fmt.Errorf("%s: status %d with credential %q, want 401", s.Name, status, bad)
				}
			}
		}
		if s.check != nil {
			if err := s.check(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
		}
	}
	return nil
}

// probe sends one self-check request (the upstream then echoes the
// subject it received) and returns the status and that subject.
func probe(ctx context.Context, c *http.Client, url string, h http.Header) (int, string, error) {
	return probeFor(ctx, c, url, h, "X-Seen-Subject")
}

// probeFor is probe reading the subject from the answer's header name.
func probeFor(ctx context.Context, c *http.Client, url string, h http.Header, name string) (int, string, error) {
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range h {
		if len(v) > 0 && v[0] != "" {
			req.Header[k] = v
		}
	}
	req.Header.Set("X-Bench-Check", "1")
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get(name), nil
}

// tamper changes one character in the middle of a credential, so that its
// format still holds but its signature (or hash) no longer matches.
func tamper(v string) string {
	i := len(v) - 10 // inside a JWT's signature, inside an API key's secret
	r := byte('A')
	if v[i] == 'A' {
		r = 'B'
	}
	return v[:i] + string(r) + v[i+1:]
}
