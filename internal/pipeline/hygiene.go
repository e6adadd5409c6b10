package pipeline

import (
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/route"
)

// Request hygiene: what every request must look like before it is routed
// (request_hygiene in the configuration, docs/request-hygiene.md). The
// gateway decides on the path, method, host and headers it sees; a backend
// that reads any of them differently (decodes %2F, strips ";params", reads
// X_User as X-User, takes the last of two X-Tenant headers, obeys
// X-HTTP-Method-Override) would serve a request other than the one that was
// authorized. Such requests are refused, or made unambiguous, before the
// route match.
//
// Everything is compiled once per plan; a clean request allocates nothing.

// RequestError is a request refused by request hygiene: 400 (or 501 for a
// method outside the allow-list), with a stable problem type per class.
type RequestError struct {
	Type   problem.Type
	Detail string
}

func (e *RequestError) Error() string { return "pipeline: request refused: " + e.Type.Slug }

// The refusal classes. Each is one value, so refusing allocates nothing.
var (
	errPathControl = &RequestError{problem.PathControlCharacter,
		"The request path must not contain control characters, raw or percent-encoded."}
	errPathBackslash = &RequestError{problem.PathBackslash,
		"The request path must not contain a backslash."}
	errPathFragment = &RequestError{problem.PathFragment,
		"The request path must not contain a raw \"#\"."}
	errPathEncodedSeparator = &RequestError{problem.PathEncodedSeparator,
		"This route does not accept an encoded \"/\" or \"\\\" (%2F, %5C) in the path."}
	errPathParameter = &RequestError{problem.PathParameter,
		"This route does not accept \";\" path parameters."}
	errPathDoubleEncoding = &RequestError{problem.PathDoubleEncoding,
		"The request path must not contain a double percent-encoded \".\", \"/\", \"\\\", \"%\" or control character."}
	errPathUTF8 = &RequestError{problem.PathInvalidUTF8,
		"The request path must be valid UTF-8 once percent-decoded."}
	errPathRepeatedSlash = &RequestError{problem.PathRepeatedSlash,
		"The request path must not contain repeated slashes."}
	errMethodNotImplemented = &RequestError{problem.MethodNotImplemented,
		"This method is not accepted here."}
	errUnderscoreHeader = &RequestError{problem.UnderscoreHeader,
		"Header names must not contain an underscore."}
	errInvalidHost = &RequestError{problem.InvalidHost,
		"The Host header must be a host name, an IPv4 address or a bracketed IPv6 address, optionally followed by \":\" and a port."}
	errAmbiguousParameter = &RequestError{problem.AmbiguousParameter,
		"A header or query parameter that this route's policy checks was sent more than once, or the query cannot be read unambiguously."}
	errMethodOverride = &RequestError{problem.AmbiguousMethodOverride,
		"The method override headers disagree or repeat."}
)

