package login_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY" // 32 bytes, base64

const base = `identity_providers:
  - name: corp
    issuer: https://corp.example
    audiences: [api]
  - name: other
    issuer: https://other.example
    audiences: [api]
routes:
  - name: app
    match: {path_prefix: /}
    authenticate:
      methods: [session]
      session:
        keys: [` + key + `]
        clients:
          - {provider: corp, client_id: gw, client_secret: s3cret}
SESSION
    upstream: {targets: ["builtin:echo"]}
TOP`

// TestConfig: every check of the session block, with its key path.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, session, top string
		want               string // substring of the error; "": valid
	}{
		{"minimal", "", "", ""},
		{"two clients (chooser)", "        clients: [{provider: corp, client_id: gw, client_secret: s}, {provider: other, client_id: gw, client_secret: s, label: Other}]", "", ""},
		{"provider twice", "        clients: [{provider: corp, client_id: gw, client_secret: s}, {provider: corp, client_id: gw2, client_secret: s}]", "", `provider "corp" is listed twice`},
		{"no keys", "        keys: []", "", "session.keys: at least one key"},
		{"short key", "        keys: [c2hvcnQ]", "", "session.keys: "},
		{"bad store", "        store: memcached", "", "session.store"},
		{"redis without redis", "        store: redis", "", "session.store: store redis needs the top-level redis block"},
		{"redis with redis", "        store: redis", "redis: {addresses: [\"127.0.0.1:6379\"]}\n", ""},
		{"cookie name without __Host-", "        cookie_name: sess", "", "session.cookie_name: must start with __Host-"},
		{"insecure with __Host-", "        insecure_cookie: true\n        cookie_name: __Host-x", "", "a __Host- cookie needs Secure"},
		{"insecure cookie", "        insecure_cookie: true", "", ""},
		{"same paths", "        logout_path: /.gatehouse/callback", "", "same path as callback_path"},
		{"relative path", "        callback_path: callback", "", "session.callback_path: must be a clean absolute path"},
		{"dot segment", "        logout_path: /a/../b", "", "session.logout_path"},
		{"open post-logout redirect", "        post_logout_redirect: https://evil.example/", "", "session.post_logout_redirect"},
		{"scheme-relative post-logout redirect", "        post_logout_redirect: //evil.example/", "", "session.post_logout_redirect"},
		{"zero absolute timeout", "        absolute_timeout: 0s", "", "session.absolute_timeout: must be positive"},
		{"back-channel on cookies without revocation", "        backchannel_logout: true", "", "session.backchannel_logout: cookie sessions are ended"},
		{"back-channel on redis", "        store: redis\n        backchannel_logout: true", "redis: {addresses: [\"127.0.0.1:6379\"]}\n", ""},
		{"unknown option", "        bogus: 1", "", `unknown key "bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := base
			switch {
			case strings.HasPrefix(tc.session, "        keys:"):
				y = strings.Replace(y, "        keys: ["+key+"]\n", "", 1)
			case strings.HasPrefix(tc.session, "        clients:"):
				y = strings.Replace(y, "        clients:\n          - {provider: corp, client_id: gw, client_secret: s3cret}\n", "", 1)
			}
			y = strings.Replace(strings.Replace(y, "SESSION\n", tc.session+"\n", 1), "TOP", tc.top, 1)
			_, _, err := config.Parse("gatehouse.yaml", []byte(y), func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && err == nil:
				t.Fatal("accepted")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error\n%v\nlacks %q", err, tc.want)
			}
		})
	}
}

// TestConfigClients: the checks of a client entry.
func TestConfigClients(t *testing.T) {
	for _, tc := range []struct{ name, client, want string }{
		{"unknown provider", "{provider: nope, client_id: gw, client_secret: s}", `clients[0].provider: unknown identity provider "nope"`},
		{"no client id", "{provider: corp, client_secret: s}", "clients[0].client_id: is required"},
		{"no secret", "{provider: corp, client_id: gw}", "clients[0].client_secret: a client secret"},
		{"secret and file", "{provider: corp, client_id: gw, client_secret: s, client_secret_file: /x}", "give client_secret or client_secret_file, not both"},
		{"public client", "{provider: corp, client_id: gw, token_auth_method: none}", ""},
		{"public client with secret", "{provider: corp, client_id: gw, token_auth_method: none, client_secret: s}", "token_auth_method none sends no secret"},
		{"no openid", "{provider: corp, client_id: gw, client_secret: s, scopes: [email]}", "must contain openid"},
		{"bad scope", "{provider: corp, client_id: gw, client_secret: s, scopes: [openid, \"a b\"]}", "is not a scope token"},
		{"http endpoint", "{provider: corp, client_id: gw, client_secret: s, authorization_endpoint: \"http://corp.example/a\", token_endpoint: \"https://corp.example/t\"}", "must be an https URL"},
		{"authorization without token endpoint", "{provider: corp, client_id: gw, client_secret: s, authorization_endpoint: \"https://corp.example/a\"}", "give authorization_endpoint and token_endpoint together"},
		{"explicit endpoints", "{provider: corp, client_id: gw, client_secret: s, authorization_endpoint: \"https://corp.example/a\", token_endpoint: \"https://corp.example/t\"}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(strings.Replace(base, "{provider: corp, client_id: gw, client_secret: s3cret}", tc.client, 1), "SESSION\n", "", 1)
			y = strings.Replace(y, "TOP", "", 1)
			_, _, err := config.Parse("gatehouse.yaml", []byte(y), func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && err == nil:
				t.Fatal("accepted")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error\n%v\nlacks %q", err, tc.want)
			}
		})
	}
}
