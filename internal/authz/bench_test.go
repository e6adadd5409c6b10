package authz

import (
	"testing"
)

func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range []struct {
		name string
		spec Spec
	}{
		{"scopes", Spec{Scopes: ScopeRule{AllOf: []string{"orders:read"}, AnyOf: []string{"profile", "admin"}}}},
		{"rules+methods", Spec{
			Scopes:  ScopeRule{AllOf: []string{"orders:read"}},
			Roles:   ListRule{AnyOf: []string{"reader", "writer"}},
			Groups:  GroupRule{Deny: []string{"suspended"}},
			Claims:  map[string][]string{"tenant": {"acme"}},
			Methods: []MethodRule{{Methods: []string{"POST"}, Roles: ListRule{AllOf: []string{"writer"}}}, {Methods: []string{"GET"}, Roles: ListRule{AllOf: []string{"reader"}}}},
		}},
		{"cel_identity", Spec{Expression: `"reader" in identity.roles && identity.subject == "u1"`}},
		{"cel_request", Spec{Expression: `request.path_params.id == identity.subject || "admin" in identity.roles`}},
		{"cel_headers", Spec{Expression: `request.headers["x-tenant"] == identity.claims.tenant && now < identity.expires_at`}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := mustCompile(b, bc.spec)
			in := input(user(nil), "GET")
			if d := p.Evaluate(in); !d.Allow {
				b.Fatalf("%+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Evaluate(in)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile("b", Spec{Expression: `request.path_params.id == identity.subject || "admin" in identity.roles`}); err != nil {
			b.Fatal(err)
		}
	}
}