// methodOverrideHeaders are removed from every request, or honoured on a
// POST to a route with method_override.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// untrustedHeaders are removed when the TCP peer is not a trusted proxy:
// client-address, original-URL and other proxies' identity headers that
// some backends and frameworks believe (Symfony and IIS read X-Original-URL and
// X-Rewrite-URL as the path to serve, so /public with X-Original-URL:
// /admin serves /admin). X-Forwarded-For, -Host, -Proto and Forwarded are
// not listed: the proxy replaces them on the outgoing request.
var untrustedHeaders = []string{
	"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "Client-Ip", "X-Cluster-Client-Ip",
	"Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Original-Forwarded-For",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Forwarded-Uri", "X-Forwarded-Path",
	"X-Original-Host", "X-Forwarded-Server", "X-Host", "X-Http-Host-Override",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Url-Scheme",
	"X-Original-Method", "X-Forwarded-Method",
	"X-Forwarded-Protocol", "X-Original-Proto", "Front-End-Https", "X-Arr-Ssl", "X-Arr-Clientcert", "X-Proxyuser-Ip",
	// Envoy (an Istio sidecar in front of the backend) believes these
	// from whoever sent them: x-envoy-internal makes a request internal.
	"X-Envoy-Internal", "X-Envoy-External-Address", "X-Envoy-Original-Path", "X-Envoy-Original-Host",
	// Identity that other authenticating proxies vouch for, which backends
	// written for them believe: oauth2-proxy and nginx auth_request, Apache
	// and Grafana's auth proxy (Remote-User), Kong, Azure App Service,
	// AWS ALB, Google IAP, Cloudflare Access, and client certificates
	// verified by a TLS terminator (Envoy's XFCC, nginx's $ssl_client_*).
	// Gatehouse never sets them unless they are configured as identity
	// headers (then they are removed from every request anyway).
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Access-Token", "X-Forwarded-Uid",
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username", "X-Auth-Request-Access-Token",
	"Remote-User", "Remote-Email", "Remote-Groups", "Remote-Name", "X-Remote-User", "X-Remote-Group", "X-Remote-Groups",
	"X-Authenticated-User", "X-Authenticated-Userid", "X-Authenticated-Groups", "X-Authenticated-Scope",
	"X-Consumer-Id", "X-Consumer-Username", "X-Consumer-Custom-Id", "X-Consumer-Groups",
	"X-Credential-Identifier", "X-Anonymous-Consumer", "X-Userinfo",
	"X-Ms-Client-Principal", "X-Ms-Client-Principal-Name", "X-Ms-Client-Principal-Id", "X-Ms-Client-Principal-Idp",
	"X-Ms-Token-Aad-Access-Token", "X-Ms-Token-Aad-Id-Token",
	"X-Amzn-Oidc-Data", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Accesstoken",
	"X-Goog-Authenticated-User-Email", "X-Goog-Authenticated-User-Id", "X-Goog-Iap-Jwt-Assertion",
	"Cf-Access-Jwt-Assertion", "Cf-Access-Authenticated-User-Email",
	"X-Webauth-User", "X-Webauth-Email", "X-Webauth-Name", "X-Webauth-Groups",
	"X-Jwt-Assertion", "X-Endpoint-Api-Userinfo", "X-Apigateway-Api-Userinfo",
	"X-Forwarded-Client-Cert", "X-Client-Cert", "X-Client-Verify", "X-Client-Dn",
	"X-Ssl-Client-Cert", "X-Ssl-Client-Verify", "X-Ssl-Client-S-Dn", "X-Ssl-Client-I-Dn", "Ssl-Client-Cert", "Ssl-Client-Verify",
	"X-Amzn-Mtls-Clientcert", "X-Amzn-Mtls-Clientcert-Leaf", "X-Amzn-Mtls-Clientcert-Serial-Number",
	"X-Amzn-Mtls-Clientcert-Issuer", "X-Amzn-Mtls-Clientcert-Subject", "X-Amzn-Mtls-Clientcert-Validity",
}

type headerClass uint8

const (
	hdrOverride headerClass = iota + 1
	hdrUntrusted
)

// finding is something a request carries that only routes that opt in
// accept; the check before routing records it, the matched route decides.
type finding uint8

const (
	foundEncodedSeparator finding = 1 << iota
	foundPathParam
	foundExtensionMethod
	foundRepeatedSlash
)

// hygiene is the compiled request_hygiene plus the per-route opt-ins.
type hygiene struct {
	allowed []string // methods accepted on every route
	// routeMethods are methods outside allowed that some route lists in
	// match.methods: they pass the first check and the route decides.
	routeMethods     []string
	mergeSlashes     bool
	refuseUnderscore bool
	special          map[string]headerClass // canonical name → class
	anyOverride      bool                   // some route honours method override
	routes           []routeHygiene         // by route index
}

// routeHygiene is one route's opt-ins.
type routeHygiene struct {
	encodedSlash, pathParams, methodOverride bool
	methods                                  []string // match.methods
}

