package route

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Spec describes one route's match conditions, as written in the config.
// All conditions must hold for a request to match.
type Spec struct {
	// Hosts are exact names ("api.example.com") or wildcards ("*.example.com",
	// one or more labels before the suffix), validated by ValidateHost and
	// compared case-insensitively with the Host header minus its port and
	// trailing dot. Empty: any host.
	Hosts []string
	// Path is a pattern accepted by ParsePath, e.g. "/users/{id}/orders".
	// With Prefix false the whole request path must match it.
	Path string
	// Prefix makes Path match itself and everything below it, on segment
	// boundaries: "/api" matches "/api", "/api/" and "/api/x" but not "/apix";
	// "/" matches every path. Default false (exact).
	Prefix bool
	// Methods are the allowed methods, upper case, compared exactly, except
	// that GET implies HEAD (RFC 9110 §9.3.2: a HEAD is answered as the GET
	// would be, so it must be routed, authenticated and authorized as the
	// GET). Empty: any method.
	Methods []string
}

// Entry is one route of a Table: its conditions and the value Match returns
// for it (typically the compiled route).
type Entry[T any] struct {
	// Spec is the route's match conditions.
	Spec Spec
	// Value is returned in Result.Value when this route matches.
	Value T
}

// Param is the value of one {name} path segment.
type Param struct {
	// Name is the parameter name from the pattern, without braces.
	Name string
	// Value is the matched (decoded) path segment; never empty.
	Value string
}

// Params are a matched route's parameters, in pattern order.
type Params []Param

