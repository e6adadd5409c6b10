// Package metrics is Gatehouse's Prometheus instrumentation: a registry of
// its own (never the global one), the pipeline.Observer that feeds it, and
// the handler the admin listener serves at /metrics.
//
// Labels are bounded by construction: route names, method classes and
// identity provider names come from the configuration, outcomes and reason
// codes from fixed sets in the code; nothing from a request (path, token,
// subject, key) ever becomes a label value. Requests that match no route
// are counted under route="_unmatched", methods outside the configured set
// under method="_other".
//
// A Metrics lives as long as the gateway: every plan a reload builds asks
// it for per-route observers, which find their metric children the first
// time a route sees a given label combination and keep them, so the
// request path neither allocates nor looks labels up in the registry.
// Retain drops the series of routes a reload removed.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Namespace prefixes every Gatehouse metric.
const Namespace = "gatehouse"

// OtherMethod is the method label of methods outside the configured set.
const OtherMethod = "_other"

// Bucket boundaries, in seconds.
var (
	// requestBuckets cover a proxied request: sub-millisecond to 10s.
	requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// overheadBuckets cover the gateway's own work before forwarding.
	overheadBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}
	// storeBuckets cover one key-store lookup (the default timeout is 2s).
	storeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

// statusClasses are the status_class label values, by status/100.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Options configure New.
type Options struct {
	// Version is the gateway's version, for gatehouse_build_info.
	Version string
	// Providers returns the current identity providers' key set health,
	// read at every scrape for the key age and readiness gauges. nil: none.
	Providers func() []keyset.Health
	// Now is the clock for key ages. Default time.Now.
	Now func() time.Time
	// Resources returns the keys of the shared resources open now (the
	// gateway's resource registry), read at every scrape and counted by
	// kind. nil: not exported.
	Resources func() []string
	// KeyStoreListening reports the PostgreSQL key store's LISTEN/NOTIFY
	// connection (up) for the plan serving now; ok is false when there is
	// no such store. Read at every scrape. nil: not exported.
	KeyStoreListening func() (up, ok bool)
	// Revocation reports the revocation list of the plan serving now: the
	// entries loaded and whether the replica is polling (its change feed
	// is down, or loads fail); ok is false when revocation is off. Read at
	// every scrape. nil: not exported.
	Revocation func() (entries int, polling, ok bool)
	// RateLimits reports the rate limits of the plan serving now (the
	// Redis client's counters and the fallback decisions); ok is false
	// when it has none. Read at every scrape. nil: not exported.
	RateLimits func() (s pipeline.RateLimitState, ok bool)
}

// Metrics is the registry and every Gatehouse metric family. It implements
// pipeline.Observer. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	overhead         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	authn            *prometheus.CounterVec
	authz            *prometheus.CounterVec
	jwtCache         [2]prometheus.Counter // miss, hit
	apiKeyCache      *prometheus.CounterVec
	apiKeyCacheKids  childMap[pair, prometheus.Counter]
	storeDuration    *prometheus.HistogramVec
	storeLookups     *prometheus.CounterVec
	keyFetches       *prometheus.CounterVec
	introCache       *prometheus.CounterVec
	introCalls       *prometheus.CounterVec
	introDuration    *prometheus.HistogramVec
	reloads          *prometheus.CounterVec
	clientCerts      *prometheus.CounterVec
	reloadSuccess    prometheus.Gauge
	reloadTime       prometheus.Gauge
	configInfo       *prometheus.GaugeVec
	rateLimits       *prometheus.CounterVec
	lockouts         *prometheus.CounterVec

	// perRoute lists the families labelled by route, for Retain.
	perRoute []*prometheus.MetricVec
	// names are the full names of the families registered here.
	names []string

	mu     sync.Mutex
	routes map[string]bool // every route name ever handed out
}

