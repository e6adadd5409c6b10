// Package cors is the compiled form of a route's cross-origin resource
// sharing policy (Fetch standard, "CORS protocol"): which origins may read
// the route's responses from a browser, with which methods and headers, and
// whether cookies and Authorization may be sent along.
//
// Everything is parsed and checked once, by New; matching a request's
// Origin allocates nothing. The pipeline decides what to do with the
// answers (internal/pipeline/cors.go): this package does not touch HTTP
// messages beyond reading header values.
package cors

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a route's CORS policy as configured.
type Config struct {
	// AllowedOrigins are exact origins ("https://app.example.com",
	// "http://localhost:3000"), wildcard subdomains
	// ("https://*.example.com": one or more labels in place of "*"), or
	// "*" alone (any origin; refused with AllowCredentials).
	AllowedOrigins []string
	// AllowedMethods may be asked for in a preflight. Empty: GET, HEAD,
	// POST. GET implies HEAD, as in routing.
	AllowedMethods []string
	// AllowedHeaders may be asked for in a preflight, compared without
	// regard to case; "*" allows any.
	AllowedHeaders []string
	// ExposedHeaders are response headers scripts may read beyond the
	// CORS-safelisted ones.
	ExposedHeaders []string
	// AllowCredentials lets the browser send cookies and Authorization
	// and expose the response to the script.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer; 0: no
	// Access-Control-Max-Age header (browsers then cache for 5s).
	MaxAge time.Duration
}

// DefaultMethods are the methods allowed when AllowedMethods is empty.
var DefaultMethods = []string{"GET", "HEAD", "POST"}

// Policy is a compiled Config. It is immutable and safe for concurrent use.
type Policy struct {
	anyOrigin bool
	exact     []string // lower case, without a default port
	wildcards []wildcard
	methods   []string
	headers   []string // lower case
	anyHeader bool
	// Credentials is AllowCredentials.
	Credentials bool
	// Exposed is the Access-Control-Expose-Headers value ("" for none).
	Exposed string
	// MaxAge is the Access-Control-Max-Age value in seconds ("" for none).
	MaxAge string
}

// wildcard is "scheme://*.suffix[:port]" as prefix "scheme://" and
// suffix ".suffix[:port]".
type wildcard struct{ prefix, suffix string }

