package pipeline

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/quota"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// The rate-limit stage (docs/rate-limits.md): after authorization, the
// route's policy picks its limits (a tier, or the default), builds each
// limit's key from the caller, and asks the limiter, all or nothing. A
// refusal is a reply.TooManyRequestsError (429, Retry-After); the
// RateLimit-Policy and RateLimit headers go on every answer of the route
// through the response phase.

// maxLimitsPerSet bounds the limits of one list, so a request's keys and
// decisions fit in the Exchange's fixed arrays (no allocation).
const maxLimitsPerSet = 8

// Canonical names of the RateLimit header fields (the response phase
// takes canonical names).
var (
	headerRateLimitPolicy = http.CanonicalHeaderKey(ratelimit.HeaderPolicy)
	headerRateLimit       = http.CanonicalHeaderKey(ratelimit.HeaderRateLimit)
)

// limitSet is one list of limits checked together: a policy's default
// limits or one tier's.
type limitSet struct {
	lim    ratelimit.Limiter
	keys   []ratelimit.KeySpec
	limits []ratelimit.Limit
	// policyHeader is the RateLimit-Policy value, built once;
	// policyHeaderQuotas has the policy's quotas after the limits.
	policyHeader, policyHeaderQuotas string
}

type rateTier struct {
	claim, equals string
	set           *limitSet
}

// rateLimitPolicy is a compiled rate_limits.policies entry, shared by the
// routes of a plan that name it.
type rateLimitPolicy struct {
	name      string
	headers   bool
	consumers []string
	ips       []netip.Prefix
	tiers     []rateTier
	// def is nil for a policy of quotas only.
	def *limitSet
	// quotas are the policy's quotas; nil: none.
	quotas *quotaSet
}

// rateLimitStage applies a policy to a route's requests.
type rateLimitStage struct {
	route  string
	policy *rateLimitPolicy
	now    func() time.Time
	audit  audit.Logger
}

func (s *rateLimitStage) Name() string { return "rate_limit" }

func (s *rateLimitStage) Process(x *Exchange) error {
	p := s.policy
	id := x.Identity
	obs, _ := x.Route.observer.(RateLimitObserver)
	if p.exempt(id, x.ClientIP) {
		if obs != nil {
			obs.RateLimit(p.name, "", "exempt")
		}
		return nil
	}
	set := p.pick(id)
	ip := x.clientIPText()
	if id == nil {
		id = anonymousIdentity
	}
	now := s.now()
	allowed := true
	var buf [160]byte
	hdr := buf[:0]
	if set != nil {
		n := len(set.keys)
		keys, out := x.rlKeys[:n], x.rlDecisions[:n]
		for i, k := range set.keys {
			keys[i], _ = k.Key(id, s.route, ip)
		}
		// Redis calls are bounded by the client's own deadlines.
		var err error
		allowed, err = set.lim.Allow(x.Request.Context(), keys, now, 1, out)
		if err != nil {
			// Only a caller bug reaches here (the fallback decides on
			// outages); refuse rather than admit.
			return fmt.Errorf("pipeline: rate limit: %w", err)
		}
		hdr = ratelimit.AppendRateLimit(hdr, set.limits, out)
		if obs != nil {
			for i, l := range set.limits {
				switch {
				case allowed:
					obs.RateLimit(p.name, l.Name, "allowed")
				case out[i].RetryAfter > 0:
					obs.RateLimit(p.name, l.Name, "limited")
				}
			}
		}
		if !allowed {
			s.setHeaders(x, set, hdr)
			return &reply.TooManyRequestsError{RetryAfter: time.Duration(ratelimit.RetryAfter(out)) * time.Second}
		}
	}
	if qs := p.quotas; qs != nil {
		var (
			over *quotaRule
			st   quotaState
			err  error
		)
		hdr, over, st, err = qs.take(x.Request.Context(), id, s.route, ip, now, hdr)
		if err != nil {
			return err
		}
		s.setHeaders(x, set, hdr)
		if over != nil {
			if obs != nil {
				obs.RateLimit(p.name, over.q.Name, "limited")
			}
			return qs.refuse(x, s.audit, over, st, id, now)
		}
		return nil
	}
	s.setHeaders(x, set, hdr)
	return nil
}