// New builds the registry with every Gatehouse family, the build info, and
// the Go runtime and process collectors.
func New(opts Options) *Metrics {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, routes: map[string]bool{}}
	f := factory{reg: reg, names: &m.names}

	m.requests = f.counterVec("requests_total",
		"Requests answered, by route (_unmatched: no route), method class and status class.",
		"route", "method", "status_class")
	m.duration = f.histogramVec("request_duration_seconds",
		"Time from a request's arrival to the end of its response, by route, method class and status class.",
		requestBuckets, "route", "method", "status_class")
	m.overhead = f.histogramVec("gateway_duration_seconds",
		"The gateway's own share of a forwarded request: from arrival until it is handed to the upstream (hygiene, routing, authentication, authorization), by route.",
		overheadBuckets, "route")
	m.upstreamDuration = f.histogramVec("upstream_duration_seconds",
		"Time from forwarding a request until the upstream's response headers arrived (or the exchange failed), by route.",
		requestBuckets, "route")
	m.upstreamErrors = f.counterVec("upstream_errors_total",
		"Upstream exchanges that failed, by route and class (unavailable, tls, timeout, client_gone, bad_request, other).",
		"route", "class")
	m.authn = f.counterVec("authentication_decisions_total",
		"Authentication decisions, by route, credential method (none: no credential), outcome (allow, deny, error) and reason code.",
		"route", "method", "outcome", "reason")
	m.authz = f.counterVec("authorization_decisions_total",
		"Authorization decisions, by route, outcome (allow, deny) and reason code.",
		"route", "outcome", "reason")
	jwtCache := f.counterVec("jwt_cache_lookups_total",
		"Lookups of the verified-token cache: hit (the token skipped parsing and signature verification) or miss.",
		"result")
	m.jwtCache = [2]prometheus.Counter{jwtCache.WithLabelValues("miss"), jwtCache.WithLabelValues("hit")}
	m.apiKeyCache = f.counterVec("apikey_cache_lookups_total",
		"Lookups of the API-key cache, by store type and result (hit, miss).",
		"store", "result")
	m.storeDuration = f.histogramVec("apikey_store_lookup_duration_seconds",
		"Duration of API-key store lookups (cache misses), by store type.",
		storeBuckets, "store")
	m.storeLookups = f.counterVec("apikey_store_lookups_total",
		"API-key store lookups, by store type and result (found, not_found, timeout, error, busy: refused for want of a free lookup slot).",
		"store", "result")
	m.keyFetches = f.counterVec("jwks_fetches_total",
		"Fetches of an identity provider's keys (discovery and JWKS), by provider and result (success, failure).",
		"provider", "result")
	m.clientCerts = f.counterVec("tls_client_certificates_total",
		"Client certificates checked in TLS handshakes (once per connection, resumptions included), by listener and result: verified, or the reason code (cert_missing, cert_untrusted, cert_expired, cert_revoked).",
		"listener", "result")
	m.introCache = f.counterVec("introspection_cache_lookups_total",
		"Lookups of an identity provider's introspection cache, by provider and result (hit: answered without a call, miss).",
		"provider", "result")
	m.introCalls = f.counterVec("introspection_requests_total",
		"Calls to an identity provider's introspection endpoint, by provider and result (active, inactive, error: unreachable, timeout, non-200 or malformed answer; rate_limited: refused for want of a call slot or rate within the timeout).",
		"provider", "result")
	m.introDuration = f.histogramVec("introspection_request_duration_seconds",
		"Duration of calls to an identity provider's introspection endpoint, by provider.",
		storeBuckets, "provider")
	m.reloads = f.counterVec("config_reloads_total",
		"Configuration reloads, by result (success, failure).", "result")
	m.reloadSuccess = f.gauge("config_last_reload_successful",
		"1 if the last reload applied (or none was tried), 0 if it was rejected and the previous configuration serves.")
	m.reloadSuccess.Set(1)
	m.reloadTime = f.gauge("config_last_reload_success_timestamp_seconds",
		"When the configuration now serving was loaded (Unix time).")
	m.configInfo = f.gaugeVec("config_info",
		"Always 1; hash is the SHA-256 of the configuration file now serving.", "hash")
	m.rateLimits = f.counterVec("ratelimit_decisions_total",
		"Rate-limit decisions, by route, policy, limit and result: allowed (counted once per limit of an admitted request), limited (the limit refused the request), exempt (limit empty: the caller is exempt).",
		"route", "policy", "limit", "result")
	m.lockouts = f.counterVec("authn_lockouts_total",
		"Brute-force lockouts started, by route and key (ip, credential); each is also an authn.lockout audit event.",
		"route", "key")
	buildInfo := f.gaugeVec("build_info",
		"Always 1; the gateway's version and the Go version it was built with.", "version", "goversion")
	buildInfo.WithLabelValues(opts.Version, runtime.Version()).Set(1)
	for _, v := range []*prometheus.MetricVec{m.requests.MetricVec, m.duration.MetricVec, m.overhead.MetricVec,
		m.upstreamDuration.MetricVec, m.upstreamErrors.MetricVec, m.authn.MetricVec, m.authz.MetricVec,
		m.rateLimits.MetricVec, m.lockouts.MetricVec} {
		m.perRoute = append(m.perRoute, v)
	}
	if opts.Providers != nil {
		reg.MustRegister(&keyCollector{providers: opts.Providers, now: opts.Now})
	}
	m.names = append(m.names, keyAgeName, keyReadyName, keyCountName)
	reg.MustRegister(&stateCollector{resources: opts.Resources, listening: opts.KeyStoreListening, revocation: opts.Revocation})
	m.names = append(m.names, resourcesName, listenerName, revocationEntriesName, revocationPollingName)
	reg.MustRegister(&rateLimitCollector{state: opts.RateLimits})
	m.names = append(m.names, redisErrorsName, redisFastFailsName, redisOpensName, redisBreakerName, rateLimitDegradedName)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Names lists the full names of the gatehouse_ families (for tests and
// docs checks); the Go and process collectors' are not included.
func (m *Metrics) Names() []string { return append([]string(nil), m.names...) }

// Registry is the registry every Gatehouse metric is in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A failing collector must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Reloaded records a reload: its result and, when it applied, the hash of
// the configuration now serving.
func (m *Metrics) Reloaded(err error, hash string) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadSuccess.Set(0)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.Loaded(hash)
}