func compileHygiene(cfg *config.Config) hygiene {
	h := hygiene{
		allowed:          slices.Clone(cfg.RequestHygiene.AllowedMethods),
		mergeSlashes:     cfg.RequestHygiene.RepeatedSlashes == "merge",
		refuseUnderscore: cfg.RequestHygiene.UnderscoreHeaders == "refuse",
		special:          map[string]headerClass{},
	}
	if len(h.allowed) == 0 { // a Config not from config.Load (tests)
		h.allowed = config.DefaultAllowedMethods()
	}
	for _, n := range methodOverrideHeaders {
		h.special[n] = hdrOverride
	}
	for _, n := range untrustedHeaders {
		h.special[http.CanonicalHeaderKey(n)] = hdrUntrusted
	}
	for _, rc := range cfg.Routes {
		h.routes = append(h.routes, routeHygiene{
			encodedSlash: rc.AllowEncodedSlash, pathParams: rc.AllowPathParams,
			methodOverride: rc.MethodOverride, methods: slices.Clone(rc.Match.Methods),
		})
		h.anyOverride = h.anyOverride || rc.MethodOverride
		for _, m := range rc.Match.Methods {
			if !slices.Contains(h.allowed, m) && !slices.Contains(h.routeMethods, m) {
				h.routeMethods = append(h.routeMethods, m)
			}
		}
	}
	return h
}

// route runs the checks, matches the route and applies its opt-ins: the
// one way from a request to its route, for ServeHTTP and Inspect alike. It
// may edit r: headers removed, host and (with merge) path normalised, the
// method replaced by an honoured override.
func (p *Plan) route(r *http.Request, trustedPeer bool) (route.Result[*Route], error) {
	var none route.Result[*Route]
	h := &p.hygiene
	var found finding
	if !slices.Contains(h.allowed, r.Method) {
		if !slices.Contains(h.routeMethods, r.Method) {
			return none, errMethodNotImplemented
		}
		found |= foundExtensionMethod
	}
	if err := normalizeHost(r); err != nil {
		return none, err
	}
	override, err := h.headers(r.Header, trustedPeer)
	if err != nil {
		return none, err
	}
	f, err := checkPath(r.URL.Path, r.URL.RawPath)
	if err != nil {
		return none, err
	}
	found |= f
	if found&foundRepeatedSlash != 0 {
		if !h.mergeSlashes {
			return none, errPathRepeatedSlash
		}
		mergeSlashes(r.URL)
	}
	if !cleanPath(r.URL.Path) {
		return none, errBadPath
	}

	var res route.Result[*Route]
	overridden := false
	if override != "" {
		res, overridden = p.matchOverride(r, override)
	}
	if !overridden {
		if pf, ok := p.matchPreflight(r, found); ok {
			return pf, nil // answered by the gateway (cors.go): no backend, no alias check
		}
		if found&foundExtensionMethod != 0 {
			res = p.table.MatchListed(r.Host, r.URL.Path, r.Method)
		} else {
			res = p.table.Match(r.Host, r.URL.Path, r.Method)
		}
		switch res.Status {
		case route.NotFound:
			return none, errRouteNotFound
		case route.MethodNotAllowed:
			if found&foundExtensionMethod != 0 {
				return none, errMethodNotImplemented
			}
			return none, &MethodNotAllowedError{Allow: res.Allow}
		}
	}
	if found != 0 {
		if err := h.routes[res.Index].admit(found, r.Method); err != nil {
			return none, err
		}
	}
	if res.Shadow >= 0 && p.routes[res.Index].public && !p.routes[res.Shadow].public {
		// A more specific route authenticates this host and path but not
		// this method, and a public route would take it instead: a method
		// must never move a request from an authenticated route to a
		// public one (the same backend may well serve it). HEAD is GET's
		// (route.Table); other methods get 405.
		return none, &MethodNotAllowedError{Allow: p.table.Allow(r.Host, r.URL.Path)}
	}
	if p.routes[res.Index].decisionOnly && !isDecisionRequest(r) {
		return none, errRouteNotFound // decide.go: no upstream, decided for another proxy only
	}
	listed := !slices.Contains(h.allowed, r.Method)
	if p.routes[res.Index].serve == nil { // a gateway-owned endpoint has no lenient backend
		if err := p.aliases.check(r.Host, r.URL.Path, r.Method, listed, res); err != nil {
			return none, err
		}
	}
	if p.anyCORS {
		res = refusedPreflight(r, res)
	}
	return res, nil
}

// admit applies a matched route's opt-ins to what the checks found.
func (rh *routeHygiene) admit(found finding, method string) error {
	switch {
	case found&foundEncodedSeparator != 0 && !rh.encodedSlash:
		return errPathEncodedSeparator
	case found&foundPathParam != 0 && !rh.pathParams:
		return errPathParameter
	case found&foundExtensionMethod != 0 && !slices.Contains(rh.methods, method):
		// Matched through "any method" or HEAD-as-GET: an extension method
		// must be named by the route itself.
		return errMethodNotImplemented
	}
	return nil
}

