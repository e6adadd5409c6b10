package config

import (
	"strings"
	"testing"
	"time"
)

func TestAssertionSettings(t *testing.T) {
	secret := strings.Repeat("s", 32)
	top := func(extra string) string {
		return "identity_assertion:\n  issuer: https://gw.example\n  keys: {source: store, seal_secret: " + secret + "}\n" + extra
	}
	route := func(extra string) string {
		return "routes:\n  - name: r\n    match: {path_prefix: /}\n    upstream: {targets: [\"http://orders.internal:8080/\"]}\n    authenticate: {methods: [api_key]}\n" + extra
	}
	for _, tc := range []struct {
		name, src, wantErr string
	}{
		{"valid, store", top("") + route("    identity_assertion: {audience: https://orders}\n"), ""},
		{"valid, memory, EdDSA, bearer", "identity_assertion: {issuer: https://gw.example, algorithm: EdDSA, header: Authorization, keys: {source: memory}}\n" + route("    identity_assertion: {}\n"), ""},
		{"route block needs the top-level block", route("    identity_assertion: {}\n"), "needs the top-level identity_assertion"},
		{"issuer required", "identity_assertion: {keys: {source: memory}}\n" + route(""), "identity_assertion.issuer"},
		{"issuer must be a URL", "identity_assertion: {issuer: gatehouse, keys: {source: memory}}\n" + route(""), "identity_assertion.issuer"},
		{"unknown algorithm", "identity_assertion: {issuer: https://gw.example, algorithm: HS256, keys: {source: memory}}\n" + route(""), "algorithm"},
		{"store needs a seal secret", "identity_assertion: {issuer: https://gw.example}\n" + route(""), "keys.seal_secret"},
		{"short seal secret", "identity_assertion: {issuer: https://gw.example, keys: {seal_secret: short}}\n" + route(""), "keys.seal_secret"},
		{"files need files", "identity_assertion: {issuer: https://gw.example, keys: {source: files}}\n" + route(""), "keys.files"},
		{"files only with source files", "identity_assertion: {issuer: https://gw.example, keys: {source: memory, files: [k.pem]}}\n" + route(""), "keys.files"},
		{"cache not shorter than lifetime", top("  lifetime: 30s\n  cache: 30s\n") + route(""), "identity_assertion.cache"},
		{"lifetime too long", top("  lifetime: 2h\n") + route(""), "identity_assertion.lifetime"},
		{"pre_publish too short for the JWKS cache", top("  jwks: {max_age: 1h}\n") + route(""), "keys.pre_publish"},
		{"rotation shorter than pre_publish", "identity_assertion:\n  issuer: https://gw.example\n  keys: {source: memory, rotation_interval: 30m}\n" + route(""), "keys.rotation_interval"},
		{"reserved header", top("  header: Cookie\n") + route(""), "identity_assertion.header"},
		{"an identity header", top("  header: X-Auth-Subject\n") + route(""), "also an identity header"},
		{"bearer with forward_authorization", "identity_assertion: {issuer: https://gw.example, header: Authorization, keys: {source: memory}}\n" +
			route("    identity_assertion: {}\n    identity_headers: {forward_authorization: true}\n"), "forward_authorization"},
		{"not on a public route", "identity_assertion: {issuer: https://gw.example, keys: {source: memory}}\nroutes:\n  - name: p\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"builtin:echo\"]}\n    identity_assertion: {}\n", "public route"},
		{"no JWKS anywhere", top("  jwks: {path: \"\"}\n") + route(""), "jwks.path"},
		{"JWKS on the admin listener only", top("  jwks: {path: \"\", admin: true}\n") + route(""), ""},
		{"relative JWKS path", top("  jwks: {path: jwks.json}\n") + route(""), "jwks.path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one about %s", err, tc.wantErr)
			}
		})
	}
}

func TestAssertionRouteSettings(t *testing.T) {
	src := "identity_assertion: {issuer: https://gw.example, all_routes: true, keys: {source: memory}}\nroutes:\n" +
		"  - name: a\n    match: {path_prefix: /a}\n    upstream: {targets: [\"http://a.internal:8080/\"]}\n    authenticate: {methods: [api_key]}\n" +
		"  - name: b\n    match: {path_prefix: /b}\n    upstream: {targets: [\"http://b.internal\"]}\n    authenticate: {methods: [api_key]}\n    identity_assertion: {enabled: false}\n" +
		"  - name: c\n    match: {path_prefix: /c}\n    upstream: {targets: [\"http://c.internal\"]}\n    authenticate: {methods: [api_key]}\n    identity_assertion: {audience: urn:c}\n" +
		"  - name: p\n    public: true\n    match: {path_prefix: /p}\n    upstream: {targets: [\"builtin:echo\"]}\n"
	c, _, err := Parse("c.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		enabled  bool
		audience string
	}{{true, "http://a.internal:8080"}, {false, "http://b.internal"}, {true, "urn:c"}, {false, "builtin:echo"}} {
		r := &c.Routes[i]
		if c.AssertionEnabled(r) != want.enabled || AssertionAudience(r) != want.audience {
			t.Errorf("route %s: enabled %v audience %q, want %v %q", r.Name, c.AssertionEnabled(r), AssertionAudience(r), want.enabled, want.audience)
		}
	}
	a := c.IdentityAssertion
	if a.Lifetime.Std() != DefaultAssertionLifetime || a.Header != DefaultAssertionHeader || a.JWKS.Path != DefaultAssertionJWKSPath ||
		a.AssertionRetention() != DefaultAssertionLifetime+DefaultAssertionJWKSMaxAge+time.Minute {
		t.Errorf("defaults: %+v", a)
	}
}