// Loaded records the configuration now serving (at start and after every
// applied reload).
func (m *Metrics) Loaded(hash string) {
	m.reloadSuccess.Set(1)
	m.reloadTime.Set(float64(time.Now().UnixNano()) / 1e9)
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(hash).Set(1)
}

// Retain drops the series of every route not in names (the routes of the
// plan now serving), so that a route a reload removed or renamed stops
// being exported. Requests still in flight on the old plan count into
// children no longer exported, or, for a label combination that plan had
// not met yet, into a new series that the next Retain drops: every name
// ever handed out is checked again each time (a set bounded by the
// configurations this process has loaded).
func (m *Metrics) Retain(names []string) {
	keep := make(map[string]bool, len(names)+1)
	for _, n := range names {
		keep[n] = true
	}
	keep[pipeline.UnmatchedRoute] = true
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.routes {
		if keep[n] {
			continue
		}
		for _, v := range m.perRoute {
			v.DeletePartialMatch(prometheus.Labels{"route": n})
		}
	}
}

var _ pipeline.Observer = (*Metrics)(nil)

var _ introspect.Observer = (*Metrics)(nil)

// Introspection returns the observer of one provider's introspection: its
// children are resolved here, once, so a lookup is an atomic add.
func (m *Metrics) Introspection(provider string) introspect.ProviderObserver {
	o := &introspectionObserver{
		miss:     m.introCache.WithLabelValues(provider, "miss"),
		hit:      m.introCache.WithLabelValues(provider, "hit"),
		duration: m.introDuration.WithLabelValues(provider),
		calls:    map[introspect.Result]prometheus.Counter{},
	}
	for _, r := range []introspect.Result{introspect.ResultActive, introspect.ResultInactive, introspect.ResultError, introspect.ResultRateLimited} {
		o.calls[r] = m.introCalls.WithLabelValues(provider, string(r))
	}
	return o
}

type introspectionObserver struct {
	miss, hit prometheus.Counter
	duration  prometheus.Observer
	calls     map[introspect.Result]prometheus.Counter // read-only once built
}

func (o *introspectionObserver) CacheLookup(hit bool) {
	if hit {
		o.hit.Inc()
	} else {
		o.miss.Inc()
	}
}

func (o *introspectionObserver) Call(d time.Duration, r introspect.Result) {
	o.duration.Observe(d.Seconds())
	if c, ok := o.calls[r]; ok {
		c.Inc()
	}
}

// Route returns the observer of one route; see routeObserver.
func (m *Metrics) Route(name string, methods []string) pipeline.RouteObserver {
	m.mu.Lock()
	m.routes[name] = true
	m.mu.Unlock()
	n := len(methods) + 1
	labels := make([]string, n)
	copy(labels, methods)
	labels[n-1] = OtherMethod
	return &routeObserver{m: m, name: name, methods: labels, reqs: make([]atomic.Pointer[requestChildren], n*len(statusClasses))}
}

