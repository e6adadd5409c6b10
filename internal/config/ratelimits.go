package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// RateLimits holds the named rate-limit policies that routes refer to
// (routes[].rate_limit), where their counts live, and the brute-force
// protection of authentication (docs/rate-limits.md).
type RateLimits struct {
	// Store is where limits are counted: redis (shared by the replicas)
	// or local (each replica alone). Default: redis when redis.addresses
	// is set, else local.
	Store string `yaml:"store" enum:"redis,local" desc:"Where limits and brute-force counters live: redis (shared by every replica, needs redis.addresses) or local (each replica counts alone). Default: redis when redis.addresses is set, else local."`
	// ExpectedReplicas divides limits with on_redis_error: local while
	// Redis is unreachable. Default 1.
	ExpectedReplicas int `yaml:"expected_replicas" desc:"How many replicas share the limits: while Redis is unreachable, a limit with on_redis_error: local counts rate/expected_replicas in each replica. Default 1."`
	// MaxKeys bounds the keys each limit holds in memory. Default 100000.
	MaxKeys int `yaml:"max_keys" desc:"Most keys each limit holds in memory (local store, and the local fallback); past it replenished keys are dropped first. Default 100000."`
	// Policies are the named policies.
	Policies map[string]RateLimitPolicy `yaml:"policies" desc:"Named rate-limit policies, referred to by routes[].rate_limit."`
	// BruteForce locks out client addresses and credentials that fail
	// authentication too often. Default: off.
	BruteForce *BruteForce `yaml:"brute_force" desc:"Brute-force protection: failed authentications counted per client address and per presented credential; past threshold within window the key is refused with 429 for lockout, before any credential check. Default: off."`
}

// RateLimitPolicy is a set of limits checked together, all or nothing.
type RateLimitPolicy struct {
	// Headers sends RateLimit-Policy and RateLimit. Default true.
	Headers *bool `yaml:"headers" desc:"Send the RateLimit-Policy and RateLimit response headers (draft-ietf-httpapi-ratelimit-headers) on every answer of the route. Default true."`
	// Exempt callers are not limited.
	Exempt RateLimitExempt `yaml:"exempt" desc:"Callers this policy never limits."`
	// Limits are the default limits.
	Limits []RateLimitRule `yaml:"limits" desc:"The limits, checked together (all or nothing). Required unless quotas is set."`
	// Quotas are the per-caller day/month quotas, counted durably after
	// the limits admit a request.
	Quotas []QuotaRule `yaml:"quotas" desc:"Quotas per caller over a day or a month, counted durably (Redis with the redis store, else the API-key store) once the limits admit the request. Default none."`
	// Tiers pick the limits from the caller; the first whose when
	// matches wins; no match: Limits.
	Tiers []RateLimitTier `yaml:"tiers" desc:"Limits chosen by the caller: the first tier whose when matches applies its limits; a caller no tier matches gets limits."`
}

// RateLimitExempt lists callers a policy does not limit.
type RateLimitExempt struct {
	// Consumers are subjects or client ids (for API keys: the consumer's
	// id or name).
	Consumers []string `yaml:"consumers" desc:"Callers never limited, by subject or client id (for API keys, the consumer's id or name). Default none."`
	// IPs are client addresses or CIDR ranges.
	IPs []string `yaml:"ips" desc:"Client addresses or CIDR ranges never limited (as forwarding derives the address). Default none."`
}

// RateLimitTier picks limits for the callers it matches.
type RateLimitTier struct {
	// When selects the callers.
	When TierMatch `yaml:"when" desc:"The callers of this tier. Required."`
	// Limits replace the policy's limits for them.
	Limits []RateLimitRule `yaml:"limits" desc:"The tier's limits, instead of the policy's. Required."`
}

