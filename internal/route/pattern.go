package route

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pattern is a parsed, validated path pattern such as "/users/{id}/orders".
// The zero value is not a valid pattern; obtain one from ParsePath.
type Pattern struct {
	raw      string
	segs     []segment
	params   []string // names of the {param} segments, in order
	trailing bool     // the pattern ends with "/" (true for "/" itself)
}

// segment is one "/"-separated piece of a pattern: either a literal, compared
// byte for byte, or a parameter that matches any one non-empty segment.
type segment struct {
	lit   string
	param bool
}

// ParsePath validates a path pattern and compiles it for matching.
//
// A pattern starts with "/" and consists of "/"-separated segments, each
// either a literal ("users") or exactly one parameter "{name}", where name is
// [A-Za-z_][A-Za-z0-9_]* and is unique within the pattern. A trailing "/" is
// significant: "/a/" and "/a" are different patterns. Rejected, because they
// could never match a request or hint at a mistake: empty segments ("//")
// other than the trailing one, "." and ".." segments, "{" or "}" outside a
// whole-segment parameter, "?", "#", "%", control characters and invalid
// UTF-8. Patterns are compared with the decoded request path, so a literal
// is written decoded ("/a b", not "/a%20b").
//
// Errors are prefixed "route: " and name the offending segment.
func ParsePath(pattern string) (Pattern, error) {
	p, err := parsePath(pattern)
	if err != nil {
		return Pattern{}, fmt.Errorf("route: path %q: %w", pattern, err)
	}
	return p, nil
}

func parsePath(pattern string) (Pattern, error) {
	if pattern == "" {
		return Pattern{}, errors.New("must not be empty")
	}
	if pattern[0] != '/' {
		return Pattern{}, errors.New(`must start with "/"`)
	}
	if !utf8.ValidString(pattern) {
		return Pattern{}, errors.New("is not valid UTF-8")
	}
	p := Pattern{raw: pattern}
	parts := strings.Split(pattern[1:], "/")
	if parts[len(parts)-1] == "" {
		// "/" and "/a/" end in an empty piece: that is the trailing slash,
		// the only empty segment allowed.
		p.trailing = true
		parts = parts[:len(parts)-1]
	}
	for i, part := range parts {
		s, err := parseSegment(part)
		if err != nil {
			return Pattern{}, fmt.Errorf("segment %d %q: %w", i+1, part, err)
		}
		if s.param {
			for _, name := range p.params {
				if name == s.lit {
					return Pattern{}, fmt.Errorf("segment %d: duplicate parameter {%s}", i+1, name)
				}
			}
			p.params = append(p.params, s.lit)
		}
		p.segs = append(p.segs, s)
	}
	return p, nil
}

// parseSegment validates one non-trailing segment. For a parameter, the
// returned segment's lit holds the parameter name.
func parseSegment(part string) (segment, error) {
	switch part {
	case "":
		return segment{}, errors.New(`empty segment ("//"); only a trailing "/" is allowed`)
	case ".", "..":
		return segment{}, errors.New(`"." and ".." segments are not allowed`)
	}
	if part[0] == '{' && part[len(part)-1] == '}' && len(part) >= 2 {
		name := part[1 : len(part)-1]
		if !validParamName(name) {
			return segment{}, errors.New("parameter name must match [A-Za-z_][A-Za-z0-9_]*")
		}
		return segment{lit: name, param: true}, nil
	}
	for i := 0; i < len(part); i++ {
		switch c := part[i]; {
		case c == '{' || c == '}':
			return segment{}, errors.New(`"{" and "}" are only allowed around a whole segment, as in "/users/{id}"`)
		case c == '?' || c == '#':
			return segment{}, fmt.Errorf("%q is not allowed: patterns match the path only, never the query or fragment", c)
		case c == '%':
			return segment{}, errors.New(`"%" is not allowed: patterns match the decoded path, so write the character itself`)
		case c < 0x20 || c == 0x7f:
			return segment{}, errors.New("control characters are not allowed")
		}
	}
	return segment{lit: part}, nil
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// Params returns the names of the pattern's {param} segments, left to right.
// The caller may modify the returned slice.
func (p Pattern) Params() []string {
	if len(p.params) == 0 {
		return nil
	}
	return append([]string(nil), p.params...)
}

// Segments returns the number of segments, not counting a trailing slash:
// 0 for "/", 2 for "/users/{id}" and "/users/{id}/". It is the number used by
// the "more segments wins" precedence rule.
func (p Pattern) Segments() int { return len(p.segs) }

// slashes is the number of "/" in a path the pattern matches exactly, and
// the least number in one it matches as a prefix. Match compares it with
// the request path's count first: one integer comparison rejects most
// candidates of a table of CRUD routes.
func (p *Pattern) slashes() int {
	if p.trailing {
		return len(p.segs) + 1
	}
	return len(p.segs)
}

// match reports whether path matches the pattern, exactly or (prefix) on a
// segment boundary. It walks the string in place so that it never allocates;
// Match calls it for many candidate routes per request.
func (p *Pattern) match(path string, prefix bool) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	// rest is always empty or starts with the '/' before the next segment.
	rest := path
	for _, s := range p.segs {
		if rest == "" {
			return false
		}
		if !s.param {
			// A literal knows its length: compare, then demand a boundary,
			// instead of searching for the next '/'.
			n := len(s.lit) + 1
			if len(rest) < n || rest[1:n] != s.lit || len(rest) > n && rest[n] != '/' {
				return false
			}
			rest = rest[n:]
			continue
		}
		end := strings.IndexByte(rest[1:], '/') + 1
		if end == 0 {
			end = len(rest)
		}
		if end == 1 {
			return false // a parameter needs a non-empty segment
		}
		rest = rest[end:]
	}
	switch {
	case !prefix && !p.trailing:
		return rest == ""
	case !prefix:
		return rest == "/"
	case !p.trailing:
		// Whatever is left starts at a segment boundary ("" or "/...").
		return true
	default:
		// "/api/" as a prefix needs the slash: it matches "/api/" and below,
		// not "/api".
		return rest != ""
	}
}

// extract returns the values of the {param} segments from a path that is
// known to match. It allocates once, and only for patterns with parameters.
func (p *Pattern) extract(path string) Params {
	if len(p.params) == 0 {
		return nil
	}
	out := make(Params, 0, len(p.params))
	rest := path
	for _, s := range p.segs {
		end := strings.IndexByte(rest[1:], '/') + 1
		if end == 0 {
			end = len(rest)
		}
		if s.param {
			out = append(out, Param{Name: s.lit, Value: rest[1:end]})
		}
		rest = rest[end:]
	}
	return out
}

// compareSegments implements precedence rule 4: at the first position where
// one pattern has a literal and the other a parameter, the literal wins.
// It returns a negative number when a is more specific than b.
func compareSegments(a, b *Pattern) int {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].param != b.segs[i].param {
			if !a.segs[i].param {
				return -1
			}
			return 1
		}
	}
	return 0
}