// matchOverride honours a method override on a POST whose route, matched
// with the overriding method, opts in: that method is then the one
// matched, authorized and sent upstream. ok is false when the override
// does not apply; the request goes on as the POST it is (its override
// headers are gone, so no backend acts on them).
func (p *Plan) matchOverride(r *http.Request, method string) (res route.Result[*Route], ok bool) {
	if r.Method != http.MethodPost {
		return res, false
	}
	h := &p.hygiene
	if !slices.Contains(h.allowed, method) && !slices.Contains(h.routeMethods, method) {
		return res, false
	}
	if slices.Contains(h.allowed, method) {
		res = p.table.Match(r.Host, r.URL.Path, method)
	} else {
		res = p.table.MatchListed(r.Host, r.URL.Path, method)
	}
	if res.Status != route.Matched {
		return res, false
	}
	rh := &h.routes[res.Index]
	if !rh.methodOverride || !slices.Contains(h.allowed, method) && !slices.Contains(rh.methods, method) {
		return res, false
	}
	r.Method = method
	return res, true
}

// headers removes what must not travel (method overrides, client-address
// and original-URL headers from untrusted peers, underscore names) in one
// pass over the header map, and returns the method override to consider
// ("" for none). It allocates nothing.
func (h *hygiene) headers(hd http.Header, trustedPeer bool) (override string, err error) {
	for k, v := range hd {
		if strings.IndexByte(k, '_') >= 0 {
			if h.refuseUnderscore {
				return "", errUnderscoreHeader
			}
			delete(hd, k)
			continue
		}
		switch h.special[k] {
		case hdrOverride:
			if h.anyOverride {
				// All override headers must agree, once each.
				if len(v) != 1 || v[0] == "" || override != "" && override != v[0] {
					return "", errMethodOverride
				}
				override = v[0]
			}
			delete(hd, k)
		case hdrUntrusted:
			if !trustedPeer {
				delete(hd, k)
			}
		}
	}
	return override, nil
}

// normalizeHost checks the Host (or the authority of an absolute-form
// request target, which net/http puts in r.Host) and writes it in one
// spelling: lower case, without the trailing dot ("API.Example.com." and
// "api.example.com.:443" name the same host as "api.example.com"), so the
// route, the policy (request.host) and the upstream (preserve_host) all see
// the same name.
//
// Only what every reader parses one way is accepted: a name of letters,
// digits, '-', '_' and '.' without empty labels, an IPv4 address, or an
// IPv6 literal in brackets, then optionally ':' and a port of 1 to 5
// digits. net/http lets much more through ("a%2eb", "[x]y", "h:1:2",
// "h:abc", "h:"), and a backend that decodes, strips brackets or splits at
// another colon than the route table did would see another host than the
// one that was routed, authenticated and authorized (a virtual host behind
// a public catch-all). An empty Host (HTTP/1.0) is left as it is. It
// allocates only when it changes something.
func normalizeHost(r *http.Request) error {
	host := r.Host
	if hv, ok := r.Header["Host"]; ok {
		// Only over HTTP/2 (net/http removes Host from HTTP/1.x headers):
		// a Host field beside :authority. RFC 9113 §8.3.1: one that names
		// another host makes the request malformed. Either way it goes, so
		// that nothing (a policy reading request.headers) sees a second
		// host.
		if len(hv) != 1 || !strings.EqualFold(hv[0], host) {
			return errInvalidHost
		}
		delete(r.Header, "Host")
	}
	if host == "" {
		return nil
	}
	name, port := host, ""
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return errInvalidHost
		}
		port = host[end+1:]
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" || port != "" && !validPort(port) {
			return errInvalidHost
		}
		// One spelling per address (RFC 5952: lower case, zeros
		// compressed), as for names: "[::0A]" and "[0:0::a]" are "[::a]".
		var buf [64]byte
		if canon := a.AppendTo(buf[:0]); string(canon) != host[1:end] {
			r.Host = "[" + string(canon) + "]" + port
		}
		return nil
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	}
	if name == "" || port != "" && !validPort(port) {
		return errInvalidHost
	}
	changed := false
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			changed = true
		case c == '.':
			// No empty label: not first, not after another dot, and
			// only the one trailing dot of a fully qualified name.
			if i == 0 || name[i-1] == '.' {
				return errInvalidHost
			}
		default:
			return errInvalidHost
		}
	}
	if name[len(name)-1] == '.' {
		name, changed = name[:len(name)-1], true
	}
	if endsInNumber(name) {
		// URL parsers (WHATWG, so browsers, Node, many proxies) read a
		// host whose last label is a number as an IPv4 address in any
		// of its spellings: "127.1", "0x7f.0.0.1", "2130706433" and
		// "127.000.0.1" are 127.0.0.1 to them and other names to the
		// route table. Only the dotted-quad spelling is accepted.
		if a, err := netip.ParseAddr(name); err != nil || !a.Is4() {
			return errInvalidHost
		}
	}
	if changed {
		r.Host = strings.ToLower(name) + port
	}
	return nil
}