// JWTCache counts a verified-token cache lookup.
func (m *Metrics) JWTCache(hit bool) {
	if hit {
		m.jwtCache[1].Inc()
	} else {
		m.jwtCache[0].Inc()
	}
}

// ClientCertificate counts a client-certificate check of a TLS handshake:
// result is "verified" or a clientcert reason code.
func (m *Metrics) ClientCertificate(listener, result string) {
	m.clientCerts.WithLabelValues(listener, result).Inc()
}

// KeyFetch counts a fetch of a provider's keys.
func (m *Metrics) KeyFetch(provider string, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.keyFetches.WithLabelValues(provider, result).Inc()
}

// APIKeyCache counts an API-key cache lookup.
func (m *Metrics) APIKeyCache(store string, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.apiKeyCacheKids.get(pair{store, result}, func() prometheus.Counter {
		return m.apiKeyCache.WithLabelValues(store, result)
	}).Inc()
}

// APIKeyStore records one store lookup.
func (m *Metrics) APIKeyStore(store string, d time.Duration, result authnapikey.StoreResult) {
	if result != authnapikey.StoreBusy {
		m.storeDuration.WithLabelValues(store).Observe(d.Seconds())
	}
	m.storeLookups.WithLabelValues(store, string(result)).Inc()
}

type pair struct{ a, b string }

// requestChildren are a route's request counter and duration histogram
// for one method class and status class.
type requestChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// routeObserver is one route's pipeline.RouteObserver. Its children are
// resolved the first time a label combination occurs and kept: the fixed
// ones in atomic pointers indexed by method class and status class, the
// decision ones in copy-on-write maps keyed by outcome and reason (bounded
// sets), so that a request costs map or array reads and atomic adds.
type routeObserver struct {
	m       *Metrics
	name    string
	methods []string // method classes, OtherMethod last

	reqs             []atomic.Pointer[requestChildren] // [method*len(statusClasses)+status]
	overhead         atomic.Pointer[prometheus.Observer]
	upstreamDuration atomic.Pointer[prometheus.Observer]
	upstreamErrors   childMap[pipeline.UpstreamError, prometheus.Counter]
	authn            childMap[authnKey, prometheus.Counter]
	authz            childMap[pair, prometheus.Counter]
	rateLimits       childMap[[3]string, prometheus.Counter]
}

var _ pipeline.RateLimitObserver = (*routeObserver)(nil)

// RateLimit implements pipeline.RateLimitObserver.
func (o *routeObserver) RateLimit(policy, limit, result string) {
	k := [3]string{policy, limit, result}
	o.rateLimits.get(k, func() prometheus.Counter {
		return o.m.rateLimits.WithLabelValues(o.name, k[0], k[1], k[2])
	}).Inc()
}

// Lockout implements pipeline.RateLimitObserver (rare: no cache).
func (o *routeObserver) Lockout(key string) { o.m.lockouts.WithLabelValues(o.name, key).Inc() }

type authnKey struct{ method, outcome, reason string }

func (o *routeObserver) Authentication(a pipeline.Authentication) {
	method := a.Method
	if method == "" {
		method = "none"
	}
	k := authnKey{method, a.Outcome, a.Reason}
	o.authn.get(k, func() prometheus.Counter {
		return o.m.authn.WithLabelValues(o.name, k.method, k.outcome, k.reason)
	}).Inc()
}

func (o *routeObserver) Authorization(a pipeline.Authorization) {
	k := pair{a.Outcome, a.Reason}
	o.authz.get(k, func() prometheus.Counter {
		return o.m.authz.WithLabelValues(o.name, k.a, k.b)
	}).Inc()
}

func (o *routeObserver) Upstream(u pipeline.UpstreamExchange) {
	lazyObserver(&o.upstreamDuration, o.m.upstreamDuration, o.name).Observe(u.Duration.Seconds())
	if u.Error != pipeline.UpstreamOK {
		e := u.Error
		o.upstreamErrors.get(e, func() prometheus.Counter {
			return o.m.upstreamErrors.WithLabelValues(o.name, e.String())
		}).Inc()
	}
}

