package config

import (
	"strings"
	"testing"
)

const idpYAML = `
identity_providers:
  - name: idp
    issuer: https://idp.example.com
    audiences: [api]
`

// TestServedRouteValidation: exactly one of upstream and direct_response,
// and protected_resource checked, each error at its key path.
func TestServedRouteValidation(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // each must appear, in order; none: valid
	}{
		{"direct response", `
routes:
  - name: health
    public: true
    match: {path: /healthz}
    direct_response: {body: "ok"}
`, nil},
		{"neither", `
routes:
  - name: a
    public: true
    match: {path: /a}
`, []string{`c.yaml:3:5: routes[0].upstream: required: set upstream (proxied) or direct_response (served by the gateway)`}},
		{"both", `
routes:
  - name: a
    public: true
    match: {path: /a}
    upstream: {targets: ["builtin:echo"]}
    direct_response: {status: 204}
`, []string{`c.yaml:3:5: routes[0]: set either upstream (proxied) or direct_response (served by the gateway), not both`}},
		{"bad status, body with 204, bad headers", `
routes:
  - name: a
    public: true
    match: {path: /a}
    direct_response:
      status: 99
      headers: {Content-Length: "3", "X-Bad": "a` + "\\r\\n" + `b", Location: "//evil.example"}
  - name: b
    public: true
    match: {path: /b}
    direct_response: {status: 204, body: x}
`, []string{
			`c.yaml:7:15: routes[0].direct_response.status: 99: must be 200 to 599`,
			`routes[0].direct_response.headers.Content-Length: Content-Length is set by the gateway`,
			`routes[0].direct_response.headers.X-Bad: the value must not contain control characters`,
			`routes[0].direct_response.headers.Location: "//evil.example": a Location must be an absolute http(s) URL`,
			`routes[1].direct_response.body: a 204 response has no body`,
		}},
		{"websocket on a direct response", `
routes:
  - name: a
    public: true
    websocket: true
    match: {path: /a}
    direct_response: {}
`, []string{`routes[0].websocket: a direct_response route has no upstream to upgrade to`}},
		{"protected resource ok", idpYAML + `
protected_resource_metadata: {resource_name: API}
routes:
  - name: a
    authenticate: {methods: [jwt]}
    match: {path_prefix: /a}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "https://api.example.com/a", scopes_supported: [a.read]}
`, nil},
		{"protected resource errors", idpYAML + `
protected_resource_metadata: {resource_documentation: "ftp://x"}
routes:
  - name: a
    public: true
    match: {path_prefix: /a}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "http://api.example.com/a?x=1", scopes_supported: ["a b"]}
  - name: b
    authenticate: {methods: [api_key]}
    match: {path_prefix: /b}
    upstream: {targets: ["builtin:echo"]}
    protected_resource: {resource: "https://api.example.com/b#f"}
`, []string{
			`protected_resource_metadata.resource_documentation: "ftp://x": the scheme must be https`,
			`routes[0].protected_resource: a public route is no protected resource (set authenticate)`,
			`routes[0].protected_resource.resource: "http://api.example.com/a?x=1": the scheme must be https`,
			`routes[0].protected_resource.scopes_supported[0]: "a b" is not a scope`,
			`routes[1].protected_resource.authorization_servers: required: the route accepts no identity provider`,
			`routes[1].protected_resource.resource: "https://api.example.com/b#f": no credentials, query or fragment`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error, got none")
			}
			out := err.Error()
			rest := out
			for _, want := range tc.want {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("missing (or out of order) %q in:\n%s", want, out)
				}
				rest = rest[i+len(want):]
			}
		})
	}
}

func TestMetadataPath(t *testing.T) {
	for _, tc := range []struct{ resource, path, full string }{
		{"https://api.example.com", "/.well-known/oauth-protected-resource", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "/.well-known/oauth-protected-resource", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/orders", "/.well-known/oauth-protected-resource/orders", "https://api.example.com/.well-known/oauth-protected-resource/orders"},
		{"https://api.example.com:8443/a/b/", "/.well-known/oauth-protected-resource/a/b", "https://api.example.com:8443/.well-known/oauth-protected-resource/a/b"},
	} {
		path, full, err := MetadataPath(tc.resource)
		if err != nil || path != tc.path || full != tc.full {
			t.Errorf("MetadataPath(%q) = %q, %q, %v; want %q, %q", tc.resource, path, full, err, tc.path, tc.full)
		}
	}
}
