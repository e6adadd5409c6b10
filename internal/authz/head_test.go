package authz

import (
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// TestHeadIsAuthorizedAsGet: a HEAD request is authorized exactly as the
// GET to the same resource (RFC 9110 §9.3.2), unless the policy names HEAD.
func TestHeadIsAuthorizedAsGet(t *testing.T) {
	reader := user(nil)
	nobody := user(func(id *identity.Identity) { id.Roles, id.Scopes = nil, nil })
	for _, tc := range []struct {
		name   string
		spec   Spec
		id     *identity.Identity
		reason Reason
		rule   string
	}{
		{"GET scope rule applies to HEAD",
			Spec{Methods: []MethodRule{{Methods: []string{"GET"}, Scopes: ScopeRule{AllOf: []string{"reports:read"}}}}},
			reader, ReasonScopeMissing, "methods[0].scopes.all_of"},
		{"GET rule, lower-case in config",
			Spec{Methods: []MethodRule{{Methods: []string{"get"}, Roles: ListRule{AnyOf: []string{"auditor"}}}}},
			reader, ReasonRoleMissing, "methods[0].roles.any_of"},
		{"first GET rule, as for GET",
			Spec{Methods: []MethodRule{{Methods: []string{"POST"}, Roles: ListRule{AllOf: []string{"w"}}}, {Methods: []string{"GET"}, Roles: ListRule{AllOf: []string{"r2"}}}, {Methods: []string{"GET"}, Roles: ListRule{AllOf: []string{"never"}}}}},
			reader, ReasonRoleMissing, "methods[1].roles.all_of"},
		{"a rule naming HEAD wins over the GET rule",
			Spec{Methods: []MethodRule{{Methods: []string{"GET"}, Roles: ListRule{AllOf: []string{"never"}}}, {Methods: []string{"HEAD"}, Roles: ListRule{AnyOf: []string{"reader"}}}}},
			reader, ReasonOK, ""},
		{"HEAD rule denies",
			Spec{Methods: []MethodRule{{Methods: []string{"GET", "HEAD"}, Roles: ListRule{AnyOf: []string{"reader"}}}}},
			nobody, ReasonRoleMissing, "methods[0].roles.any_of"},
		{"GET method expression applies",
			Spec{Methods: []MethodRule{{Methods: []string{"GET"}, Expression: `"admin" in identity.roles`}}},
			reader, ReasonExpressionFalse, "methods[0].expression"},
		{"expression sees GET for HEAD",
			Spec{Expression: `request.method != "GET" || "admin" in identity.roles`},
			reader, ReasonExpressionFalse, "expression"},
		{"expression sees GET: allow-list of GET",
			Spec{Expression: `request.method in ["GET", "POST"]`},
			reader, ReasonOK, ""},
		{"expression naming HEAD sees HEAD",
			Spec{Expression: `request.method == "HEAD"`},
			reader, ReasonOK, ""},
		{"expression naming head in lower case sees HEAD",
			Spec{Expression: `request.method.lowerAscii() == "head"`},
			reader, ReasonOK, ""},
		{"one expression names HEAD, the other still sees GET",
			Spec{Expression: `request.method != "HEAD"`, Methods: []MethodRule{{Methods: []string{"GET"}, Expression: `request.method == "GET"`}}},
			reader, ReasonExpressionFalse, "expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.spec)
			d := p.Evaluate(input(tc.id, "HEAD"))
			if d.Allow != (tc.reason == ReasonOK) || d.Reason != tc.reason || d.Rule != tc.rule {
				t.Fatalf("HEAD: allow=%v %s at %q, want %s at %q", d.Allow, d.Reason, d.Rule, tc.reason, tc.rule)
			}
			if e := p.Explain(input(tc.id, "HEAD")); e.Allow != d.Allow || e.Reason != d.Reason || e.Rule != d.Rule {
				t.Fatalf("Explain disagrees: %+v", e)
			}
		})
	}
}

func TestReads(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want Reads
	}{
		{"none", Spec{Expression: `identity.subject == "x"`}, Reads{}},
		{"index", Spec{Expression: `request.headers["x-tenant"] == identity.claims.tenant`}, Reads{Headers: []string{"x-tenant"}}},
		{"presence and index", Spec{Expression: `"x-tenant" in request.headers && request.headers["x-tenant"] == "a"`}, Reads{Headers: []string{"x-tenant"}}},
		{"upper-case key is folded", Spec{Expression: `request.headers["X-Tenant"] == "a"`}, Reads{Headers: []string{"x-tenant"}}},
		{"select and has", Spec{Expression: `has(request.query.page) && request.query.page == "1"`}, Reads{Query: []string{"page"}}},
		{"index form of request", Spec{Expression: `request["query"]["a"] == "1" && request["headers"]["b"] == "2"`}, Reads{Headers: []string{"b"}, Query: []string{"a"}}},
		{"computed key", Spec{Expression: `request.headers[identity.subject] == "x"`}, Reads{AnyHeader: true}},
		{"iteration", Spec{Expression: `request.query.exists(k, k == "debug")`}, Reads{AnyQuery: true}},
		{"whole map", Spec{Expression: `size(request.headers) < 50`}, Reads{AnyHeader: true}},
		{"request itself", Spec{Expression: `"x" in request`}, Reads{AnyHeader: true, AnyQuery: true}},
		{"other request fields read nothing ambiguous", Spec{Expression: `request.path.startsWith("/a") && request.method == "GET" && request.path_params.id == "1"`}, Reads{}},
		{"method rules merged", Spec{Expression: `request.query.a == "1"`, Methods: []MethodRule{{Methods: []string{"GET"}, Expression: `request.headers["x-b"] == "1" && request.query.a == "1"`}}},
			Reads{Headers: []string{"x-b"}, Query: []string{"a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.spec).Reads()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Reads() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