func (o *routeObserver) Done(d pipeline.RequestDone) {
	sc := d.Status/100 - 1
	if sc < 0 || sc >= len(statusClasses) {
		sc = len(statusClasses) - 1 // a status outside 100..599 cannot be sent; count it as a server error
	}
	mc := d.MethodClass
	if mc < 0 || mc >= len(o.methods) {
		mc = len(o.methods) - 1
	}
	slot := &o.reqs[mc*len(statusClasses)+sc]
	c := slot.Load()
	if c == nil {
		c = &requestChildren{
			count:    o.m.requests.WithLabelValues(o.name, o.methods[mc], statusClasses[sc]),
			duration: o.m.duration.WithLabelValues(o.name, o.methods[mc], statusClasses[sc]),
		}
		slot.Store(c) // a racing request stores the same children
	}
	c.count.Inc()
	c.duration.Observe(d.Duration.Seconds())
	if d.Overhead > 0 {
		lazyObserver(&o.overhead, o.m.overhead, o.name).Observe(d.Overhead.Seconds())
	}
}

// lazyObserver returns the child of v for route, resolving it once.
func lazyObserver(p *atomic.Pointer[prometheus.Observer], v *prometheus.HistogramVec, route string) prometheus.Observer {
	if h := p.Load(); h != nil {
		return *h
	}
	h := v.WithLabelValues(route)
	p.Store(&h)
	return h
}

// childMap is a copy-on-write map of metric children: reads are a map
// lookup with no lock and no allocation; a new key (rare: the label sets
// are bounded) copies the map.
type childMap[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

func (c *childMap[K, V]) get(k K, mk func() V) V {
	if m := c.p.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.p.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1)
	if old != nil {
		for kk, vv := range *old {
			next[kk] = vv
		}
	}
	v := mk()
	next[k] = v
	c.p.Store(&next)
	return v
}

// keyCollector exports, at scrape time, the state of the identity
// providers' key sets: how long since their last successful fetch and
// whether they are ready. It reads the plan serving now, so providers a
// reload adds or removes appear and disappear with it, and nothing is
// registered per reload.
type keyCollector struct {
	providers func() []keyset.Health
	now       func() time.Time
}

const (
	keyAgeName   = Namespace + "_jwks_last_success_age_seconds"
	keyReadyName = Namespace + "_jwks_ready"
	keyCountName = Namespace + "_jwks_keys"
)

var (
	keyAgeDesc = prometheus.NewDesc(keyAgeName,
		"Seconds since the last successful fetch of a provider's keys (fetched key sets only; absent until the first success).",
		[]string{"provider"}, nil)
	keyReadyDesc = prometheus.NewDesc(keyReadyName,
		"1 if a provider's keys can verify tokens (fetched and not past max_stale), 0 if not.",
		[]string{"provider"}, nil)
	keyCountDesc = prometheus.NewDesc(keyCountName,
		"Number of verification keys a provider's key set serves now.",
		[]string{"provider"}, nil)
)

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyAgeDesc
	ch <- keyReadyDesc
	ch <- keyCountDesc
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, h := range c.providers() {
		if h.Source != "static" && !h.LastRefresh.IsZero() {
			ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, now.Sub(h.LastRefresh).Seconds(), h.Provider)
		}
		ready := 0.0
		if h.Ready {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(keyReadyDesc, prometheus.GaugeValue, ready, h.Provider)
		ch <- prometheus.MustNewConstMetric(keyCountDesc, prometheus.GaugeValue, float64(h.Keys), h.Provider)
	}
}

// stateCollector exports, at scrape time, the gateway's shared resources
// by kind and the PostgreSQL key store's LISTEN/NOTIFY connection.
type stateCollector struct {
	resources  func() []string
	listening  func() (up, ok bool)
	revocation func() (entries int, polling, ok bool)
}

const (
	resourcesName = Namespace + "_shared_resources"
	listenerName  = Namespace + "_apikey_store_listener_up"

	revocationEntriesName = Namespace + "_revocation_entries"
	revocationPollingName = Namespace + "_revocation_polling"
)