// Get returns the value of the named parameter and whether it exists.
func (p Params) Get(name string) (string, bool) {
	for _, x := range p {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}

// Status is the outcome of Match.
type Status uint8

const (
	// NotFound means no route matches the host and path (HTTP 404). It is the
	// zero value, so a zero Result never reads as a match.
	NotFound Status = iota
	// Matched means a route matches host, path and method.
	Matched
	// MethodNotAllowed means routes match the host and path but none allows
	// the method (HTTP 405); Result.Allow lists the methods they do allow.
	MethodNotAllowed
)

// String returns the status name, for logs.
func (s Status) String() string {
	switch s {
	case NotFound:
		return "NotFound"
	case Matched:
		return "Matched"
	case MethodNotAllowed:
		return "MethodNotAllowed"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Result is the outcome of Table.Match.
type Result[T any] struct {
	// Value is the matched route's value; the zero T unless Status is Matched.
	Value T
	// Index is the matched entry's position in the slice given to NewTable;
	// -1 unless Status is Matched.
	Index int
	// Params holds the values of the {param} segments; nil if the pattern has
	// none or nothing matched. Values are substrings of the path.
	Params Params
	// Status says whether a route matched, and if not, whether 404 or 405.
	Status Status
	// Allow is, for MethodNotAllowed, the sorted, de-duplicated methods of the
	// routes that match host and path, joined by ", " (for the Allow header).
	// Empty otherwise.
	Allow string
	// Shadow is, for Matched, the index of the most specific entry that
	// matches host and path but not the method and ranks above the
	// matched one (a "GET /account" route passed over for a POST that a
	// catch-all took); -1 if none. Callers use it to refuse a method that
	// would move a request to a less protected route.
	Shadow int
}

// hostKind orders host conditions for precedence rule 1; higher is more
// specific.
type hostKind uint8

const (
	anyHost hostKind = iota
	wildcardHost
	exactHost
)

// rule is one (route, host condition) pair: a route with several hosts
// becomes several rules so that each ranks by the host that actually matched.
type rule struct {
	index   int
	kind    hostKind
	host    string // exact: the name; wildcard: the suffix with its dot (".example.com")
	pat     Pattern
	prefix  bool
	slashes int      // cached pat.slashes(): the first, cheapest test in find
	methods []string // nil: any method
}

// Table is an immutable, compiled route table. It is safe for concurrent use.
type Table[T any] struct {
	values []T
	// The rules are split by host kind; each list is in precedence order.
	// Because host kind is the first precedence key, scanning exact[host],
	// then wildcard, then anyHost visits candidates in exactly the global
	// precedence order, while skipping other hosts' exact rules for free.
	exact    map[string][]rule
	wildcard []rule
	anyHost  []rule
}

// NewTable validates routes and compiles them into a Table. Precedence is
// computed here, once; Match only scans. The error names the index of the
// first invalid entry.
func NewTable[T any](routes []Entry[T]) (*Table[T], error) {
	t := &Table[T]{
		values: make([]T, len(routes)),
		exact:  make(map[string][]rule),
	}
	var all []rule
	for i, e := range routes {
		t.values[i] = e.Value
		rs, err := compile(i, e.Spec)
		if err != nil {
			return nil, fmt.Errorf("route: entry %d: %w", i, err)
		}
		all = append(all, rs...)
	}
	slices.SortFunc(all, compareRules)
	for _, r := range all {
		switch r.kind {
		case exactHost:
			t.exact[r.host] = append(t.exact[r.host], r)
		case wildcardHost:
			t.wildcard = append(t.wildcard, r)
		default:
			t.anyHost = append(t.anyHost, r)
		}
	}
	return t, nil
}

// compile validates a spec and expands it into one rule per host condition.
// Errors are not prefixed; NewTable adds the prefix and entry index.
func compile(index int, s Spec) ([]rule, error) {
	pat, err := parsePath(s.Path)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", s.Path, err)
	}
	var methods []string
	for _, m := range s.Methods {
		if err := validateMethod(m); err != nil {
			return nil, err
		}
		if slices.Contains(methods, m) {
			return nil, fmt.Errorf("method %q listed twice", m)
		}
		methods = append(methods, m) // a copy: the table must not see later edits
	}
	base := rule{index: index, pat: pat, prefix: s.Prefix, slashes: pat.slashes(), methods: methods}
	if len(s.Hosts) == 0 {
		return []rule{base}, nil
	}
	rules := make([]rule, 0, len(s.Hosts))
	for j, h := range s.Hosts {
		if err := validateHost(h); err != nil {
			return nil, fmt.Errorf("host %q: %w", h, err)
		}
		if slices.Contains(s.Hosts[:j], h) {
			return nil, fmt.Errorf("host %q listed twice", h)
		}
		r := base
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			r.kind, r.host = wildcardHost, suffix
		} else {
			r.kind, r.host = exactHost, h
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// compareRules orders rules most specific first; see the package
// documentation for the rules it implements, in the same order.
func compareRules(a, b rule) int {
	if c := compareRank(a, b); c != 0 {
		return c
	}
	// 6. declaration order.
	return cmp.Compare(a.index, b.index)
}

// compareRank is compareRules without the final tie-break on declaration
// order: 0 means the two rules are equally specific.
func compareRank(a, b rule) int {
	// 1. exact host > wildcard host (longer suffix first) > any host.
	if a.kind != b.kind {
		return cmp.Compare(b.kind, a.kind)
	}
	if a.kind == wildcardHost && len(a.host) != len(b.host) {
		return cmp.Compare(len(b.host), len(a.host))
	}
	// 2. exact path > prefix.
	if a.prefix != b.prefix {
		if !a.prefix {
			return -1
		}
		return 1
	}
	// 3. more segments first.
	if c := cmp.Compare(len(b.pat.segs), len(a.pat.segs)); c != 0 {
		return c
	}
	// 4. literal beats {param} at the first differing position; then, for
	// prefixes, "/api/" (which matches a subset) beats "/api".
	if c := compareSegments(&a.pat, &b.pat); c != 0 {
		return c
	}
	if a.pat.trailing != b.pat.trailing {
		if a.pat.trailing {
			return -1
		}
		return 1
	}
	// 5. a method list beats any method.
	if (a.methods == nil) != (b.methods == nil) {
		if a.methods != nil {
			return -1
		}
		return 1
	}
	return 0
}

// Match finds the route for a request.
//
// host is the Host header (r.Host): a ":port" is ignored, an IPv6 literal
// ("[::1]:8080") is handled, ASCII case is ignored and so is one trailing dot.
// path is r.URL.Path, already decoded; it is matched as given: Match does not
// clean it, so callers must reject or canonicalise paths with "." or ".."
// segments first, or "/public/../admin" would match a "/public" prefix route.
// A path that does not start with "/" ("*", "") matches nothing. method is
// compared exactly, except that a route listing GET also matches HEAD; among
// equally specific routes one that lists HEAD itself wins over one that
// only lists GET.
//
// Among the routes that match host, path and method, the most specific wins
// (see the package documentation). Match allocates nothing unless the
// matched pattern has parameters (one allocation) or the result is
// MethodNotAllowed (building Allow).
func (t *Table[T]) Match(host, path, method string) Result[T] {
	return t.match(host, path, method, false)
}

// MatchListed is Match for a method that only routes naming it in their
// method list may receive (the gateway's extension methods, such as
// WebDAV's): routes that allow any method are passed over, so a less
// specific route that lists the method can still win.
func (t *Table[T]) MatchListed(host, path, method string) Result[T] {
	return t.match(host, path, method, true)
}

func (t *Table[T]) match(host, path, method string, listedOnly bool) Result[T] {
	var buf [maxHostLen]byte // fits any valid name; a longer Host header spills to the heap
	h := appendCanonicalHost(buf[:0], host)
	q := query{host: h, path: path, method: method, slashes: strings.Count(path, "/"), listedOnly: listedOnly, shadow: -1}
	r := q.find(t.exact[string(h)])
	if r == nil && len(t.wildcard) > 0 {
		r = q.find(t.wildcard)
	}
	if r == nil {
		r = q.find(t.anyHost)
	}
	switch {
	case r != nil:
		return Result[T]{Value: t.values[r.index], Index: r.index, Params: r.pat.extract(path), Status: Matched, Shadow: q.shadow}
	case q.pathMatched:
		return Result[T]{Index: -1, Status: MethodNotAllowed, Allow: t.allow(h, path), Shadow: -1}
	default:
		return Result[T]{Index: -1, Status: NotFound, Shadow: -1}
	}
}

// query is one request being matched, with what find learns along the way.
type query struct {
	host         []byte // canonical host
	path, method string
	slashes      int  // number of '/' in path
	pathMatched  bool // some rule matched host and path: 405 rather than 404
	shadow       int  // entry index of the first rule that did so, -1: none
	listedOnly   bool // only rules whose method list names the method match
}

// find returns the first rule in rules that matches the request, and
// records in q.pathMatched whether any rule matched host and path. rules
// must be in precedence order.
func (q *query) find(rules []rule) *rule {
	for i := range rules {
		r := &rules[i]
		if r.slashes != q.slashes && (!r.prefix || r.slashes > q.slashes) {
			continue // cannot match: wrong number of segments
		}
		if r.kind == wildcardHost && !hasWildcardSuffix(q.host, r.host) {
			continue
		}
		// The method test is the cheaper one; the path only needs testing
		// on a method mismatch while 405 is still undecided.
		if ok, implied := r.allows(q.method); ok && !(q.listedOnly && r.methods == nil) {
			if r.pat.match(q.path, r.prefix) {
				if implied {
					return q.explicitHead(rules[i+1:], r)
				}
				return r
			}
		} else if !q.pathMatched && r.pat.match(q.path, r.prefix) {
			q.pathMatched, q.shadow = true, r.index
		}
	}
	return nil
}

// allows reports whether the rule admits method, and whether only because
// the rule lists GET and method is HEAD.
func (r *rule) allows(method string) (ok, impliedHead bool) {
	if r.methods == nil || slices.Contains(r.methods, method) {
		return true, false
	}
	if method == "HEAD" && slices.Contains(r.methods, "GET") {
		return true, true
	}
	return false, false
}

// explicitHead is called when a HEAD request matched found only because
// found lists GET: an equally specific rule that names HEAD itself (and
// matches) is the route the configuration meant for HEAD. rest are the
// rules after found, in precedence order.
func (q *query) explicitHead(rest []rule, found *rule) *rule {
	for i := range rest {
		r := &rest[i]
		if compareRank(*r, *found) != 0 {
			break
		}
		if r.slashes != q.slashes && (!r.prefix || r.slashes > q.slashes) {
			continue
		}
		if r.kind == wildcardHost && !hasWildcardSuffix(q.host, r.host) {
			continue
		}
		if slices.Contains(r.methods, "HEAD") && r.pat.match(q.path, r.prefix) {
			return r
		}
	}
	return found
}

// hasWildcardSuffix reports whether host ends with suffix (".example.com")
// with at least one byte in front of it, which makes "*.example.com" match
// "a.example.com" and "a.b.example.com" but not "example.com".
func hasWildcardSuffix(host []byte, suffix string) bool {
	return len(host) > len(suffix) && string(host[len(host)-len(suffix):]) == suffix
}

// Allow returns the methods of every route that matches host and path, as
// for the Allow header of a 405. It is off the hot path and allocates.
func (t *Table[T]) Allow(host, path string) string {
	var buf [maxHostLen]byte
	return t.allow(appendCanonicalHost(buf[:0], host), path)
}

// allow builds the Allow header value for a 405: the methods of every rule
// that matches host and path. It is off the hot path, so it may allocate.
func (t *Table[T]) allow(host []byte, path string) string {
	var methods []string
	for _, rules := range [][]rule{t.exact[string(host)], t.wildcard, t.anyHost} {
		for i := range rules {
			r := &rules[i]
			if r.kind == wildcardHost && !hasWildcardSuffix(host, r.host) {
				continue
			}
			if r.pat.match(path, r.prefix) {
				methods = append(methods, r.methods...)
				if slices.Contains(r.methods, "GET") {
					methods = append(methods, "HEAD") // GET implies HEAD
				}
			}
		}
	}
	slices.Sort(methods)
	return strings.Join(slices.Compact(methods), ", ")
}
