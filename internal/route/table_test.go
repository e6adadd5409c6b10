package route

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// precedenceSpecs is a realistic table: an API host with a personal
// endpoint, wildcard tenants, an admin area, shared health/static/API
// routes, a duplicate and a method-restricted catch-all on www.
var precedenceSpecs = []Spec{
	0:  {Hosts: []string{"api.example.com"}, Path: "/users/me", Methods: []string{"GET"}},
	1:  {Hosts: []string{"api.example.com"}, Path: "/users/{id}", Methods: []string{"GET", "PUT", "DELETE"}},
	2:  {Hosts: []string{"api.example.com"}, Path: "/users/{id}/orders/{order}", Methods: []string{"GET"}},
	3:  {Hosts: []string{"api.example.com"}, Path: "/users", Prefix: true},
	4:  {Hosts: []string{"*.example.com"}, Path: "/users/{id}", Methods: []string{"GET"}},
	5:  {Hosts: []string{"*.eu.example.com"}, Path: "/users/{id}", Methods: []string{"GET"}},
	6:  {Hosts: []string{"admin.example.com", "*.internal.example.com"}, Path: "/admin", Prefix: true},
	7:  {Path: "/healthz", Methods: []string{"GET", "HEAD"}},
	8:  {Path: "/healthz", Methods: []string{"GET", "HEAD"}}, // duplicate of 7: never wins
	9:  {Path: "/static/", Prefix: true, Methods: []string{"HEAD", "GET"}},
	10: {Path: "/api", Prefix: true},
	11: {Path: "/api/v1", Prefix: true},
	12: {Path: "/api/v1/items", Methods: []string{"POST"}},
	13: {Path: "/api/v1/items", Methods: []string{"POST"}}, // duplicate of 12
	14: {Hosts: []string{"www.example.com"}, Path: "/", Prefix: true, Methods: []string{"GET"}},
	15: {Hosts: []string{"api.example.com", "*.example.com"}, Path: "/items/{id}", Methods: []string{"POST"}},
	16: {Hosts: []string{"*.example.com"}, Path: "/items/{id}"},
	17: {Hosts: []string{"*.eu.example.com"}, Path: "/items/{id}"},
	18: {Path: "/v/{a}/x"},
	19: {Path: "/v/b/{c}"},
	20: {Path: "/docs", Methods: []string{"GET"}},
	21: {Path: "/docs/", Prefix: true, Methods: []string{"GET"}},
}