// New compiles c. Its errors name the offending value; config validation
// reports them with the file position.
func New(c Config) (*Policy, error) {
	p := &Policy{Credentials: c.AllowCredentials}
	if len(c.AllowedOrigins) == 0 {
		return nil, errors.New("cors: allowed_origins is empty")
	}
	for _, o := range c.AllowedOrigins {
		if err := CheckOrigin(o, c.AllowCredentials); err != nil {
			return nil, err
		}
		norm, _ := normalizeOrigin(o)
		switch {
		case norm == "*":
			p.anyOrigin = true
		case strings.Contains(norm, "://*."):
			scheme, rest, _ := strings.Cut(norm, "://")
			p.wildcards = append(p.wildcards, wildcard{prefix: scheme + "://", suffix: rest[1:]})
		default:
			p.exact = append(p.exact, norm)
		}
	}
	p.methods = slices.Clone(c.AllowedMethods)
	if len(p.methods) == 0 {
		p.methods = slices.Clone(DefaultMethods)
	}
	for _, m := range p.methods {
		if !isToken(m) {
			return nil, fmt.Errorf("cors: %q is not an HTTP method", m)
		}
	}
	if slices.Contains(p.methods, "GET") && !slices.Contains(p.methods, "HEAD") {
		// The gateway routes and authorizes HEAD as GET; CORS follows.
		p.methods = append(p.methods, "HEAD")
	}
	for _, h := range c.AllowedHeaders {
		if h == "*" {
			p.anyHeader = true
			continue
		}
		if !isToken(h) {
			return nil, fmt.Errorf("cors: %q is not a header name", h)
		}
		p.headers = append(p.headers, strings.ToLower(h))
	}
	for _, h := range c.ExposedHeaders {
		if !isToken(h) || h == "*" && c.AllowCredentials {
			return nil, fmt.Errorf("cors: %q is not a header name that can be exposed", h)
		}
	}
	p.Exposed = strings.Join(c.ExposedHeaders, ", ")
	if c.MaxAge < 0 {
		return nil, errors.New("cors: max_age must not be negative")
	}
	if c.MaxAge > 0 {
		p.MaxAge = strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
	return p, nil
}

// CheckOrigin reports whether s can be an allowed_origins entry: "*"
// (not with credentials), or scheme://host[:port] with no path, query,
// fragment or user info, where host may start with "*." followed by a
// domain of at least two labels. "null" is refused: sandboxed frames,
// file: pages and redirects all send it, so it identifies nobody.
func CheckOrigin(s string, credentials bool) error {
	_, err := normalizeOrigin(s)
	if err == nil && s == "*" && credentials {
		err = errors.New(`"*" cannot be combined with allow_credentials (browsers refuse it, and echoing every origin would let any site act with the user's cookies); list the origins`)
	}
	return err
}

// normalizeOrigin checks an allowed origin and returns it in lower case
// without a default port.
func normalizeOrigin(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("cors: origin %q %s", s, why)
	}
	switch s {
	case "*":
		return s, nil
	case "null":
		return bad("is sent by sandboxed frames, file: pages and redirects alike, so it cannot be trusted")
	}
	scheme, hostport, ok := strings.Cut(strings.ToLower(s), "://")
	if !ok || !validScheme(scheme) {
		return bad("is not scheme://host[:port] (e.g. https://app.example.com)")
	}
	if i := strings.IndexAny(hostport, "/?#@\\ \t"); i >= 0 {
		return bad("must not have a path, query, fragment or user info: an origin is scheme://host[:port] only")
	}
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("has an invalid port")
		}
		if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
			port = "" // browsers never send the default port
		}
	}
	switch {
	case host == "":
		return bad("has no host")
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		// An IPv6 literal: exact only.
	case strings.HasPrefix(host, "*."):
		domain := host[2:]
		if !validDomain(domain) || !strings.Contains(domain, ".") {
			return bad(`has a wildcard that is not "*." followed by a domain of at least two labels (e.g. https://*.example.com)`)
		}
	case !validDomain(host):
		return bad("has an invalid host (a wildcard may only be the whole leftmost label)")
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validDomain reports whether s is dot-separated non-empty labels of
// letters, digits and hyphens (lower case).
func validDomain(s string) bool {
	return s != "" && validLabels(s)
}

func validLabels(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII fold; only letters are affected by the comparisons below
		if !(c >= 'a' && c <= 'z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-' || s[i] == '.') {
			return false
		}
	}
	return true
}

// AllowOrigin reports whether origin (a request's Origin header) may read
// responses. Comparison ignores ASCII case; "null" and anything that is
// not a serialized origin match only "*".
func (p *Policy) AllowOrigin(origin string) bool {
	if p.anyOrigin {
		return true
	}
	for _, e := range p.exact {
		if strings.EqualFold(origin, e) {
			return true
		}
	}
	for _, w := range p.wildcards {
		if w.match(origin) {
			return true
		}
	}
	return false
}

// match: origin is prefix, then one or more labels, then suffix (which
// starts with "." and carries the port, if any).
func (w wildcard) match(origin string) bool {
	if len(origin) <= len(w.prefix)+len(w.suffix) ||
		!strings.EqualFold(origin[:len(w.prefix)], w.prefix) ||
		!strings.EqualFold(origin[len(origin)-len(w.suffix):], w.suffix) {
		return false
	}
	return validLabels(origin[len(w.prefix) : len(origin)-len(w.suffix)])
}

// AllowOriginValue is the Access-Control-Allow-Origin value for an
// allowed origin: "*" for a policy that allows any origin without
// credentials, otherwise the origin itself.
func (p *Policy) AllowOriginValue(origin string) string {
	if p.anyOrigin && !p.Credentials {
		return "*"
	}
	return origin
}

// AllowMethod reports whether method (compared exactly, as the Fetch
// standard does) may be used.
func (p *Policy) AllowMethod(method string) bool {
	return slices.Contains(p.methods, method)
}

// AllowHeaders reports whether every header named in list (an
// Access-Control-Request-Headers value: comma-separated names) is allowed.
// An empty list is allowed.
func (p *Policy) AllowHeaders(list string) bool {
	for list != "" {
		var name string
		name, list, _ = strings.Cut(list, ",")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !isToken(name) {
			return false
		}
		if p.anyHeader {
			continue
		}
		if !slices.ContainsFunc(p.headers, func(h string) bool { return strings.EqualFold(h, name) }) {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