var (
	resourcesDesc = prometheus.NewDesc(resourcesName,
		"Resources open and shared across reloads, by kind (key sets, token and introspection caches, upstream pools, key stores, the Redis client, rate-limit state, …: docs/observability.md lists them). Flat across reloads that leave their settings unchanged.",
		[]string{"kind"}, nil)
	listenerDesc = prometheus.NewDesc(listenerName,
		"1 while the PostgreSQL key store's LISTEN/NOTIFY connection is up, 0 while it reconnects (revocations from other replicas then wait for api_keys.cache_ttl); absent without a postgres store.",
		[]string{"store"}, nil)
	revocationEntriesDesc = prometheus.NewDesc(revocationEntriesName,
		"Entries of the revocation list loaded by this process (some may have expired since the last load); absent while revocation is off.",
		nil, nil)
	revocationPollingDesc = prometheus.NewDesc(revocationPollingName,
		"1 while the revocation list is polled (its change notifications are down, or loads fail: changes from other replicas then take up to revocation.poll_interval), 0 while changes are pushed; absent while revocation is off.",
		nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- resourcesDesc
	ch <- listenerDesc
	ch <- revocationEntriesDesc
	ch <- revocationPollingDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.resources != nil {
		counts := map[string]int{}
		for _, k := range c.resources() {
			counts[pipeline.ResourceKind(k)]++
		}
		for kind, n := range counts {
			ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(n), kind)
		}
	}
	if c.listening != nil {
		if up, ok := c.listening(); ok {
			v := 0.0
			if up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(listenerDesc, prometheus.GaugeValue, v, "postgres")
		}
	}
	if c.revocation != nil {
		if n, polling, ok := c.revocation(); ok {
			v := 0.0
			if polling {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(revocationEntriesDesc, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(revocationPollingDesc, prometheus.GaugeValue, v)
		}
	}
}

// factory registers namespaced families with one registry and records
// their names.
type factory struct {
	reg   *prometheus.Registry
	names *[]string
}

func (f factory) register(c prometheus.Collector, name string) {
	f.reg.MustRegister(c)
	*f.names = append(*f.names, Namespace+"_"+name)
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.register(v, name)
	return v
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.register(v, name)
	return v
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.register(g, name)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.register(v, name)
	return v
}

// rateLimitCollector exports, at scrape time, the Redis client's counters
// and breaker state, and the decisions made by fallbacks.
type rateLimitCollector struct {
	state func() (pipeline.RateLimitState, bool)
}

const (
	redisErrorsName       = Namespace + "_redis_errors_total"
	redisFastFailsName    = Namespace + "_redis_breaker_rejections_total"
	redisOpensName        = Namespace + "_redis_breaker_opens_total"
	redisBreakerName      = Namespace + "_redis_breaker_state"
	rateLimitDegradedName = Namespace + "_ratelimit_degraded_decisions_total"
)

var (
	redisErrorsDesc = prometheus.NewDesc(redisErrorsName,
		"Calls to Redis that failed for want of an answer (refused or broken connection, timeout); limits applied their on_redis_error policy. Absent without a Redis store.", nil, nil)
	redisFastFailsDesc = prometheus.NewDesc(redisFastFailsName,
		"Calls to Redis refused at once by the open circuit breaker. Absent without a Redis store.", nil, nil)
	redisOpensDesc = prometheus.NewDesc(redisOpensName,
		"Times the Redis circuit breaker opened. Absent without a Redis store.", nil, nil)
	redisBreakerDesc = prometheus.NewDesc(redisBreakerName,
		"State of the Redis circuit breaker: 0 closed (Redis is called), 1 half-open (one probe), 2 open (calls fail at once; limits apply their fallback). Absent without a Redis store.", nil, nil)
	rateLimitDegradedDesc = prometheus.NewDesc(rateLimitDegradedName,
		"Rate-limit and brute-force decisions made by the fallback (on_redis_error: local, deny or allow; local counters) because Redis could not answer. Absent without rate limits.", nil, nil)
)

func (c *rateLimitCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{redisErrorsDesc, redisFastFailsDesc, redisOpensDesc, redisBreakerDesc, rateLimitDegradedDesc} {
		ch <- d
	}
}

func (c *rateLimitCollector) Collect(ch chan<- prometheus.Metric) {
	if c.state == nil {
		return
	}
	s, ok := c.state()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(rateLimitDegradedDesc, prometheus.CounterValue, float64(s.Degraded))
	if r := s.Redis; r != nil {
		ch <- prometheus.MustNewConstMetric(redisErrorsDesc, prometheus.CounterValue, float64(r.Errors))
		ch <- prometheus.MustNewConstMetric(redisFastFailsDesc, prometheus.CounterValue, float64(r.FastFails))
		ch <- prometheus.MustNewConstMetric(redisOpensDesc, prometheus.CounterValue, float64(r.BreakerOpens))
		ch <- prometheus.MustNewConstMetric(redisBreakerDesc, prometheus.GaugeValue, float64(r.Breaker))
	}
}