func newIndexTable(t testing.TB, specs []Spec) *Table[int] {
	t.Helper()
	entries := make([]Entry[int], len(specs))
	for i, s := range specs {
		entries[i] = Entry[int]{Spec: s, Value: i}
	}
	tab, err := NewTable(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

type matchCase struct {
	name               string
	host, path, method string
	index              int
	status             Status
	allow              string
	params             map[string]string
}

var precedenceCases = []matchCase{
	{name: "literal beats param", host: "api.example.com", path: "/users/me", method: "GET", index: 0, status: Matched},
	{name: "param", host: "api.example.com", path: "/users/42", method: "GET", index: 1, status: Matched, params: map[string]string{"id": "42"}},
	{name: "param other method", host: "api.example.com", path: "/users/42", method: "DELETE", index: 1, status: Matched, params: map[string]string{"id": "42"}},
	{name: "method mismatch falls to prefix", host: "api.example.com", path: "/users/42", method: "POST", index: 3, status: Matched},
	{name: "literal method mismatch falls past param to prefix", host: "api.example.com", path: "/users/me", method: "PUT", index: 1, status: Matched, params: map[string]string{"id": "me"}},
	{name: "two params", host: "api.example.com", path: "/users/42/orders/7", method: "GET", index: 2, status: Matched, params: map[string]string{"id": "42", "order": "7"}},
	{name: "prefix matches itself", host: "api.example.com", path: "/users", method: "GET", index: 3, status: Matched},
	{name: "prefix on segment boundary only", host: "api.example.com", path: "/usersx", method: "GET", index: -1, status: NotFound},
	{name: "wildcard", host: "shop.example.com", path: "/users/42", method: "GET", index: 4, status: Matched, params: map[string]string{"id": "42"}},
	{name: "longer wildcard wins", host: "de.eu.example.com", path: "/users/42", method: "GET", index: 5, status: Matched, params: map[string]string{"id": "42"}},
	{name: "wildcard needs a label in front", host: "eu.example.com", path: "/users/42", method: "GET", index: 4, status: Matched, params: map[string]string{"id": "42"}},
	{name: "wildcard does not match bare suffix", host: "example.com", path: "/users/42", method: "GET", index: -1, status: NotFound},
	{name: "405 from wildcard", host: "shop.example.com", path: "/users/42", method: "POST", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "405 allow de-duplicated", host: "de.eu.example.com", path: "/users/42", method: "DELETE", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "HEAD through GET on a param route", host: "api.example.com", path: "/users/42", method: "HEAD", index: 1, status: Matched, params: map[string]string{"id": "42"}},
	{name: "HEAD through GET on a literal", host: "api.example.com", path: "/users/me", method: "HEAD", index: 0, status: Matched},
	{name: "HEAD through GET on a catch-all", host: "www.example.com", path: "/anything", method: "HEAD", index: 14, status: Matched},
	{name: "multi-host route by exact host", host: "admin.example.com", path: "/admin/x", method: "GET", index: 6, status: Matched},
	{name: "multi-host route by wildcard", host: "ops.internal.example.com", path: "/admin", method: "DELETE", index: 6, status: Matched},
	{name: "admin prefix boundary", host: "admin.example.com", path: "/adminx", method: "GET", index: -1, status: NotFound},
	{name: "duplicate: first declared wins", host: "anything.test", path: "/healthz", method: "GET", index: 7, status: Matched},
	{name: "HEAD listed explicitly", host: "anything.test", path: "/healthz", method: "HEAD", index: 7, status: Matched},
	{name: "405 allow sorted", host: "anything.test", path: "/healthz", method: "POST", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "methods are case-sensitive", host: "anything.test", path: "/healthz", method: "get", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "exact path keeps its trailing slash", host: "anything.test", path: "/healthz/", method: "GET", index: -1, status: NotFound},
	{name: "literal is case-sensitive", host: "anything.test", path: "/HEALTHZ", method: "GET", index: -1, status: NotFound},
	{name: "slash prefix", host: "anything.test", path: "/static/app.js", method: "GET", index: 9, status: Matched},
	{name: "slash prefix matches the slash", host: "anything.test", path: "/static/", method: "HEAD", index: 9, status: Matched},
	{name: "slash prefix needs the slash", host: "anything.test", path: "/static", method: "GET", index: -1, status: NotFound},
	{name: "405 on prefix", host: "anything.test", path: "/static/app.js", method: "POST", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "longest prefix wins", host: "anything.test", path: "/api/v1/items", method: "GET", index: 11, status: Matched},
	{name: "exact beats prefix, duplicate loses", host: "anything.test", path: "/api/v1/items", method: "POST", index: 12, status: Matched},
	{name: "shorter prefix", host: "anything.test", path: "/api/v2", method: "GET", index: 10, status: Matched},
	{name: "prefix itself", host: "anything.test", path: "/api", method: "PATCH", index: 10, status: Matched},
	{name: "prefix boundary", host: "anything.test", path: "/apix", method: "GET", index: -1, status: NotFound},
	{name: "exact host catch-all beats wildcard exact path", host: "www.example.com", path: "/users/42", method: "GET", index: 14, status: Matched},
	{name: "405 from catch-all", host: "www.example.com", path: "/anything", method: "POST", index: -1, status: MethodNotAllowed, allow: "GET, HEAD"},
	{name: "method mismatch on exact host falls to any host", host: "www.example.com", path: "/api/x", method: "POST", index: 10, status: Matched},
	{name: "rank by matched host: exact", host: "api.example.com", path: "/items/9", method: "POST", index: 15, status: Matched, params: map[string]string{"id": "9"}},
	{name: "method list beats any method", host: "shop.example.com", path: "/items/9", method: "POST", index: 15, status: Matched, params: map[string]string{"id": "9"}},
	{name: "any method", host: "shop.example.com", path: "/items/9", method: "GET", index: 16, status: Matched, params: map[string]string{"id": "9"}},
	{name: "rank by matched host: longer wildcard beats method list", host: "de.eu.example.com", path: "/items/9", method: "POST", index: 17, status: Matched, params: map[string]string{"id": "9"}},
	{name: "first differing segment decides", host: "x.test", path: "/v/b/x", method: "GET", index: 19, status: Matched, params: map[string]string{"c": "x"}},
	{name: "param at first position", host: "x.test", path: "/v/c/x", method: "GET", index: 18, status: Matched, params: map[string]string{"a": "c"}},
	{name: "param needs non-empty segment", host: "x.test", path: "/v//x", method: "GET", index: -1, status: NotFound},
	{name: "exact without slash", host: "x.test", path: "/docs", method: "GET", index: 20, status: Matched},
	{name: "slash prefix with slash", host: "x.test", path: "/docs/", method: "GET", index: 21, status: Matched},
	{name: "slash prefix deeper", host: "x.test", path: "/docs/a/b", method: "GET", index: 21, status: Matched},
	{name: "host case port and dot", host: "API.Example.COM.:8443", path: "/users/me", method: "GET", index: 0, status: Matched},
	{name: "IPv6 literal host", host: "[::1]:8080", path: "/healthz", method: "GET", index: 7, status: Matched},
	{name: "no host header", host: "", path: "/healthz", method: "GET", index: 7, status: Matched},
	{name: "asterisk path", host: "x.test", path: "*", method: "OPTIONS", index: -1, status: NotFound},
	{name: "empty path", host: "x.test", path: "", method: "GET", index: -1, status: NotFound},
}

func TestMatchPrecedence(t *testing.T) {
	tab := newIndexTable(t, precedenceSpecs)
	for _, tc := range precedenceCases {
		t.Run(tc.name, func(t *testing.T) {
			got := tab.Match(tc.host, tc.path, tc.method)
			checkResult(t, got, tc)
			// The naive reference must agree, so the expectations above
			// and the reference cross-check each other.
			ref := refMatch(precedenceSpecs, tc.host, tc.path, tc.method)
			if ref.index != tc.index || ref.status != tc.status || ref.allow != tc.allow || !maps.Equal(ref.params, tc.params) {
				t.Errorf("reference disagrees with the test case: %+v", ref)
			}
		})
	}
}

func checkResult(t *testing.T, got Result[int], tc matchCase) {
	t.Helper()
	if got.Index != tc.index || got.Status != tc.status || got.Allow != tc.allow {
		t.Errorf("Match(%q, %q, %q) = index %d %v allow %q; want index %d %v allow %q",
			tc.host, tc.path, tc.method, got.Index, got.Status, got.Allow, tc.index, tc.status, tc.allow)
	}
	if !maps.Equal(paramsMap(got.Params), tc.params) {
		t.Errorf("params = %v, want %v", got.Params, tc.params)
	}
	if tc.params == nil && got.Params != nil {
		t.Errorf("params = %#v, want nil", got.Params)
	}
	if got.Status == Matched && got.Value != got.Index {
		t.Errorf("value %d does not belong to index %d", got.Value, got.Index)
	}
	if got.Status != Matched && got.Value != 0 {
		t.Errorf("value %d on %v, want zero", got.Value, got.Status)
	}
}

// TestHeadIsGet: a HEAD is routed as the GET to the same path would be
// (RFC 9110 §9.3.2), so a GET-only route is not bypassed through a less
// specific route that allows HEAD; a route naming HEAD itself still wins
// over an equally specific GET route.
func TestHeadIsGet(t *testing.T) {
	specs := []Spec{
		0: {Path: "/reports/{id}", Methods: []string{"GET"}},        // authenticated
		1: {Path: "/", Prefix: true},                                // public catch-all, any method
		2: {Path: "/files/{name}", Methods: []string{"GET", "PUT"}}, // GET and HEAD
		3: {Path: "/files/{name}", Methods: []string{"HEAD"}},       // names HEAD: wins for HEAD
		4: {Path: "/docs", Prefix: true, Methods: []string{"HEAD"}}, // less specific HEAD route
		5: {Path: "/docs/{page}", Methods: []string{"GET"}},         // more specific GET route wins
		6: {Path: "/only-post", Methods: []string{"POST"}},          // HEAD is not implied by POST
		7: {Hosts: []string{"a.test"}, Path: "/x", Methods: []string{"GET"}},
		8: {Path: "/x", Methods: []string{"HEAD"}}, // host rank still comes first
	}
	tab := newIndexTable(t, specs)
	for _, tc := range []matchCase{
		{name: "GET-only route beats public catch-all for HEAD", path: "/reports/1", method: "HEAD", index: 0, status: Matched, params: map[string]string{"id": "1"}},
		{name: "GET itself", path: "/reports/1", method: "GET", index: 0, status: Matched, params: map[string]string{"id": "1"}},
		{name: "other method falls to the catch-all", path: "/reports/1", method: "POST", index: 1, status: Matched},
		{name: "explicit HEAD route wins at equal rank", path: "/files/a", method: "HEAD", index: 3, status: Matched, params: map[string]string{"name": "a"}},
		{name: "GET on the GET route", path: "/files/a", method: "GET", index: 2, status: Matched, params: map[string]string{"name": "a"}},
		{name: "more specific GET beats less specific HEAD", path: "/docs/intro", method: "HEAD", index: 5, status: Matched, params: map[string]string{"page": "intro"}},
		{name: "HEAD-only prefix route", path: "/docs", method: "HEAD", index: 4, status: Matched},
		{name: "POST does not imply HEAD", path: "/only-post", method: "HEAD", index: 1, status: Matched},
		{name: "exact host GET beats any-host HEAD", host: "a.test", path: "/x", method: "HEAD", index: 7, status: Matched},
		{name: "any-host HEAD for other hosts", host: "b.test", path: "/x", method: "HEAD", index: 8, status: Matched},
		{name: "lower-case head is not HEAD", path: "/reports/1", method: "head", index: 1, status: Matched},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, tab.Match(tc.host, tc.path, tc.method), tc)
			ref := refMatch(specs, tc.host, tc.path, tc.method)
			if ref.index != tc.index || ref.status != tc.status {
				t.Errorf("reference disagrees with the test case: %+v", ref)
			}
		})
	}
	t.Run("405 lists HEAD where GET is allowed", func(t *testing.T) {
		tab := newIndexTable(t, []Spec{{Path: "/r", Methods: []string{"GET", "POST"}}, {Path: "/r", Prefix: true, Methods: []string{"PUT"}}})
		checkResult(t, tab.Match("", "/r", "DELETE"), matchCase{host: "", path: "/r", method: "DELETE", index: -1, status: MethodNotAllowed, allow: "GET, HEAD, POST, PUT"})
	})
}

