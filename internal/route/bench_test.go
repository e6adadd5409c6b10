package route

import (
	"fmt"
	"testing"
)

// benchSpecs is a 50-route table of the shape a real gateway has: a few
// API hosts with CRUD routes, tenant wildcards, shared routes and a
// catch-all last in precedence.
func benchSpecs() []Spec {
	var specs []Spec
	for _, host := range []string{"api.example.com", "billing.example.com", "admin.example.com"} {
		for _, res := range []string{"users", "orders", "invoices", "products"} {
			specs = append(specs,
				Spec{Hosts: []string{host}, Path: "/v1/" + res, Methods: []string{"GET", "POST"}},
				Spec{Hosts: []string{host}, Path: "/v1/" + res + "/{id}", Methods: []string{"GET", "PUT", "DELETE"}},
				Spec{Hosts: []string{host}, Path: "/v1/" + res + "/{id}/history", Methods: []string{"GET"}},
			)
		}
	}
	for i := range 6 {
		specs = append(specs, Spec{Hosts: []string{fmt.Sprintf("*.tenant%d.example.com", i)}, Path: "/app", Prefix: true})
	}
	specs = append(specs,
		Spec{Path: "/healthz", Methods: []string{"GET", "HEAD"}},
		Spec{Path: "/static/", Prefix: true, Methods: []string{"GET", "HEAD"}},
		Spec{Path: "/.well-known/", Prefix: true, Methods: []string{"GET"}},
		Spec{Hosts: []string{"www.example.com"}, Path: "/", Prefix: true},
		Spec{Path: "/legacy", Prefix: true},
		Spec{Path: "/api/v2/search", Methods: []string{"POST"}},
		Spec{Path: "/api/v2/{resource}", Methods: []string{"GET"}},
		Spec{Path: "/api/v2/{resource}/{id}", Methods: []string{"GET"}},
	)
	return specs
}

func BenchmarkMatch(b *testing.B) {
	specs := benchSpecs()
	if len(specs) != 50 {
		b.Fatalf("%d routes, want 50", len(specs))
	}
	tab := newIndexTable(b, specs)
	for _, bc := range []struct {
		name, host, path, method string
		status                   Status
	}{
		{"exact-host-literal", "api.example.com", "/v1/invoices", "GET", Matched},
		{"exact-host-param", "billing.example.com:443", "/v1/products/1234", "PUT", Matched},
		{"any-host-params", "gw.example.net", "/api/v2/widgets/77", "GET", Matched},
		{"wildcard-prefix", "eu.tenant5.example.com", "/app/dashboard/settings", "GET", Matched},
		{"any-host-prefix", "gw.example.net", "/static/css/site.css", "GET", Matched},
		{"upper-case-host", "API.Example.COM", "/v1/users", "GET", Matched},
		{"not-found", "gw.example.net", "/nothing/here", "GET", NotFound},
		{"method-not-allowed", "api.example.com", "/v1/users/1/history", "POST", MethodNotAllowed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := tab.Match(bc.host, bc.path, bc.method); got.Status != bc.status {
				b.Fatalf("status %v, want %v", got.Status, bc.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(bc.host, bc.path, bc.method)
			}
		})
	}
}