// TierMatch matches a claim of the caller's identity.
type TierMatch struct {
	// Claim is the claim's name (for API keys, a consumer metadata claim).
	Claim string `yaml:"claim" desc:"Name of the identity claim compared (a token claim; for API keys, the consumer's claims). Required."`
	// Equals is the value that selects the tier.
	Equals string `yaml:"equals" desc:"Value the claim must have (strings, numbers and booleans compared as text). Required."`
}

// RateLimitRule is one limit: rate events per period, counted by key.
type RateLimitRule struct {
	// Name names the limit in headers and metrics.
	Name string `yaml:"name" desc:"The limit's name in the RateLimit headers and metrics: letters, digits, '-', '_', '.'. Required, unique within its list."`
	// Rate is the number of events admitted per Per.
	Rate int `yaml:"rate" desc:"Requests admitted per period, sustained. Required, at least 1."`
	// Per is the period.
	Per Duration `yaml:"per" desc:"The period of rate (1s, 1m, 24h). Required."`
	// Burst is the largest burst after a quiet time. Default: Rate.
	Burst int `yaml:"burst" desc:"Requests admitted at once after a quiet time. Default: rate."`
	// Key is what the limit counts by. Default subject.
	Key string `yaml:"key" desc:"What the limit counts by: subject (or consumer), client_id, credential, claim:NAME, ip, route, or up to four joined with +. Default subject."`
	// OnRedisError is the limit's policy when Redis cannot decide.
	OnRedisError string `yaml:"on_redis_error" enum:"local,deny,allow" desc:"What the limit does while Redis cannot decide: local (count rate/expected_replicas in this replica), deny (429) or allow (ignore the limit; dangerous). Default local."`
}

// QuotaRule is one quota: Limit requests per day or month, per key.
type QuotaRule struct {
	// Name names the quota in headers, the admin API and audit events.
	Name string `yaml:"name" desc:"The quota's name in the RateLimit headers, the admin API and audit events: letters, digits, '-', '_', '.'. Required, unique within the policy (and distinct from its limits' names)."`
	// Limit is the number of requests per period.
	Limit int64 `yaml:"limit" desc:"Requests admitted per period. Required, at least 1."`
	// Period is day or month.
	Period string `yaml:"period" enum:"day,month" desc:"The period: day or month. Required."`
	// Calendar resets at the start of each day or month; false: a rolling window. Default true.
	Calendar *bool `yaml:"calendar" desc:"true: the count resets at 00:00 (day) or on the first of the month at 00:00 (month) in time_zone. false: a rolling window of 24 hours or 30 days (a sliding-window counter). Default true."`
	// TimeZone of calendar periods (IANA name). Default UTC.
	TimeZone string `yaml:"time_zone" desc:"IANA time zone of calendar periods (Europe/Berlin). Default UTC."`
	// Key is what the quota counts by. Default consumer.
	Key string `yaml:"key" desc:"What the quota counts by, with the parts of limits[].key. Default consumer."`
}

// IsCalendar reports whether the quota resets on the calendar.
func (q QuotaRule) IsCalendar() bool { return q.Calendar == nil || *q.Calendar }

// BruteForce configures the lockout of failing authentication.
type BruteForce struct {
	// Threshold is the failures in Window that lock a key out. Default 10.
	Threshold int `yaml:"threshold" desc:"Failed authentications within window that lock the key out. Default 10."`
	// Window is the counting window. Default 5m.
	Window Duration `yaml:"window" desc:"Window failures are counted in, from the first one. Default 5m."`
	// Lockout is how long a locked-out key is refused. Default 15m.
	Lockout Duration `yaml:"lockout" desc:"How long a locked-out key is refused with 429. Default 15m."`
	// Keys are what failures are counted by: ip, credential.
	Keys []string `yaml:"keys" desc:"What failures are counted by: ip (the client address) and credential (the presented API key's id, the token's subject). Default [ip, credential]."`
}

func (b *BruteForce) setDefaults() {
	b.Threshold, b.Window, b.Lockout = 10, Duration(5*time.Minute), Duration(15*time.Minute)
	b.Keys = []string{"ip", "credential"}
}