// endsInNumber reports whether the last label of a host name is a number
// in the WHATWG URL sense: decimal digits, or "0x" and hex digits. Such a
// host is an IPv4 address to a URL parser, whatever else it spells.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		last = last[2:]
		for i := 0; i < len(last); i++ {
			if c := last[i] | 0x20; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	if last == "" {
		return false
	}
	for i := 0; i < len(last); i++ {
		if c := last[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validPort reports whether p is ":" followed by a decimal port, 0-65535,
// of at most 5 digits.
func validPort(p string) bool {
	if len(p) < 2 || len(p) > 6 || p[0] != ':' {
		return false
	}
	n := 0
	for i := 1; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// checkPath inspects a request path: path is r.URL.Path (decoded), raw is
// r.URL.RawPath, the path as sent when that differs from the default
// encoding of path ("" otherwise: then every byte that the default
// encoding escapes, such as '\', was sent percent-encoded). It refuses what
// no route may receive and reports what only routes that opt in accept.
// It allocates nothing.
func checkPath(path, raw string) (finding, error) {
	var found finding
	if raw != "" && !sentAsRaw(raw) && !strings.ContainsAny(raw, `\#`) {
		// net/url forwards a raw path only when each of its bytes may
		// stand in a path unescaped (URL.EscapedPath); otherwise (a space
		// in an HTTP/2 :path, say) the upstream gets the decoded path
		// escaped again: "/%2F 00" leaves as "//%2000", a repeated
		// slash. Judge what leaves. (A raw '\' or '#' is refused below.)
		raw = ""
	}
	nonASCII := false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c < 0x20 || c == 0x7f:
			return 0, errPathControl
		case c >= 0x80:
			nonASCII = true
		case c == '\\':
			if raw == "" {
				found |= foundEncodedSeparator // sent as %5C
			}
		case c == ';':
			found |= foundPathParam
		case c == '/':
			// Judged on the path as sent: "/a/%2F" is an encoded slash
			// (the route's opt-in decides), not a repeated one.
			if raw == "" && i > 0 && path[i-1] == '/' {
				found |= foundRepeatedSlash
			}
		case c == '%':
			// A "%XX" left after decoding was sent as "%25XX": a backend
			// that decodes once more would see the byte XX.
			if i+2 < len(path) {
				if v, ok := unhex2(path[i+1], path[i+2]); ok && doubleEncodedUnsafe(v) {
					return 0, errPathDoubleEncoding
				}
			}
		}
	}
	if nonASCII && !utf8.ValidString(path) {
		return 0, errPathUTF8 // overlong forms (%C0%AE for ".") are invalid too
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			return 0, errPathBackslash
		case '/':
			if i > 0 && raw[i-1] == '/' {
				found |= foundRepeatedSlash
			}
		case '#':
			// Never sent by a browser: a backend that cuts the path here
			// would serve a different path than the one routed.
			return 0, errPathFragment
		case '%':
			if i+2 < len(raw) {
				if v, ok := unhex2(raw[i+1], raw[i+2]); ok && (v == '/' || v == '\\') {
					found |= foundEncodedSeparator
				}
			}
		}
	}
	return found, nil
}

// doubleEncodedUnsafe: bytes that must not appear double-encoded; bytes
// of 0x80 and above too, since a lenient decoder turns an overlong form
// such as %C0%AE into ".".
func doubleEncodedUnsafe(v byte) bool {
	return v == '.' || v == '/' || v == '\\' || v == '%' || v < 0x20 || v >= 0x7f
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// mergeSlashes rewrites repeated slashes to one, in the path as sent, and
// decodes the result again, so the route, the policy and the upstream see
// one path (an encoded slash stays encoded).
func mergeSlashes(u *url.URL) {
	if u.RawPath == "" {
		u.Path = mergeSlashRuns(u.Path)
		return
	}
	u.RawPath = mergeSlashRuns(u.RawPath)
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
}

func mergeSlashRuns(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '/' && i > 0 && s[i-1] == '/' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cleanPath reports whether a (decoded) path is absolute and free of "."
// and ".." segments. Such segments are refused rather than resolved: the
// route is chosen on the path as sent, and an upstream that resolves
// "/public/../admin" itself would otherwise serve a path whose route (and
// its authentication) never ran. For this check a backslash also ends a
// segment (Windows servers split on it) and a segment ends at its first
// ';' (servlet containers strip path parameters, so "..;" is ".." to
// them), whatever the route accepts.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); {
		j := i + 1
		for j < len(p) && p[j] != '/' && p[j] != '\\' {
			j++
		}
		seg := p[i+1 : j]
		if k := strings.IndexByte(seg, ';'); k >= 0 {
			seg = seg[:k]
		}
		if seg == "." || seg == ".." {
			return false
		}
		i = j
	}
	return true
}

// policyReads is a route policy's authz.Reads, compiled for the check of
// each request: header names canonical, as net/http stores them.
type policyReads struct {
	headers   []string // canonical
	lower     []string // as the policy reads them
	query     []string
	anyHeader bool
	anyQuery  bool
}

func compileReads(r authz.Reads) *policyReads {
	if r.Empty() {
		return nil
	}
	pr := &policyReads{query: r.Query, anyHeader: r.AnyHeader, anyQuery: r.AnyQuery, lower: r.Headers}
	for _, n := range r.Headers {
		pr.headers = append(pr.headers, http.CanonicalHeaderKey(n))
	}
	return pr
}

// ambiguous reports whether a header or query parameter that the policy
// reads has more than one value (or the query cannot be parsed the one way
// every backend would): the policy would check the first value while a
// backend may use another.
func (pr *policyReads) ambiguous(h http.Header, query url.Values, queryErr error) bool {
	if pr == nil {
		return false
	}
	if pr.anyHeader {
		for _, v := range h {
			if len(v) > 1 {
				return true
			}
		}
	} else {
		for _, n := range pr.headers {
			if len(h[n]) > 1 {
				return true
			}
		}
		// A name that is not in canonical form (net/http leaves names with
		// unusual bytes alone) is matched case-insensitively by the policy.
		for k := range h {
			if k != http.CanonicalHeaderKey(k) {
				for _, n := range pr.lower {
					if strings.EqualFold(k, n) {
						return true
					}
				}
			}
		}
	}
	if len(pr.query) > 0 || pr.anyQuery {
		if queryErr != nil {
			return true // e.g. ";" separators, which some backends split on
		}
		if pr.anyQuery {
			for _, v := range query {
				if len(v) > 1 {
					return true
				}
			}
		}
		for _, n := range pr.query {
			if len(query[n]) > 1 {
				return true
			}
		}
	}
	return false
}

// peerTrusted reports whether r's TCP peer is a trusted proxy.
func (p *Plan) peerTrusted(r *http.Request) bool {
	return p.resolver.Trusted(clientip.Peer(r.RemoteAddr))
}

// PeerTrusted reports whether r's TCP peer is in the plan's
// forwarding.trusted_proxies (the gateway reads forwarded client
// certificates only from those).
func (p *Plan) PeerTrusted(r *http.Request) bool { return p.peerTrusted(r) }

// sentAsRaw reports whether every byte of a raw path may appear in a path
// unescaped, as net/url's EscapedPath requires before it uses RawPath:
// letters, digits, "-._~", the sub-delimiters, ':', '@', '[', ']', '%'
// and '/'.
func sentAsRaw(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@[]%/", c) >= 0:
		default:
			return false
		}
	}
	return true
}
