package config

import (
	"strings"
	"testing"
	"time"
)

// TestRedisConfig: the redis block's defaults and what validation
// refuses; a password never appears in an error.
func TestRedisConfig(t *testing.T) {
	cfg, _, err := Parse("c.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redis
	if r.Enabled() || r.Mode != "standalone" || r.KeyPrefix != "gatehouse:" || r.Timeouts.Dial.Std() != 2*time.Second ||
		r.Timeouts.Read.Std() != 500*time.Millisecond || r.Timeouts.Write.Std() != 500*time.Millisecond ||
		r.Timeouts.Pool.Std() != time.Second || r.Breaker.Failures != 5 || r.Breaker.CoolDown.Std() != 5*time.Second {
		t.Errorf("defaults: %+v", r)
	}

	for _, tc := range []struct {
		name, block string
		want        string // "" = valid
	}{
		{"absent block: no redis", "{}", ""},
		{"standalone", `{addresses: ["127.0.0.1:6379"], password: "${REDIS_PASSWORD}", database: 2}`, ""},
		{"cluster", `{mode: cluster, addresses: ["10.0.0.1:6379", "10.0.0.2:6379"]}`, ""},
		{"sentinel", `{mode: sentinel, master_name: mymaster, addresses: ["s1:26379", "s2:26379"], sentinel_password: x}`, ""},
		{"tls defaults to 1.2", `{addresses: ["r:6380"], tls: {}}`, ""},
		{"bad address", `{addresses: ["redis"]}`, "redis.addresses: entry 0"},
		{"settings without an address", `{password: "${REDIS_PASSWORD}"}`, "redis.addresses: is required"},
		{"unknown mode", `{mode: replicated, addresses: ["r:6379"]}`, "redis.mode"},
		{"sentinel needs a master", `{mode: sentinel, addresses: ["s:26379"]}`, "redis.master_name: is required"},
		{"master outside sentinel", `{master_name: m, addresses: ["r:6379"]}`, "redis.master_name: is only used"},
		{"sentinel password outside sentinel", `{sentinel_password: x, addresses: ["r:6379"]}`, "only used in mode sentinel"},
		{"cluster has one database", `{mode: cluster, addresses: ["r:6379"], database: 1}`, "redis.database: must be 0"},
		{"standalone takes one address", `{addresses: ["a:6379", "b:6379"]}`, "mode standalone takes one address"},
		{"negative database", `{addresses: ["r:6379"], database: -1}`, "redis.database"},
		{"empty prefix", `{addresses: ["r:6379"], key_prefix: ""}`, "redis.key_prefix: must not be empty"},
		{"zero read timeout", `{addresses: ["r:6379"], timeouts: {read: 0s}}`, "redis.timeouts.read: must be greater than 0"},
		{"zero dial timeout", `{addresses: ["r:6379"], timeouts: {dial: 0s}}`, "redis.timeouts.dial"},
		{"negative pool", `{addresses: ["r:6379"], pool_size: -1}`, "redis.pool_size"},
		{"breaker failures", `{addresses: ["r:6379"], breaker: {failures: 0}}`, "redis.breaker.failures"},
		{"breaker cool-down", `{addresses: ["r:6379"], breaker: {cool_down: 0s}}`, "redis.breaker.cool_down"},
		{"client cert without key", `{addresses: ["r:6379"], tls: {cert_file: /x.pem}}`, "cert_file and key_file go together"},
		{"missing CA", `{addresses: ["r:6379"], tls: {ca_file: /nonexistent/ca.pem}}`, "redis.tls.ca_file"},
		{"tls 1.1", `{addresses: ["r:6379"], tls: {min_version: "1.1"}}`, "redis.tls.min_version"},
		{"unknown key", `{addresses: ["r:6379"], passwd: x}`, "passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "redis: " + tc.block + "\n" + minimal
			_, _, err := Parse("c.yaml", []byte(src), env(map[string]string{"REDIS_PASSWORD": "s3cr3t-pw"}))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("the error echoes the password: %v", err)
			}
		})
	}
}
