package config

import (
	"strings"
	"testing"
)

func TestOutboundTLSValidation(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string // want "": valid
	}{
		{"https target", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://10.0.0.1"], tls: {ca_files: [ca.pem], cert_file: c.pem, key_file: c.key, server_name: api.internal, min_version: "1.3"}}}
`, ""},
		{"http target", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://10.0.0.1", "http://10.0.0.2"], tls: {ca_files: [ca.pem]}}}
`, `routes[0].upstream.tls: applies to https targets only, and targets[1] is "http://10.0.0.2"`},
		{"builtin target", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["builtin:echo"], tls: {ca_files: [ca.pem]}}}
`, `routes[0].upstream.tls: applies to https targets only`},
		{"cert without key", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://a.internal"], tls: {cert_file: c.pem}}}
`, `routes[0].upstream.tls: cert_file and key_file go together`},
		{"server name with a port", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://a.internal"], tls: {server_name: "a.internal:443"}}}
`, `routes[0].upstream.tls.server_name: "a.internal:443" is not a host name`},
		{"min version 1.1", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://a.internal"], tls: {min_version: "1.1"}}}
`, `routes[0].upstream.tls.min_version: "1.1" is not one of: 1.2, 1.3`},
		{"no insecure switch", `
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://a.internal"], tls: {insecure_skip_verify: true}}}
`, `unknown key "insecure_skip_verify"`},
		{"provider over https", `
identity_providers:
  - {name: idp, issuer: "https://idp.internal", audiences: [api], tls: {ca_files: [ca.pem], cert_file: c.pem, key_file: c.key}}
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["builtin:echo"]}}
`, ""},
		{"provider with static keys", `
identity_providers:
  - {name: idp, issuer: "https://idp.internal", audiences: [api], static_keys: {files: [k.pem]}, tls: {ca_files: [ca.pem]}}
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["builtin:echo"]}}
`, `identity_providers[0].tls: applies to fetched keys only`},
		{"provider over http", `
identity_providers:
  - {name: idp, issuer: "https://idp.internal", jwks_uri: "http://idp.internal/keys", insecure_allow_http: true, audiences: [api], tls: {ca_files: [ca.pem]}}
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["builtin:echo"]}}
`, `identity_providers[0].tls: applies to https only, and keys are fetched from "http://idp.internal/keys"`},
		{"provider key without cert", `
identity_providers:
  - {name: idp, issuer: "https://idp.internal", audiences: [api], tls: {key_file: c.key}}
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["builtin:echo"]}}
`, `identity_providers[0].tls: cert_file and key_file go together`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if tls := cfg.Routes[0].Upstream.TLS; tls != nil && tls.MinVersion == "" {
					t.Fatal("min_version has no default")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOutboundTLSDefaults(t *testing.T) {
	cfg, _, err := Parse("c.yaml", []byte(`
identity_providers:
  - {name: idp, issuer: "https://idp.internal", audiences: [api], tls: {ca_files: [ca.pem]}}
routes:
  - {name: a, public: true, match: {path_prefix: /}, upstream: {targets: ["https://a.internal"], tls: {ca_files: [ca.pem]}}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routes[0].Upstream.TLS.MinVersion; got != "1.2" {
		t.Errorf("routes[0].upstream.tls.min_version = %q, want 1.2", got)
	}
	if got := cfg.IdentityProviders[0].TLS.MinVersion; got != "1.2" {
		t.Errorf("identity_providers[0].tls.min_version = %q, want 1.2", got)
	}
}