// setHeaders sets the RateLimit-Policy and RateLimit fields (when the
// policy sends them) for the limits of set (nil: none) and the quotas.
func (s *rateLimitStage) setHeaders(x *Exchange, set *limitSet, value []byte) {
	p := s.policy
	if !p.headers {
		return
	}
	switch {
	case set == nil:
		x.SetResponseHeader(headerRateLimitPolicy, p.quotas.policyHeader)
	case p.quotas != nil:
		x.SetResponseHeader(headerRateLimitPolicy, set.policyHeaderQuotas)
	default:
		x.SetResponseHeader(headerRateLimitPolicy, set.policyHeader)
	}
	x.SetResponseHeader(headerRateLimit, string(value))
}

// anonymousIdentity stands for the caller of a public route: keys that
// need an identity then share the "missing" bucket.
var anonymousIdentity = &identity.Identity{Method: identity.MethodAnonymous}

// clientIPText is ClientIP as text, made once per request.
func (x *Exchange) clientIPText() string {
	if x.clientIP == "" && x.ClientIP.IsValid() {
		x.clientIP = x.ClientIP.String()
	}
	return x.clientIP
}

func (p *rateLimitPolicy) exempt(id *identity.Identity, ip netip.Addr) bool {
	if len(p.consumers) > 0 && id != nil && !id.IsAnonymous() {
		for _, c := range p.consumers {
			if c == id.Subject || (id.ClientID != "" && c == id.ClientID) {
				return true
			}
		}
	}
	if len(p.ips) > 0 && ip.IsValid() {
		ip = ip.Unmap()
		for _, pf := range p.ips {
			if pf.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// pick returns the limits of the first tier the caller matches, or the
// default ones.
func (p *rateLimitPolicy) pick(id *identity.Identity) *limitSet {
	if id != nil && !id.IsAnonymous() {
		for _, t := range p.tiers {
			if v, ok := id.Claims[t.claim]; ok && claimString(v) == t.equals {
				return t.set
			}
		}
	}
	return p.def
}

// rateLimits is the plan's compiled rate_limits: its policies by name and
// its brute-force counter.
type rateLimits struct {
	policies map[string]*rateLimitPolicy
	// order is the policies' names, sorted.
	order    []string
	failures *bruteForce
	// redis is the shared store's client; nil: the local store.
	redis *redisconn.Client
}

// RateLimitState is what the metrics read of a plan's rate limits at
// scrape time.
type RateLimitState struct {
	// Redis holds the Redis client's counters; nil with the local store.
	Redis *redisconn.Stats
	// Degraded counts the decisions (rate limits and brute-force
	// counters) made by a fallback because Redis could not answer.
	Degraded uint64
}

// RateLimitState reports the plan's rate limits; ok is false when it has
// none.
func (p *Plan) RateLimitState() (s RateLimitState, ok bool) {
	rl := p.rateLimits
	if rl == nil {
		return s, false
	}
	if rl.redis != nil {
		st := rl.redis.Stats()
		s.Redis = &st
	}
	seen := map[ratelimit.Limiter]bool{}
	for _, pol := range rl.policies {
		for _, set := range append([]*limitSet{pol.def}, tierSets(pol.tiers)...) {
			if set == nil {
				continue
			}
			if f, ok := set.lim.(*ratelimit.Fallback); ok && !seen[set.lim] {
				seen[set.lim] = true
				s.Degraded += f.Degraded()
			}
		}
	}
	if rl.failures != nil {
		s.Degraded += rl.failures.degraded()
	}
	return s, true
}

// buildRateLimits compiles rate_limits. Limiters and counters are
// resources (resources.go): a reload that keeps a policy keeps its counts.
func (p *Plan) buildRateLimits(cfg *config.Config, file *config.File) error {
	rl := cfg.RateLimits
	if len(rl.Policies) == 0 && rl.BruteForce == nil {
		return nil
	}
	var client *redisconn.Client
	if cfg.RateLimitStore() == "redis" && !p.validating {
		var err error
		if client, err = redisconn.Acquire(p.scope, cfg.Redis, redisconn.Options{Logger: p.log}); err != nil {
			return file.Errorf("redis", "%v", err)
		}
	}
	maxKeys := rl.MaxKeys
	if maxKeys == 0 {
		maxKeys = config.DefaultRateLimitKeys
	}
	replicas := max(rl.ExpectedReplicas, 1)
	p.rateLimits = &rateLimits{policies: map[string]*rateLimitPolicy{}, redis: client}
	names := make([]string, 0, len(rl.Policies))
	for name := range rl.Policies {
		names = append(names, name)
	}
	slices.Sort(names)
	p.rateLimits.order = names
	qstore, err := p.quotaStore(cfg, client)
	if err != nil {
		return file.Errorf("rate_limits", "%v", err)
	}
	for _, name := range names {
		pc := rl.Policies[name]
		path := "rate_limits.policies." + name
		pol := &rateLimitPolicy{name: name, headers: pc.HeadersOn(), consumers: pc.Exempt.Consumers}
		for _, s := range pc.Exempt.IPs {
			pf, err := config.ParseAddrOrPrefix(s)
			if err != nil {
				return file.Errorf(path+".exempt.ips", "%v", err)
			}
			pol.ips = append(pol.ips, pf)
		}
		if pol.quotas, err = compileQuotas(name, pc.Quotas, qstore, p.validating); err != nil {
			return file.Errorf(path+".quotas", "%v", err)
		}
		if len(pc.Limits) > 0 {
			if pol.def, err = p.buildLimitSet(client, name, pc.Limits, replicas, maxKeys); err != nil {
				return file.Errorf(path+".limits", "%v", err)
			}
		}
		for i, t := range pc.Tiers {
			set, err := p.buildLimitSet(client, fmt.Sprintf("%s.tier%d", name, i), t.Limits, replicas, maxKeys)
			if err != nil {
				return file.Errorf(fmt.Sprintf("%s.tiers[%d].limits", path, i), "%v", err)
			}
			pol.tiers = append(pol.tiers, rateTier{claim: t.When.Claim, equals: t.When.Equals, set: set})
		}
		if pol.quotas != nil {
			for _, set := range append([]*limitSet{pol.def}, tierSets(pol.tiers)...) {
				if set != nil {
					set.policyHeaderQuotas = set.policyHeader + ", " + pol.quotas.policyHeader
				}
			}
		}
		p.rateLimits.policies[name] = pol
	}
	if bf := rl.BruteForce; bf != nil {
		f, err := p.buildBruteForce(client, bf, maxKeys)
		if err != nil {
			return file.Errorf("rate_limits.brute_force", "%v", err)
		}
		p.rateLimits.failures = f
	}
	return nil
}

// buildLimitSet compiles one list of limits; namespace separates its
// Redis keys from other lists'.
func (p *Plan) buildLimitSet(client *redisconn.Client, namespace string, rules []config.RateLimitRule, replicas, maxKeys int) (*limitSet, error) {
	if len(rules) > maxLimitsPerSet {
		return nil, fmt.Errorf("at most %d limits per list", maxLimitsPerSet)
	}
	set := &limitSet{}
	var onErr []ratelimit.OnError
	for _, r := range rules {
		l := ratelimit.Limit{Name: r.Name, Rate: r.Rate, Period: r.Per.Std(), Burst: r.Burst}
		if err := l.Validate(); err != nil {
			return nil, err
		}
		ks := r.Key
		if ks == "" {
			ks = "subject"
		}
		spec, err := ratelimit.ParseKeySpec(ks)
		if err != nil {
			return nil, err
		}
		oe, err := ratelimit.ParseOnError(r.OnRedisError)
		if err != nil {
			return nil, err
		}
		set.limits = append(set.limits, l)
		set.keys = append(set.keys, spec)
		onErr = append(onErr, oe)
	}
	set.policyHeader = ratelimit.PolicyHeader(set.limits)
	gopts := ratelimit.GCRAOptions{MaxKeys: maxKeys}
	var err error
	if client == nil {
		// One limiter per list and settings, kept across reloads.
		set.lim, _, err = resource.Get(p.scope, resource.Key("ratelimit.local", struct {
			NS     string
			Limits []ratelimit.Limit
			Max    int
		}{namespace, set.limits, maxKeys}), func() (ratelimit.Limiter, func(), error) {
			l, err := ratelimit.NewLocal(set.limits, gopts)
			return l, func() {}, err
		})
		return set, err
	}
	set.lim, _, err = resource.Get(p.scope, resource.Key("ratelimit.redis", struct {
		NS       string
		Limits   []ratelimit.Limit
		OnError  []ratelimit.OnError
		Replicas int
		Max      int
		Client   string // the shared client (same redis block: same client)
	}{namespace, set.limits, onErr, replicas, maxKeys, fmt.Sprintf("%p", client)}), func() (ratelimit.Limiter, func(), error) {
		r, err := ratelimit.NewRedis(client, set.limits, ratelimit.RedisOptions{Namespace: namespace})
		if err != nil {
			return nil, nil, err
		}
		f, err := ratelimit.NewFallback(r, ratelimit.FallbackOptions{OnError: onErr, Replicas: replicas, GCRA: gopts})
		return f, func() {}, err
	})
	return set, err
}

func tierSets(ts []rateTier) []*limitSet {
	out := make([]*limitSet, len(ts))
	for i, t := range ts {
		out[i] = t.set
	}
	return out
}

// quotaStore is where the plan's quotas count: Redis with the redis
// store, else the API-key store (nil when there is none).
func (p *Plan) quotaStore(cfg *config.Config, client *redisconn.Client) (quota.Store, error) {
	if !hasQuotas(cfg) || p.validating {
		return nil, nil
	}
	if client != nil {
		return quota.NewRedis(client), nil
	}
	if p.apiKeys == nil || p.apiKeys.store == nil {
		return nil, errors.New("quotas need a store: rate_limits.store redis, or an embedded or postgres api_keys.store")
	}
	qs, ok := p.apiKeys.store.Store.(quota.Store)
	if !ok {
		return nil, errors.New("quotas need a store: the api_keys.store type cannot count them (use embedded or postgres, or rate_limits.store redis)")
	}
	return qs, nil
}

// hasQuotas reports whether a policy has quotas.
func hasQuotas(cfg *config.Config) bool {
	for _, pc := range cfg.RateLimits.Policies {
		if len(pc.Quotas) > 0 {
			return true
		}
	}
	return false
}

// rateLimitStageFor returns the stage of a route's rate_limit, nil for none.
func (p *Plan) rateLimitStageFor(rc config.Route, now func() time.Time) (Stage, error) {
	if rc.RateLimit == "" {
		return nil, nil
	}
	if p.rateLimits == nil || p.rateLimits.policies[rc.RateLimit] == nil {
		return nil, errors.New("unknown rate-limit policy " + rc.RateLimit)
	}
	pol := p.rateLimits.policies[rc.RateLimit]
	if (rc.Authenticate == nil || rc.Authenticate.AllowAnonymous) && pol.def != nil {
		for _, k := range pol.def.keys {
			if k.NeedsIdentity() {
				p.log.Warn("pipeline: a rate limit of this route counts by the caller, and anonymous callers all share one bucket; key on ip for them",
					"route", rc.Name, "rate_limit", rc.RateLimit, "key", k.String())
				break
			}
		}
	}
	return &rateLimitStage{route: rc.Name, policy: pol, now: now, audit: p.audit}, nil
}
