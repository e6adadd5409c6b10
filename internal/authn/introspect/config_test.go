package introspect_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

const twoProviders = `identity_providers:
  - name: a
    issuer: https://a.example
    audiences: [api]
    introspection: {client_id: gw, client_secret: s3cret}
  - name: b
    issuer: https://b.example
    audiences: [api]
    introspection: {client_id: gw, client_secret: s3cret}
  - name: c
    issuer: https://c.example
    audiences: [api]
routes:
  - name: r
    match: {path_prefix: /}
    authenticate:
      methods: [introspection]
    upstream: {targets: ["http://127.0.0.1:1"]}
`

// TestConfig: the route's introspecting provider is unambiguous, the
// options are checked, and so is the provider's block.
func TestConfig(t *testing.T) {
	route := func(auth string) string {
		return strings.Replace(twoProviders, "      methods: [introspection]\n", auth, 1)
	}
	provider := func(block string) string {
		return strings.Replace(twoProviders, "introspection: {client_id: gw, client_secret: s3cret}\n  - name: b", block+"\n  - name: b", 1)
	}
	for _, tc := range []struct {
		name string
		yaml string
		want string // substring of the error; "": valid
	}{
		{"two introspecting providers, none named", twoProviders,
			"routes[0].authenticate.introspection.provider: several providers introspect (a, b)"},
		{"provider named", route("      methods: [introspection]\n      introspection: {provider: b}\n"), ""},
		{"providers narrows to one", route("      methods: [introspection]\n      providers: [a, c]\n"), ""},
		{"providers with only introspection is accepted", route("      methods: [introspection]\n      providers: [b]\n"), ""},
		{"no introspecting provider among providers", route("      methods: [introspection]\n      providers: [c]\n"),
			"routes[0].authenticate.methods: introspection needs an identity provider with an introspection block"},
		{"named provider without introspection", route("      methods: [introspection]\n      introspection: {provider: c}\n"),
			`identity provider "c" has no introspection block`},
		{"named provider unknown", route("      methods: [introspection]\n      introspection: {provider: z}\n"),
			`unknown identity provider "z"`},
		{"named provider outside providers", route("      methods: [introspection]\n      providers: [a]\n      introspection: {provider: b}\n"),
			`"b" is not among the route's providers`},
		{"confirm_jwt in an OR chain with jwt", route("      methods: [jwt, introspection]\n      introspection: {provider: a, confirm_jwt: true}\n"),
			"confirm_jwt needs require_all: true"},
		{"confirm_jwt in an AND chain", route("      methods: [jwt, introspection]\n      require_all: true\n      introspection: {provider: a, confirm_jwt: true}\n"), ""},
		{"AND chain with jwt, no confirm_jwt", route("      methods: [jwt, introspection]\n      require_all: true\n      introspection: {provider: a}\n"),
			"require_all with jwt and introspection needs introspection.confirm_jwt: true"},
		{"block without the method", route("      methods: [jwt]\n      introspection: {provider: a}\n"),
			"applies to the introspection method, which is not listed"},
		{"unknown option", route("      methods: [introspection]\n      introspection: {provider: a, bogus: 1}\n"), `unknown key "bogus"`},
		{"client_id required", provider("introspection: {client_secret: s3cret}"),
			"identity_providers[0].introspection.client_id: required"},
		{"secret required", provider("introspection: {client_id: gw}"),
			"identity_providers[0].introspection.client_secret: required for client_secret_basic"},
		{"private key required", provider("introspection: {client_id: gw, client_auth: private_key_jwt}"),
			"identity_providers[0].introspection.private_key_file: required for private_key_jwt"},
		{"unknown client auth", provider("introspection: {client_id: gw, client_auth: tls_client_auth, client_secret: x}"),
			`"tls_client_auth" is not one of`},
		{"http endpoint", provider("introspection: {client_id: gw, client_secret: x, endpoint: \"http://a.example/i\"}"),
			"identity_providers[0].introspection.endpoint"},
		{"zero timeout", provider("introspection: {client_id: gw, client_secret: x, timeout: 0s}"),
			"identity_providers[0].introspection.timeout: must be greater than 0"},
		{"assertion audience without private_key_jwt", provider("introspection: {client_id: gw, client_secret: x, assertion_audience: y}"),
			"assertion_audience: applies to private_key_jwt only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := config.Parse("gatehouse.yaml", []byte(tc.yaml), func(string) (string, bool) { return "", false })
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