// DefaultRateLimitKeys is the largest number of keys a limit holds in memory.
const DefaultRateLimitKeys = 100_000

// RateLimitStore is the store in effect: rate_limits.store, or its default.
func (c *Config) RateLimitStore() string {
	if c.RateLimits.Store != "" {
		return c.RateLimits.Store
	}
	if c.Redis.Enabled() {
		return "redis"
	}
	return "local"
}

// HeadersOn reports whether the policy sends the RateLimit headers.
func (p RateLimitPolicy) HeadersOn() bool { return p.Headers == nil || *p.Headers }

var (
	limitNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	keyPartRE   = regexp.MustCompile(`^(subject|consumer|client_id|credential|ip|route|claim:[A-Za-z0-9._-]{1,64})$`)
)

// validateRateLimits checks rate_limits and the routes' references.
func validateRateLimits(c *Config, add func(path, format string, args ...any)) {
	rl := c.RateLimits
	switch rl.Store {
	case "", "local":
	case "redis":
		if !c.Redis.Enabled() {
			add("rate_limits.store", "redis needs redis.addresses")
		}
	default:
		add("rate_limits.store", "%q: use redis or local", rl.Store)
	}
	if rl.ExpectedReplicas < 0 {
		add("rate_limits.expected_replicas", "must not be negative")
	}
	if rl.MaxKeys < 0 {
		add("rate_limits.max_keys", "must not be negative")
	}
	for name, p := range rl.Policies {
		path := "rate_limits.policies." + name
		if !limitNameRE.MatchString(name) {
			add(path, "policy names use 1 to 64 letters, digits, '.', '_' and '-'")
		}
		if len(p.Limits) == 0 && len(p.Quotas) == 0 {
			add(path+".limits", "at least one limit (or a quota) is required")
		}
		validateLimitRules(path+".limits", p.Limits, add)
		validateQuotas(c, path, p, add)
		for i, t := range p.Tiers {
			tp := fmt.Sprintf("%s.tiers[%d]", path, i)
			if !limitNameRE.MatchString(t.When.Claim) {
				add(tp+".when.claim", "a claim name (letters, digits, '.', '_', '-') is required")
			}
			if t.When.Equals == "" {
				add(tp+".when.equals", "is required")
			}
			if len(t.Limits) == 0 {
				add(tp+".limits", "at least one limit is required")
			}
			validateLimitRules(tp+".limits", t.Limits, add)
		}
		for i, ip := range p.Exempt.IPs {
			if _, err := ParseAddrOrPrefix(ip); err != nil {
				add(fmt.Sprintf("%s.exempt.ips[%d]", path, i), "%q is not an IP address or CIDR", ip)
			}
		}
		for i, cs := range p.Exempt.Consumers {
			if cs == "" {
				add(fmt.Sprintf("%s.exempt.consumers[%d]", path, i), "must not be empty")
			}
		}
	}
	if b := rl.BruteForce; b != nil {
		if b.Threshold < 1 {
			add("rate_limits.brute_force.threshold", "must be at least 1")
		}
		if b.Window <= 0 {
			add("rate_limits.brute_force.window", "must be greater than 0")
		}
		if b.Lockout <= 0 {
			add("rate_limits.brute_force.lockout", "must be greater than 0")
		}
		if len(b.Keys) == 0 {
			add("rate_limits.brute_force.keys", "at least one of ip, credential is required")
		}
		seen := map[string]bool{}
		for i, k := range b.Keys {
			if k != "ip" && k != "credential" || seen[k] {
				add(fmt.Sprintf("rate_limits.brute_force.keys[%d]", i), "%q: use ip or credential, once each", k)
			}
			seen[k] = true
		}
	}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if r.RateLimit != "" {
			if _, ok := rl.Policies[r.RateLimit]; !ok {
				add(path+".rate_limit", "unknown rate-limit policy %q (define it under rate_limits.policies)", r.RateLimit)
			}
		}
		if r.MaxInFlight < 0 {
			add(path+".max_in_flight", "must not be negative")
		}
	}
}