// TestMatchListed: an extension method only goes to a route that names it,
// even when a more specific route allows any method.
func TestMatchListed(t *testing.T) {
	tab := newIndexTable(t, []Spec{
		0: {Path: "/", Prefix: true, Methods: []string{"PROPFIND", "GET"}},
		1: {Path: "/x", Prefix: true}, // any method
		2: {Path: "/y", Prefix: true, Methods: []string{"GET"}},
	})
	for _, tc := range []matchCase{
		{name: "any-method route passed over", path: "/x/a", method: "PROPFIND", index: 0, status: Matched},
		{name: "listing route", path: "/z", method: "PROPFIND", index: 0, status: Matched},
		{name: "listing route behind a method-restricted one", path: "/y/a", method: "PROPFIND", index: 0, status: Matched},
	} {
		t.Run(tc.name, func(t *testing.T) { checkResult(t, tab.MatchListed(tc.host, tc.path, tc.method), tc) })
	}
	tab2 := newIndexTable(t, []Spec{{Path: "/x", Prefix: true}})
	if got := tab2.MatchListed("", "/x", "PROPFIND"); got.Status != MethodNotAllowed || got.Allow != "" {
		t.Fatalf("only an any-method route: %+v, want 405 with an empty Allow", got)
	}
	if got := tab.Match("", "/x/a", "PROPFIND"); got.Index != 1 {
		t.Fatalf("Match still takes the any-method route: %+v", got)
	}
}

