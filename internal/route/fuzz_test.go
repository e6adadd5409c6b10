package route

import (
	"maps"
	"strings"
	"testing"
)

// FuzzMatch throws arbitrary Host headers, paths and methods at a fixed
// table. Match must never panic, must agree with the naive reference, and a
// Matched result must name a route whose spec really matches the request.
func FuzzMatch(f *testing.F) {
	for _, tc := range precedenceCases {
		f.Add(tc.host, tc.path, tc.method)
	}
	f.Add("[", "/users/{id}", "")
	f.Add("a.example.com:", "/static//", "GET")
	tab := newIndexTable(f, precedenceSpecs)
	f.Fuzz(func(t *testing.T, host, path, method string) {
		got := tab.Match(host, path, method)
		want := refMatch(precedenceSpecs, host, path, method)
		if got.Index != want.index || got.Status != want.status || got.Allow != want.allow || !maps.Equal(paramsMap(got.Params), want.params) {
			t.Fatalf("Match(%q, %q, %q) = %d %v %q %v; reference %d %v %q %v",
				host, path, method, got.Index, got.Status, got.Allow, got.Params,
				want.index, want.status, want.allow, want.params)
		}
		if got.Status != Matched {
			return
		}
		s := precedenceSpecs[got.Index]
		if !specMatches(s, host, path, method) {
			t.Fatalf("Match(%q, %q, %q) returned route %d %+v, which does not match", host, path, method, got.Index, s)
		}
		for _, p := range got.Params {
			if p.Value == "" || strings.Contains(p.Value, "/") || !strings.Contains(path, p.Value) {
				t.Fatalf("bad param %+v for path %q", p, path)
			}
		}
	})
}

// specMatches checks one spec against a request, independently of both
// the table and the reference's precedence logic.
func specMatches(s Spec, host, path, method string) bool {
	hostOK := len(s.Hosts) == 0
	h := refCanonicalHost(host)
	for _, c := range s.Hosts {
		if _, ok := refHostRank(c, h); ok {
			hostOK = true
		}
	}
	methodOK := len(s.Methods) == 0
	for _, m := range s.Methods {
		methodOK = methodOK || m == method || m == "GET" && method == "HEAD"
	}
	_, pathOK := refPathMatch(s.Path, s.Prefix, path)
	return hostOK && methodOK && pathOK
}

// FuzzParsePath checks that ParsePath never panics and that every pattern
// it accepts matches the path obtained by filling in its parameters.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/a/", "/users/{id}", "/{a}/{a}", "//", "/{", "/a/../b", "/\xff", "/a%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		p, err := ParsePath(pattern)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "route: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		var path strings.Builder
		for _, s := range p.segs {
			path.WriteString("/")
			if s.param {
				path.WriteString("v")
			} else {
				path.WriteString(s.lit)
			}
		}
		if p.trailing {
			path.WriteString("/")
		}
		if !p.match(path.String(), false) || !p.match(path.String(), true) {
			t.Fatalf("%q does not match its own instance %q", pattern, path.String())
		}
		if got := p.extract(path.String()); len(got) != len(p.params) {
			t.Fatalf("extract(%q) = %v, want %d params", path.String(), got, len(p.params))
		}
	})
}
