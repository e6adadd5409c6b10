package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// TestClaimMappings checks the claim shapes of common identity providers.
func TestClaimMappings(t *testing.T) {
	k := keys()
	for _, tc := range []struct {
		name    string
		mapping Mapping
		claims  map[string]any
		check   func(t *testing.T, got mapped)
	}{
		{
			name:    "Keycloak realm roles",
			mapping: Mapping{Roles: "realm_access.roles", Groups: "groups"},
			claims: map[string]any{
				"azp": "web-app", "scope": "openid profile email",
				"realm_access":    map[string]any{"roles": []string{"offline_access", "admin"}},
				"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account"}}},
				"groups":          []string{"/staff"},
			},
			check: func(t *testing.T, got mapped) {
				want(t, got.ClientID, "web-app")
				want(t, got.Scopes, []string{"openid", "profile", "email"})
				want(t, got.Roles, []string{"offline_access", "admin"})
				want(t, got.Groups, []string{"/staff"})
			},
		},
		{
			name:    "Keycloak client roles, deeper path",
			mapping: Mapping{Roles: "resource_access.account.roles"},
			claims:  map[string]any{"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account"}}}},
			check:   func(t *testing.T, got mapped) { want(t, got.Roles, []string{"manage-account"}) },
		},
		{
			name:    "Okta groups and scp array",
			mapping: Mapping{Groups: "groups"},
			claims:  map[string]any{"cid": "0oa1", "scp": []string{"openid", "orders:read"}, "groups": []string{"Everyone", "Admins"}},
			check: func(t *testing.T, got mapped) {
				want(t, got.Scopes, []string{"openid", "orders:read"})
				want(t, got.Groups, []string{"Everyone", "Admins"})
				want(t, got.ClientID, "")
			},
		},
		{
			name:    "Okta cid as client id",
			mapping: Mapping{ClientID: "cid"},
			claims:  map[string]any{"cid": "0oa1", "client_id": "ignored"},
			check:   func(t *testing.T, got mapped) { want(t, got.ClientID, "0oa1") },
		},
		{
			name:    "Entra ID roles, scp string, oid subject",
			mapping: Mapping{Subject: "oid", Roles: "roles", Claims: map[string]string{"tenant": "tid"}},
			claims: map[string]any{
				"oid": "00000000-0000-0000-0000-000000000001", "azp": "app-id", "scp": "User.Read Mail.Send",
				"roles": []string{"Task.Write"}, "tid": "tenant-1",
			},
			check: func(t *testing.T, got mapped) {
				want(t, got.Subject, "00000000-0000-0000-0000-000000000001")
				want(t, got.ClientID, "app-id")
				want(t, got.Scopes, []string{"User.Read", "Mail.Send"})
				want(t, got.Roles, []string{"Task.Write"})
				want(t, got.Claims, map[string]any{"tenant": "tenant-1"})
			},
		},
		{
			name:    "Cognito groups and scope string",
			mapping: Mapping{Groups: "cognito:groups", Claims: map[string]string{"username": "username"}},
			claims: map[string]any{
				"client_id": "cognito-client", "scope": "aws.cognito.signin.user.admin orders/read",
				"cognito:groups": []string{"admins", "ops"}, "username": "alice",
			},
			check: func(t *testing.T, got mapped) {
				want(t, got.ClientID, "cognito-client")
				want(t, got.Scopes, []string{"aws.cognito.signin.user.admin", "orders/read"})
				want(t, got.Groups, []string{"admins", "ops"})
				want(t, got.Claims, map[string]any{"username": "alice"})
			},
		},
		{
			name:    "scope takes precedence over scp",
			mapping: Mapping{},
			claims:  map[string]any{"scope": "a b", "scp": []string{"c"}},
			check:   func(t *testing.T, got mapped) { want(t, got.Scopes, []string{"a", "b"}) },
		},
		{
			name:    "explicit scopes path",
			mapping: Mapping{Scopes: []string{"permissions"}},
			claims:  map[string]any{"scope": "a", "permissions": []string{"read:orders"}},
			check:   func(t *testing.T, got mapped) { want(t, got.Scopes, []string{"read:orders"}) },
		},
		{
			name:    "Auth0: permissions first",
			mapping: Mapping{Scopes: []string{"permissions", "scope"}},
			claims:  map[string]any{"scope": "openid profile", "permissions": []string{"read:orders", "write:orders"}},
			check:   func(t *testing.T, got mapped) { want(t, got.Scopes, []string{"read:orders", "write:orders"}) },
		},
		{
			name:    "Auth0: scope when permissions is absent",
			mapping: Mapping{Scopes: []string{"permissions", "scope"}},
			claims:  map[string]any{"scope": "read:orders openid"},
			check:   func(t *testing.T, got mapped) { want(t, got.Scopes, []string{"read:orders", "openid"}) },
		},
		{
			// A present but empty preferred claim is the answer: no
			// fallback to a claim the user did not get permissions from.
			name:    "Auth0: empty permissions does not fall back",
			mapping: Mapping{Scopes: []string{"permissions", "scope"}},
			claims:  map[string]any{"scope": "read:orders", "permissions": []string{}},
			check:   func(t *testing.T, got mapped) { want(t, len(got.Scopes), 0) },
		},
		{
			name:    "URL-named claims (Auth0 namespaced)",
			mapping: Mapping{Roles: "https://example.com/roles", Claims: map[string]string{"plan": "https://example.com/app.plan", "org": "https://example.com/org_id"}},
			claims: map[string]any{
				"https://example.com/roles":  []string{"editor"},
				"https://example.com/app":    map[string]any{"plan": "gold"},
				"https://example.com/org_id": "org-7",
			},
			check: func(t *testing.T, got mapped) {
				want(t, got.Roles, []string{"editor"})
				want(t, got.Claims, map[string]any{"plan": "gold", "org": "org-7"})
			},
		},
		{
			name:    "literal dotted key wins over nesting",
			mapping: Mapping{Roles: "a.b"},
			claims:  map[string]any{"a.b": []string{"literal"}, "a": map[string]any{"b": []string{"nested"}}},
			check:   func(t *testing.T, got mapped) { want(t, got.Roles, []string{"literal"}) },
		},
		{
			name:    "single string role, non-string elements skipped",
			mapping: Mapping{Roles: "role", Groups: "groups"},
			claims:  map[string]any{"role": "admin", "groups": []any{"g1", 2, nil, "", map[string]any{}, "g2"}},
			check: func(t *testing.T, got mapped) {
				want(t, got.Roles, []string{"admin"})
				want(t, got.Groups, []string{"g1", "g2"})
			},
		},
		{
			name:    "missing role claim path",
			mapping: Mapping{Roles: "realm_access.roles"},
			claims:  map[string]any{"realm_access": "not an object"},
			check:   func(t *testing.T, got mapped) { want(t, got.Roles, []string(nil)) },
		},
		{
			name: "claim types copied",
			mapping: Mapping{Claims: map[string]string{
				"email": "email", "verified": "email_verified", "n": "n", "big": "big", "f": "f", "list": "list",
				"mixed": "mixed", "obj": "obj", "absent": "absent", "null": "null", "nested": "address.country",
			}},
			claims: map[string]any{
				"email": "a@example.com", "email_verified": true, "n": 42, "big": json.Number("9007199254740993"), "f": 1.5,
				"list": []string{"x", "y"}, "mixed": []any{"x", 1, false}, "obj": map[string]any{"a": 1},
				"null": nil, "address": map[string]any{"country": "NZ"},
			},
			check: func(t *testing.T, got mapped) {
				want(t, got.Claims, map[string]any{
					"email": "a@example.com", "verified": true, "n": int64(42), "big": int64(9007199254740993), "f": 1.5,
					"list": []any{"x", "y"}, "mixed": []any{"x", int64(1), false}, "nested": "NZ",
				})
			},
		},
		{
			name:    "numeric subject",
			mapping: Mapping{Subject: "uid"},
			claims:  map[string]any{"uid": 12345678901234567},
			check:   func(t *testing.T, got mapped) { want(t, got.Subject, "12345678901234567") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(p *Provider) { p.Mapping = tc.mapping })
			c := claims(issA, nil)
			for k, v := range tc.claims {
				c[k] = v
			}
			if _, ok := tc.claims["null"]; ok {
				c["null"] = json.RawMessage("null")
			}
			id, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", c))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, mapped{id.Subject, id.ClientID, id.Scopes, id.Roles, id.Groups, id.Claims})
		})
	}
}

