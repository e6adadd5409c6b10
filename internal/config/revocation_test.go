package config

import (
	"strings"
	"testing"
	"time"
)

func TestRevocationSettings(t *testing.T) {
	const route = "routes:\n  - name: r\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n"
	provider := func(life string) string {
		return "  - name: p" + life + "\n    issuer: https://" + life + ".example\n    jwks_uri: https://" + life + ".example/jwks\n    audiences: [api]\n    max_token_lifetime: " + life + "\n"
	}
	for _, tc := range []struct {
		name     string
		src      string
		wantErr  string
		lifetime time.Duration
	}{
		{name: "defaults", src: route, lifetime: 24 * time.Hour},
		{name: "longest provider lifetime", src: "identity_providers:\n" + provider("1h") + provider("36h") + route, lifetime: 36 * time.Hour},
		{name: "explicit", src: "revocation: {enabled: true, max_token_lifetime: 2h}\nidentity_providers:\n" + provider("36h") + route, lifetime: 2 * time.Hour},
		{name: "static store has nowhere to keep it", src: "revocation: {enabled: true}\napi_keys: {store: {type: static}, static: [{id: s1, consumer: c, hash: \"sha256:" + strings.Repeat("ab", 32) + "\"}]}\n" + route,
			wantErr: "revocation.enabled"},
		{name: "poll interval must be positive", src: "revocation: {poll_interval: 0s}\n" + route, wantErr: "revocation.poll_interval"},
		{name: "resync interval must be positive", src: "revocation: {resync_interval: 0s}\n" + route, wantErr: "revocation.resync_interval"},
		{name: "negative lifetime", src: "revocation: {max_token_lifetime: -1h}\n" + route, wantErr: "revocation.max_token_lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.RevocationLifetime(); got != tc.lifetime {
				t.Errorf("lifetime %v, want %v", got, tc.lifetime)
			}
			if cfg.Revocation.PollInterval.Std() != time.Second || cfg.Revocation.ResyncInterval.Std() != time.Minute {
				t.Errorf("intervals %v %v", cfg.Revocation.PollInterval, cfg.Revocation.ResyncInterval)
			}
		})
	}
}

func TestRevocationFeeds(t *testing.T) {
	const (
		route = "routes:\n  - name: r\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n"
		pg    = "api_keys: {store: {type: postgres, dsn: \"postgres://gatehouse@db.internal/gatehouse\"}}\n"
		redis = "redis: {addresses: [\"127.0.0.1:6379\"]}\n"
	)
	feed := func(f string) string { return "revocation: {enabled: true, feed: " + f + "}\n" }
	for _, tc := range []struct {
		name            string
		src             string
		wantErr         string
		postgres, redis bool
	}{
		{name: "embedded store needs none", src: feed("auto") + redis},
		{name: "postgres: LISTEN", src: feed("auto") + pg, postgres: true},
		{name: "postgres and redis: both", src: feed("auto") + pg + redis, postgres: true, redis: true},
		{name: "default is auto", src: "revocation: {enabled: true}\n" + pg + redis, postgres: true, redis: true},
		{name: "redis only", src: feed("redis") + pg + redis, redis: true},
		{name: "postgres only", src: feed("postgres") + pg + redis, postgres: true},
		{name: "none", src: feed("none") + pg + redis},
		{name: "redis needs a redis block", src: feed("redis") + pg, wantErr: "revocation.feed"},
		{name: "redis needs a shared store", src: feed("redis") + redis, wantErr: "revocation.feed"},
		{name: "postgres needs a postgres store", src: feed("postgres"), wantErr: "revocation.feed"},
		{name: "unknown feed", src: feed("kafka") + pg, wantErr: "revocation.feed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("c.yaml", []byte(tc.src+route), env(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pgFeed, redisFeed := cfg.RevocationFeeds(); pgFeed != tc.postgres || redisFeed != tc.redis {
				t.Errorf("feeds postgres=%v redis=%v, want %v %v", pgFeed, redisFeed, tc.postgres, tc.redis)
			}
		})
	}
}
