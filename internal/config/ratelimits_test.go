package config

import (
	"strings"
	"testing"
	"time"
)

// TestRateLimitsConfig: defaults of rate_limits, and what validation
// refuses, each error at its path.
func TestRateLimitsConfig(t *testing.T) {
	const ok = `{policies: {std: {limits: [{name: burst, rate: 20, per: 1s}]}}}`
	cfg, _, err := Parse("c.yaml", []byte("rate_limits: "+ok+"\n"+minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimitStore() != "local" || !cfg.RateLimits.Policies["std"].HeadersOn() || cfg.RateLimits.BruteForce != nil {
		t.Errorf("defaults: %+v", cfg.RateLimits)
	}
	cfg, _, err = Parse("c.yaml", []byte("redis: {addresses: [\"127.0.0.1:6379\"]}\nrate_limits: {brute_force: {}}\n"+minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if bf := cfg.RateLimits.BruteForce; cfg.RateLimitStore() != "redis" || bf == nil || bf.Threshold != 10 ||
		bf.Window.Std() != 5*time.Minute || bf.Lockout.Std() != 15*time.Minute || strings.Join(bf.Keys, ",") != "ip,credential" {
		t.Errorf("redis store and brute-force defaults: %s %+v", cfg.RateLimitStore(), bf)
	}

	for _, tc := range []struct {
		name, block, route string
		want               string // "" = valid
	}{
		{"valid", ok, "rate_limit: std", ""},
		{"full", `{store: local, expected_replicas: 3, policies: {std: {headers: false, exempt: {consumers: [ops], ips: [10.0.0.0/8, "::1"]},
			tiers: [{when: {claim: plan, equals: gold}, limits: [{name: burst, rate: 100, per: 1s}]}],
			limits: [{name: burst, rate: 20, per: 1s, burst: 40, key: consumer, on_redis_error: local}, {name: daily, rate: 10000, per: 24h, key: "claim:tenant+ip", on_redis_error: deny}]}},
			brute_force: {threshold: 5, window: 1m, lockout: 10m, keys: [ip]}}`, "rate_limit: std", ""},
		{"unknown policy", ok, "rate_limit: gold", "routes[0].rate_limit: unknown rate-limit policy"},
		{"redis store without redis", `{store: redis}`, "", "rate_limits.store: redis needs redis.addresses"},
		{"no limits", `{policies: {std: {limits: []}}}`, "", "rate_limits.policies.std.limits: at least one limit"},
		{"zero rate", `{policies: {std: {limits: [{name: a, rate: 0, per: 1s}]}}}`, "", "rate_limits.policies.std.limits[0].rate: must be at least 1"},
		{"no period", `{policies: {std: {limits: [{name: a, rate: 1}]}}}`, "", "rate_limits.policies.std.limits[0].per: must be greater than 0"},
		{"bad name", `{policies: {std: {limits: [{name: "a b", rate: 1, per: 1s}]}}}`, "", "rate_limits.policies.std.limits[0].name"},
		{"duplicate name", `{policies: {std: {limits: [{name: a, rate: 1, per: 1s}, {name: a, rate: 2, per: 1m}]}}}`, "", "rate_limits.policies.std.limits[1].name: duplicate"},
		{"bad key", `{policies: {std: {limits: [{name: a, rate: 1, per: 1s, key: "user"}]}}}`, "", "rate_limits.policies.std.limits[0].key"},
		{"key part twice", `{policies: {std: {limits: [{name: a, rate: 1, per: 1s, key: "ip+ip"}]}}}`, "", "limits[0].key"},
		{"bad on_redis_error", `{policies: {std: {limits: [{name: a, rate: 1, per: 1s, on_redis_error: open}]}}}`, "", "limits[0].on_redis_error"},
		{"tier without claim", `{policies: {std: {tiers: [{when: {equals: gold}, limits: [{name: a, rate: 1, per: 1s}]}], limits: [{name: a, rate: 1, per: 1s}]}}}`, "", "rate_limits.policies.std.tiers[0].when.claim"},
		{"tier without limits", `{policies: {std: {tiers: [{when: {claim: plan, equals: gold}}], limits: [{name: a, rate: 1, per: 1s}]}}}`, "", "rate_limits.policies.std.tiers[0].limits"},
		{"bad exempt ip", `{policies: {std: {exempt: {ips: [10.0.0.0/33]}, limits: [{name: a, rate: 1, per: 1s}]}}}`, "", "rate_limits.policies.std.exempt.ips[0]"},
		{"brute force threshold", `{brute_force: {threshold: 0}}`, "", "rate_limits.brute_force.threshold"},
		{"brute force key", `{brute_force: {keys: [user]}}`, "", "rate_limits.brute_force.keys[0]"},
		{"negative max_in_flight", ok, "max_in_flight: -1", "routes[0].max_in_flight"},
		{"quotas only", `{policies: {q: {quotas: [{name: monthly, limit: 100000, period: month, calendar: true, key: consumer},
			{name: daily, limit: 10, period: day, time_zone: Europe/Berlin}, {name: rolling, limit: 5, period: day, calendar: false, key: "client_id+ip"}]}}}`, "rate_limit: q", ""},
		{"quota without limit", `{policies: {q: {quotas: [{name: m, period: month}]}}}`, "", "rate_limits.policies.q.quotas[0].limit: must be at least 1"},
		{"quota period", `{policies: {q: {quotas: [{name: m, limit: 1, period: week}]}}}`, "", "rate_limits.policies.q.quotas[0].period"},
		{"quota name shared with a limit", `{policies: {q: {limits: [{name: m, rate: 1, per: 1s}], quotas: [{name: m, limit: 1, period: day}]}}}`, "", "rate_limits.policies.q.quotas[0].name: duplicate"},
		{"quota time zone", `{policies: {q: {quotas: [{name: m, limit: 1, period: day, time_zone: Mars/Olympus}]}}}`, "", "rate_limits.policies.q.quotas[0].time_zone"},
		{"rolling quota with a time zone", `{policies: {q: {quotas: [{name: m, limit: 1, period: day, calendar: false, time_zone: UTC}]}}}`, "", "quotas[0].time_zone: only calendar"},
		{"quota key", `{policies: {q: {quotas: [{name: m, limit: 1, period: day, key: user}]}}}`, "", "rate_limits.policies.q.quotas[0].key"},
		{"too many quotas", `{policies: {q: {quotas: [{name: a, limit: 1, period: day}, {name: b, limit: 1, period: day}, {name: c, limit: 1, period: day}, {name: d, limit: 1, period: day}, {name: e, limit: 1, period: day}]}}}`, "", "rate_limits.policies.q.quotas: at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			route := ""
			if tc.route != "" {
				route = "    " + tc.route + "\n"
			}
			src := "rate_limits: " + tc.block + "\n" + minimal + route
			_, _, err := Parse("c.yaml", []byte(src), env(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