type mapped struct {
	Subject, ClientID     string
	Scopes, Roles, Groups []string
	Claims                map[string]any
}

func want[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestLookup(t *testing.T) {
	var c map[string]any
	if err := json.Unmarshal([]byte(`{
		"a": {"b": {"c": 1}},
		"a.b": {"d": 2},
		"x.y": {"z.w": 3},
		"https://e.com/ns": {"k": 4},
		"nil": null,
		"arr": [1]
	}`), &c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"a.b.c", 1.0},
		{"a.b.d", 2.0},
		{"x.y.z.w", 3.0},
		{"https://e.com/ns.k", 4.0},
		{"nil", nil},
		{"arr.0", nil},
		{"a.", nil},
		{".a", nil},
		{"", nil},
		{"missing.path", nil},
	} {
		if got := lookup(c, tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("lookup(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// TestKeyBinding: a token's cnf confirmation (RFC 7800) becomes the
// identity's key binding; a malformed one is not taken; a cnf that is not
// an object refuses the token (token_malformed: no binding can be checked).
func TestKeyBinding(t *testing.T) {
	t.Run("cnf not an object", func(t *testing.T) {
		f := newFixture(t, nil)
		c := claims(issA, nil)
		c["cnf"] = "x5t"
		_, err := f.v.Verify(context.Background(), sign(t, jose.RS256, keys().rsaA, "rsa", c))
		var fail *authn.Failure
		if !errors.As(err, &fail) || fail.Reason != authn.ReasonMalformed {
			t.Fatalf("err %v, want token_malformed", err)
		}
	})
	k := keys()
	const thumb = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" // 43 base64url characters
	for _, tc := range []struct {
		name string
		cnf  any
		want identity.KeyBinding
	}{
		{"none", nil, identity.KeyBinding{}},
		{"certificate (RFC 8705)", map[string]any{"x5t#S256": thumb}, identity.KeyBinding{Kind: "x5t#S256", Value: thumb}},
		{"DPoP key (RFC 9449)", map[string]any{"jkt": thumb}, identity.KeyBinding{Kind: "jkt", Value: thumb}},
		{"both: the certificate first", map[string]any{"jkt": thumb, "x5t#S256": thumb}, identity.KeyBinding{Kind: "x5t#S256", Value: thumb}},
		{"not a SHA-256 thumbprint", map[string]any{"jkt": "short"}, identity.KeyBinding{Kind: identity.KeyBindingInvalid}},      // refused by every binding check
		{"not base64url", map[string]any{"jkt": strings.Repeat("+", 43)}, identity.KeyBinding{Kind: identity.KeyBindingInvalid}}, // refused by every binding check
		{"not a string", map[string]any{"jkt": 42}, identity.KeyBinding{Kind: identity.KeyBindingInvalid}},                       // refused by every binding check
		{"unknown confirmation method", map[string]any{"jwk": map[string]any{"kty": "EC"}}, identity.KeyBinding{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			c := claims(issA, nil)
			if tc.cnf != nil {
				c["cnf"] = tc.cnf
			}
			id, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", c))
			if err != nil {
				t.Fatal(err)
			}
			if id.KeyBinding != tc.want {
				t.Fatalf("key binding %+v, want %+v", id.KeyBinding, tc.want)
			}
			if ev := id.Credential(); ev.KeyBinding != tc.want {
				t.Fatalf("evidence %+v", ev)
			}
		})
	}
}
