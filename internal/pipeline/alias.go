package pipeline

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/route"
)

// Path aliases (request_hygiene.path_aliases, docs/request-hygiene.md).
//
// Routes match the path exactly, byte for byte. Many backends do not:
// Express, ASP.NET, IIS and Spring (with its defaults of a few years ago)
// match paths case-insensitively or ignore a trailing slash; IIS and other
// Windows servers drop trailing dots and spaces from a segment and read
// "admin::$DATA" as "admin"; servlet containers cut a segment at ";";
// IIS's best-fit mapping and NFKC-normalising frameworks read the
// full-width "ａdmin" as "admin"; zero-width characters vanish in some.
// With a route "/admin" that authenticates and a public catch-all, a
// request for "/ADMIN", "/admin/", "/admin." or "/ａdmin" is routed to the
// catch-all, unauthenticated, and served by the backend as "/admin".
//
// So the path is also read the way the most lenient of those backends
// would read it (foldPath), and matched against the routes read the same
// way (aliasTable). When that lenient reading leads to another route than
// the exact one did, the request is refused (400 path-ambiguous): it is
// ambiguous which route's checks apply. Paths that no lenient reading
// changes (the common case: lower case, no trailing slash, dot or space,
// ASCII) cost one scan and no allocation.

var errPathAmbiguous = &RequestError{problem.PathAmbiguous,
	"This path would be read as another route's path by a backend that ignores case, trailing slashes, dots or spaces, \";\" parameters or Unicode compatibility forms."}

// aliases is the compiled alias check of one plan.
type aliases struct {
	// table holds the routes with folded patterns; nil when the check is
	// off (path_aliases: allow).
	table *route.Table[int]
	// always is set when some route's pattern is changed by folding (it
	// has an upper-case literal, say): then even a path that folding
	// does not change may be an alias of it.
	always bool
}

// compileAliases builds the folded route table for cfg.
func compileAliases(cfg *config.Config) (aliases, error) {
	if cfg.RequestHygiene.PathAliases == "allow" {
		return aliases{}, nil
	}
	var a aliases
	entries := make([]route.Entry[int], 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		spec := route.Spec{Hosts: rc.Match.Hosts, Path: rc.Match.Path, Methods: rc.Match.Methods}
		if rc.Match.PathPrefix != "" {
			spec.Path, spec.Prefix = rc.Match.PathPrefix, true
		}
		folded := foldPattern(spec.Path)
		a.always = a.always || folded != spec.Path
		spec.Path = folded
		entries = append(entries, route.Entry[int]{Spec: spec, Value: i})
	}
	t, err := route.NewTable(entries)
	if err != nil {
		return aliases{}, err
	}
	a.table = t
	return a, nil
}

// check refuses a request whose path, read leniently, leads to another
// route than res, the exact match for host, path and method. listed is
// whether the match was for an extension method (MatchListed).
func (a *aliases) check(host, path, method string, listed bool, res route.Result[*Route]) error {
	if a.table == nil || !a.always && !mayFold(path) {
		return nil
	}
	folded, ok := foldPath(path)
	if !ok {
		return errPathAmbiguous
	}
	if folded == path && !a.always {
		return nil
	}
	var lr route.Result[int]
	if listed {
		lr = a.table.MatchListed(host, folded, method)
	} else {
		lr = a.table.Match(host, folded, method)
	}
	switch lr.Status {
	case route.Matched:
		if lr.Index != res.Index {
			return errPathAmbiguous
		}
	case route.MethodNotAllowed:
		// A route claims the lenient path, for other methods only: the
		// backend may still serve this method there, which no route
		// allowed.
		return errPathAmbiguous
	}
	return nil
}

// mayFold reports whether foldPath could change p: it has upper-case
// ASCII, non-ASCII bytes, ';' or ':', a segment ending in '.' or ' ', or a
// trailing slash. It allocates nothing.
func mayFold(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c >= 0x80, 'A' <= c && c <= 'Z', c == ';', c == ':':
			return true
		case c == '.' || c == ' ':
			if i+1 == len(p) || p[i+1] == '/' {
				return true
			}
		case c == '/':
			if i+1 == len(p) && i > 0 {
				return true
			}
		}
	}
	return false
}