func TestHostNormalisation(t *testing.T) {
	tab := newIndexTable(t, []Spec{
		{Hosts: []string{"api.example.com"}, Path: "/", Prefix: true},
		{Hosts: []string{"*.example.com"}, Path: "/", Prefix: true},
		{Hosts: []string{"127.0.0.1"}, Path: "/", Prefix: true},
		{Path: "/", Prefix: true},
	})
	for _, tc := range []struct {
		host  string
		index int
	}{
		{"api.example.com", 0},
		{"api.example.com:8080", 0},
		{"API.EXAMPLE.COM", 0},
		{"Api.Example.Com:443", 0},
		{"api.example.com.", 0},
		{"api.example.com.:8443", 0},
		{"api.example.com..", 3},   // only one trailing dot is ignored
		{"api.example.com:x:y", 0}, // everything after the first colon is the port
		{"WWW.Example.Com.:80", 1},
		{"example.com", 3},
		{".example.com", 3}, // no label in front of the suffix
		{"127.0.0.1:9000", 2},
		{"[::1]:8080", 3},
		{"[::1]", 3},
		{"[API.EXAMPLE.COM]:80", 3}, // brackets are not stripped: IPv6 only
		{"[", 3},
		{":8080", 3},
		{"", 3},
		{"api.example.com\u212a", 3}, // Kelvin sign is not folded to "k"
		{strings.Repeat("a.", 200) + "example.com", 1},
		{strings.Repeat("A", 300) + ".EXAMPLE.COM", 1}, // longer than a DNS name: still matched correctly
	} {
		t.Run(tc.host, func(t *testing.T) {
			if got := tab.Match(tc.host, "/", "GET"); got.Index != tc.index {
				t.Errorf("Match(%q) index = %d, want %d", tc.host, got.Index, tc.index)
			}
		})
	}
}

func TestNewTableErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"empty path", Spec{}, `route: entry 1: path "": must not be empty`},
		{"bad path", Spec{Path: "/a//b"}, `route: entry 1: path "/a//b": segment 2 "": empty segment`},
		{"bad host", Spec{Path: "/", Hosts: []string{"Example.com"}}, `route: entry 1: host "Example.com": must be lower case`},
		{"duplicate host", Spec{Path: "/", Hosts: []string{"a.test", "a.test"}}, `route: entry 1: host "a.test" listed twice`},
		{"lower-case method", Spec{Path: "/", Methods: []string{"get"}}, `route: entry 1: method "get" must be upper case`},
		{"empty method", Spec{Path: "/", Methods: []string{""}}, `route: entry 1: empty method`},
		{"bad method", Spec{Path: "/", Methods: []string{"GE T"}}, `route: entry 1: method "GE T": invalid character ' '`},
		{"duplicate method", Spec{Path: "/", Methods: []string{"GET", "GET"}}, `route: entry 1: method "GET" listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTable([]Entry[int]{{Spec: Spec{Path: "/ok"}}, {Spec: tc.spec}})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want prefix %q", err, tc.want)
			}
		})
	}
	for _, m := range []string{"GET", "M-SEARCH", "PROPFIND", "X_1"} {
		if _, err := NewTable([]Entry[int]{{Spec: Spec{Path: "/", Methods: []string{m}}}}); err != nil {
			t.Errorf("method %q: %v", m, err)
		}
	}
}

func TestEmptyTable(t *testing.T) {
	tab, err := NewTable[string](nil)
	if err != nil {
		t.Fatal(err)
	}
	got := tab.Match("a.test", "/", "GET")
	if got.Status != NotFound || got.Index != -1 || got.Value != "" {
		t.Errorf("got %+v", got)
	}
}

// The table must not change when the caller later edits the slices it
// passed in: the compiled plan is shared by concurrent requests.
func TestTableIsImmutable(t *testing.T) {
	hosts := []string{"a.test"}
	methods := []string{"GET"}
	entries := []Entry[string]{{Spec: Spec{Hosts: hosts, Path: "/x", Methods: methods}, Value: "x"}}
	tab, err := NewTable(entries)
	if err != nil {
		t.Fatal(err)
	}
	hosts[0], methods[0], entries[0].Value = "b.test", "POST", "changed"
	got := tab.Match("a.test", "/x", "GET")
	if got.Status != Matched || got.Value != "x" {
		t.Errorf("got %+v, want the original route", got)
	}
}

func TestParamsGet(t *testing.T) {
	p := Params{{Name: "id", Value: "42"}, {Name: "order", Value: "7"}}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"id", "42", true},
		{"order", "7", true},
		{"missing", "", false},
	} {
		if got, ok := p.Get(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := Params(nil).Get("id"); ok {
		t.Error("nil Params reported a parameter")
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{NotFound: "NotFound", Matched: "Matched", MethodNotAllowed: "MethodNotAllowed", 9: "Status(9)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(s), got, want)
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	tab := newIndexTable(t, precedenceSpecs)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tc := precedenceCases[(g+i)%len(precedenceCases)]
				got := tab.Match(tc.host, tc.path, tc.method)
				if got.Index != tc.index || got.Status != tc.status || got.Allow != tc.allow || !maps.Equal(paramsMap(got.Params), tc.params) {
					t.Errorf("%s: got %+v", tc.name, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestMatchAgainstReference compares Match with the naive reference on
// random tables built from a small alphabet, so that overlaps, ties and
// every precedence rule come up often.
func TestMatchAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	hostConds := []string{"a.test", "b.a.test", "*.test", "*.a.test", "*.b.a.test"}
	reqHosts := []string{"a.test", "b.a.test", "c.b.a.test", "x.test", "test", "A.TEST:80", "b.a.test."}
	methods := []string{"GET", "POST", "PUT"}
	randPath := func(pattern bool) string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString("/")
			if pattern {
				if rng.IntN(3) == 0 {
					fmt.Fprintf(&b, "{p%d}", b.Len())
					continue
				}
				b.WriteString(pick("x", "y"))
			} else {
				b.WriteString(pick("x", "y", "z", ""))
			}
		}
		if b.Len() == 0 || rng.IntN(3) == 0 {
			b.WriteString("/")
		}
		return b.String()
	}
	for round := range 300 {
		specs := make([]Spec, 1+rng.IntN(12))
		for i := range specs {
			s := Spec{Path: randPath(true), Prefix: rng.IntN(2) == 0}
			for _, h := range hostConds {
				if rng.IntN(5) == 0 {
					s.Hosts = append(s.Hosts, h)
				}
			}
			for _, m := range methods {
				if rng.IntN(3) == 0 {
					s.Methods = append(s.Methods, m)
				}
			}
			specs[i] = s
		}
		tab := newIndexTable(t, specs)
		for range 50 {
			host, path, method := pick(reqHosts...), randPath(false), pick(methods...)
			got := tab.Match(host, path, method)
			want := refMatch(specs, host, path, method)
			if got.Index != want.index || got.Status != want.status || got.Allow != want.allow || !maps.Equal(paramsMap(got.Params), want.params) {
				t.Fatalf("round %d: Match(%q, %q, %q) = %d %v %q %v; reference %d %v %q %v\nspecs: %+v",
					round, host, path, method, got.Index, got.Status, got.Allow, got.Params,
					want.index, want.status, want.allow, want.params, specs)
			}
		}
	}
}

// Shadow names the more specific route that matched host and path but not
// the method, so the pipeline can refuse a method that would move a
// request to a less protected route.
func TestShadow(t *testing.T) {
	tb, err := NewTable([]Entry[string]{
		{Spec: Spec{Path: "/account", Methods: []string{"GET"}}, Value: "account"},
		{Spec: Spec{Path: "/", Prefix: true}, Value: "catch-all"},
		{Spec: Spec{Hosts: []string{"api.example.com"}, Path: "/x", Methods: []string{"PUT"}}, Value: "api-x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, path, method string
		want               string
		shadow             int
	}{
		{"gw.test", "/account", "GET", "account", -1},
		{"gw.test", "/account", "HEAD", "account", -1},
		{"gw.test", "/account", "POST", "catch-all", 0},
		{"gw.test", "/other", "POST", "catch-all", -1},
		{"api.example.com", "/x", "GET", "catch-all", 2},
		{"api.example.com", "/x", "PUT", "api-x", -1},
	} {
		res := tb.Match(tc.host, tc.path, tc.method)
		if res.Value != tc.want || res.Shadow != tc.shadow {
			t.Errorf("%s %s%s: %q shadow %d, want %q shadow %d", tc.method, tc.host, tc.path, res.Value, res.Shadow, tc.want, tc.shadow)
		}
	}
	if got := tb.Allow("gw.test", "/account"); got != "GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
}
