package route

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		pattern  string
		segments int
		params   []string
		err      string // substring of the error; "" for valid patterns
	}{
		{pattern: "/", segments: 0},
		{pattern: "/a", segments: 1},
		{pattern: "/a/", segments: 1},
		{pattern: "/users/{id}", segments: 2, params: []string{"id"}},
		{pattern: "/users/{id}/", segments: 2, params: []string{"id"}},
		{pattern: "/users/{id}/orders/{order_id}", segments: 4, params: []string{"id", "order_id"}},
		{pattern: "/{_x1}/{Y}", segments: 2, params: []string{"_x1", "Y"}},
		{pattern: "/a b/ünï/a.b/.../a-b~c:d@e", segments: 5},
		{pattern: "/v1.0/{id}", segments: 2, params: []string{"id"}},

		{pattern: "", err: `route: path "": must not be empty`},
		{pattern: "a/b", err: `must start with "/"`},
		{pattern: "//", err: `segment 1 "": empty segment`},
		{pattern: "//a", err: `segment 1 "": empty segment`},
		{pattern: "/a//b", err: `segment 2 "": empty segment`},
		{pattern: "/a//", err: `segment 2 "": empty segment`},
		{pattern: "/a/./b", err: `segment 2 ".": "." and ".." segments are not allowed`},
		{pattern: "/..", err: `"." and ".." segments are not allowed`},
		{pattern: "/a/..", err: `"." and ".." segments are not allowed`},
		{pattern: "/{id}/{id}", err: "segment 2: duplicate parameter {id}"},
		{pattern: "/{}", err: "parameter name must match"},
		{pattern: "/{1a}", err: "parameter name must match"},
		{pattern: "/{a-b}", err: "parameter name must match"},
		{pattern: "/{a}}", err: "parameter name must match"},
		{pattern: "/{{a}", err: "parameter name must match"},
		{pattern: "/x{id}", err: `"{" and "}" are only allowed around a whole segment`},
		{pattern: "/{id}.json", err: `"{" and "}" are only allowed around a whole segment`},
		{pattern: "/{", err: `"{" and "}" are only allowed`},
		{pattern: "/}", err: `"{" and "}" are only allowed`},
		{pattern: "/a?b=1", err: `'?' is not allowed`},
		{pattern: "/a#frag", err: `'#' is not allowed`},
		{pattern: "/a%20b", err: `"%" is not allowed`},
		{pattern: "/a\x00", err: "control characters"},
		{pattern: "/a\tb", err: "control characters"},
		{pattern: "/\xff", err: "not valid UTF-8"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := ParsePath(tc.pattern)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "route: ") {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != tc.pattern || p.Segments() != tc.segments || !slices.Equal(p.Params(), tc.params) {
				t.Errorf("got %q, %d segments, params %q", p.String(), p.Segments(), p.Params())
			}
		})
	}
}

func TestPatternParamsIsACopy(t *testing.T) {
	p, err := ParsePath("/{a}/{b}")
	if err != nil {
		t.Fatal(err)
	}
	p.Params()[0] = "changed"
	if got := p.Params(); got[0] != "a" {
		t.Errorf("Params() = %q after modifying an earlier result", got)
	}
}

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern       string
		path          string
		exact, prefix bool
	}{
		{"/", "/", true, true},
		{"/", "/a/b", false, true},
		{"/", "", false, false},
		{"/", "a", false, false},
		{"/a", "/a", true, true},
		{"/a", "/a/", false, true},
		{"/a", "/a/b", false, true},
		{"/a", "/ab", false, false},
		{"/a", "/A", false, false},
		{"/a", "/", false, false},
		{"/a", "//a", false, false},
		{"/a/", "/a/", true, true},
		{"/a/", "/a", false, false},
		{"/a/", "/a/b", false, true},
		{"/a/", "/a//", false, true},
		{"/{x}", "/v", true, true},
		{"/{x}", "/", false, false},
		{"/{x}", "//", false, false},
		{"/{x}", "/v/w", false, true},
		{"/a/{x}/c", "/a/b/c", true, true},
		{"/a/{x}/c", "/a//c", false, false},
		{"/a/{x}/c", "/a/b/c/", false, true},
	} {
		p, err := ParsePath(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(tc.path, false); got != tc.exact {
			t.Errorf("%q exact match %q = %v, want %v", tc.pattern, tc.path, got, tc.exact)
		}
		if got := p.match(tc.path, true); got != tc.prefix {
			t.Errorf("%q prefix match %q = %v, want %v", tc.pattern, tc.path, got, tc.prefix)
		}
	}
}