func validateLimitRules(path string, rules []RateLimitRule, add func(path, format string, args ...any)) {
	names := map[string]bool{}
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !limitNameRE.MatchString(r.Name):
			add(p+".name", "use 1 to 64 letters, digits, '-', '_' or '.'")
		case names[r.Name]:
			add(p+".name", "duplicate limit name %q", r.Name)
		}
		names[r.Name] = true
		if r.Rate < 1 {
			add(p+".rate", "must be at least 1")
		}
		if r.Per <= 0 {
			add(p+".per", "must be greater than 0")
		} else if r.Per.Std() > 366*24*time.Hour {
			add(p+".per", "must be at most a year")
		} else if r.Rate >= 1 && r.Per.Std()/time.Duration(r.Rate) < time.Microsecond {
			add(p+".rate", "more than one request per microsecond")
		}
		if r.Burst < 0 {
			add(p+".burst", "must not be negative")
		}
		if r.Key != "" {
			parts := strings.Split(r.Key, "+")
			if len(parts) > 4 {
				add(p+".key", "%q: at most 4 parts", r.Key)
			}
			seen := map[string]bool{}
			for _, part := range parts {
				if !keyPartRE.MatchString(part) || seen[part] {
					add(p+".key", "%q: parts are subject, consumer, client_id, credential, claim:NAME, ip, route, each once, joined with +", r.Key)
					break
				}
				seen[part] = true
			}
		}
		switch r.OnRedisError {
		case "", "local", "deny", "allow":
		default:
			add(p+".on_redis_error", "%q: use local, deny or allow", r.OnRedisError)
		}
	}
}

// MaxQuotasPerPolicy bounds a policy's quotas (each costs a store call
// per request).
const MaxQuotasPerPolicy = 4

func validateQuotas(c *Config, path string, p RateLimitPolicy, add func(path, format string, args ...any)) {
	if len(p.Quotas) == 0 {
		return
	}
	if len(p.Quotas) > MaxQuotasPerPolicy {
		add(path+".quotas", "at most %d quotas", MaxQuotasPerPolicy)
	}
	if c.RateLimitStore() != "redis" && c.APIKeys.Store.Type == "static" {
		add(path+".quotas", "quotas are counted in Redis (rate_limits.store: redis) or in the API-key store, and api_keys.store.type is static")
	}
	names := map[string]bool{}
	for _, l := range p.Limits {
		names[l.Name] = true
	}
	for i, q := range p.Quotas {
		qp := fmt.Sprintf("%s.quotas[%d]", path, i)
		switch {
		case !limitNameRE.MatchString(q.Name):
			add(qp+".name", "use 1 to 64 letters, digits, '-', '_' or '.'")
		case names[q.Name]:
			add(qp+".name", "duplicate name %q (limits and quotas of a policy share names)", q.Name)
		}
		names[q.Name] = true
		if q.Limit < 1 {
			add(qp+".limit", "must be at least 1")
		}
		if q.Period != "day" && q.Period != "month" {
			add(qp+".period", "%q: use day or month", q.Period)
		}
		if q.TimeZone != "" {
			if !q.IsCalendar() {
				add(qp+".time_zone", "only calendar quotas have a time zone")
			} else if _, err := time.LoadLocation(q.TimeZone); err != nil {
				add(qp+".time_zone", "%q: not a known IANA time zone", q.TimeZone)
			}
		}
		if q.Key != "" {
			validateLimitRules(qp, []RateLimitRule{{Name: q.Name, Rate: 1, Per: Duration(time.Second), Key: q.Key}}, func(_, format string, args ...any) {
				add(qp+".key", format, args...)
			})
		}
	}
}

// ParseAddrOrPrefix reads an address ("10.0.0.1") or a CIDR range
// ("10.0.0.0/8") as a prefix.
func ParseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