// foldPath reads a decoded, clean path the way a lenient backend would:
// each segment NFKC-normalised, without default-ignorable characters
// (zero-width spaces, soft hyphens), case-folded, cut at ';', without an
// NTFS "::$DATA" suffix and without trailing dots and spaces (unless that
// leaves nothing); a segment that reads as nothing (";x") dropped, as a
// lenient backend drops it; and without trailing slashes. ok is false when that
// reading creates a path separator, an escape, a query, a fragment or a
// dot segment that the path did not have (a full-width "／" or "．．"):
// such a path is refused whatever the routes.
func foldPath(p string) (folded string, ok bool) {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		b = append(b, '/')
		if b, ok = foldSegment(b, seg); !ok {
			return "", false
		}
		if seg != "" && b[len(b)-1] == '/' {
			// The segment read as nothing (";x", "::$DATA"): a
			// lenient backend sees no segment there, not an empty one
			// ("/a/;/b" is "/a/b" to it).
			b = b[:len(b)-1]
		}
		i = j
	}
	// Without trailing slashes, so that the folded path folds to itself.
	for len(b) > 1 && b[len(b)-1] == '/' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "/", true
	}
	return string(b), true
}

// foldSegment appends seg folded to dst; false when folding it created
// syntax ('/', '\', '%', '?', '#') or made it "." or "..".
func foldSegment(dst []byte, seg string) ([]byte, bool) {
	orig := seg
	ascii := true
	for i := 0; i < len(seg); i++ {
		if seg[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		n := norm.NFKC.String(seg)
		var sb strings.Builder
		sb.Grow(len(n))
		for _, r := range n {
			if r == utf8.RuneError || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) {
				continue
			}
			// ToUpper first: "ſ" (long s) and "ı" (dotless i) are upper-
			// cased to ASCII by .NET's and Java's case-insensitive
			// comparisons; ToLower then folds the Kelvin sign to "k".
			sb.WriteRune(unicode.ToLower(unicode.ToUpper(r)))
		}
		f := sb.String()
		if created(seg, f, '/') || created(seg, f, '\\') || created(seg, f, '%') ||
			created(seg, f, '?') || created(seg, f, '#') || created(seg, f, ';') {
			return dst, false
		}
		seg = f
	}
	if k := strings.IndexByte(seg, ';'); k >= 0 {
		seg = seg[:k]
	}
	lower := seg
	for i := 0; i < len(seg); i++ {
		if 'A' <= seg[i] && seg[i] <= 'Z' {
			lower = strings.ToLower(seg)
			break
		}
	}
	if len(lower) > len("::$data") && strings.HasSuffix(lower, "::$data") {
		lower = lower[:len(lower)-len("::$data")]
	}
	if t := strings.TrimRight(lower, ". "); t != "" {
		lower = t
	}
	if (lower == "." || lower == "..") && lower != orig {
		return dst, false
	}
	return append(dst, lower...), true
}

// created reports whether folding made more c than the segment had.
func created(seg, folded string, c byte) bool {
	return strings.Count(folded, string(c)) > strings.Count(seg, string(c))
}

// foldPattern folds the literal segments of a route pattern as foldPath
// folds a path; {param} segments are kept as they are.
func foldPattern(pat string) string {
	if pat == "" || pat[0] != '/' {
		return pat
	}
	parts := strings.Split(pat[1:], "/")
	for i, part := range parts {
		if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") || part == "" {
			continue
		}
		if b, ok := foldSegment(nil, part); ok && len(b) > 0 {
			parts[i] = string(b)
		}
	}
	out := "/" + strings.Join(parts, "/")
	if len(out) > 1 && out[len(out)-1] == '/' {
		out = out[:len(out)-1]
	}
	return out
}
