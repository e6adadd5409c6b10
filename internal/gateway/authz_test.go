package gateway

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestAuthorizationThroughGateway enforces policies on tokens from a real
// provider: scopes (403 insufficient_scope), per-method roles, CEL over
// path parameters, a group deny list; the deciding rule is audited.
func TestAuthorizationThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+`policies:
  readers:
    scopes: {all_of: [orders:read]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [jwt]}
    policy: readers
    upstream: {targets: ["`+up.URL+`"]}
  - name: users
    match: {path: "/users/{id}"}
    authenticate: {methods: [jwt]}
    authorize:
      groups: {deny: [suspended]}
      methods:
        - methods: [DELETE]
          roles: {any_of: [admin]}
      expression: 'request.path_params.id == identity.subject || "admin" in identity.roles'
    upstream: {targets: ["`+up.URL+`"]}
`).serve()
	tg.waitReady(t)

	tok := func(sub string, scope string, roles []string, groups []string) string {
		claims := map[string]any{"sub": sub, "realm_access": map[string]any{"roles": roles}}
		if scope != "" {
			claims["scope"] = scope
		}
		if groups != nil {
			claims["groups"] = groups
		}
		return idp.Mint(t, claims)
	}
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		challenge, reason, rule   string
	}{
		{"scope present", "GET", "/orders/1", tok("u1", "orders:read", nil, nil), 200, "", "", ""},
		{"scope missing", "GET", "/orders/1", tok("u1", "profile", nil, nil), 403,
			`Bearer realm="gatehouse", error="insufficient_scope", scope="orders:read"`, "scope_missing", "scopes.all_of"},
		{"own record", "GET", "/users/u1", tok("u1", "", nil, nil), 200, "", "", ""},
		{"someone else's record", "GET", "/users/u2", tok("u1", "", nil, nil), 403, "", "expression_false", "expression"},
		{"admin reads anyone", "GET", "/users/u2", tok("boss", "", []string{"admin"}, nil), 200, "", "", ""},
		{"delete needs admin", "DELETE", "/users/u1", tok("u1", "", nil, nil), 403, "", "role_missing", "methods[0].roles.any_of"},
		{"admin deletes", "DELETE", "/users/u1", tok("boss", "", []string{"admin"}, nil), 200, "", "", ""},
		{"suspended group denied", "GET", "/users/u1", tok("u1", "", nil, []string{"suspended"}), 403, "", "group_denied", "groups.deny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tg.url+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			res, body := do(t, req)
			if tc.status == 200 {
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				return
			}
			problemBody(t, res, body, 403, "forbidden")
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			evs := tg.auditEvents(t)
			last := evs[len(evs)-1]
			if last["event"] != "authz.decision" || last["outcome"] != "deny" || last["reason"] != tc.reason || last["rule"] != tc.rule {
				t.Fatalf("audit %v, want %s at %s", last, tc.reason, tc.rule)
			}
		})
	}
}
