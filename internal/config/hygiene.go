package config

import (
	"fmt"
	"slices"
)

// RequestHygiene configures the checks every request passes before it is
// routed (docs/request-hygiene.md). Everything is strict by default; the
// switches loosen it globally, and routes opt in to what only they need
// (routes[].allow_encoded_slash, allow_path_params, method_override, and
// extension methods listed in match.methods).
type RequestHygiene struct {
	// AllowedMethods are the methods accepted on any route; anything else
	// (a lower-case "get", WebDAV's PROPFIND, CONNECT, TRACE) gets 501
	// unless the matched route lists it in match.methods. Default GET,
	// HEAD, POST, PUT, DELETE, OPTIONS, PATCH.
	AllowedMethods []string `yaml:"allowed_methods" desc:"Methods accepted on every route; any other method gets 501 unless the matched route lists it in match.methods (the per-route opt-in for WebDAV and other extension methods). Methods are case-sensitive, so a lower-case get never reaches a backend that would read it as GET. Default GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH: CONNECT (a tunnel nothing after it authenticates) and TRACE (echoes request headers, credentials included, back to scripts) are left out."`
	// RepeatedSlashes is what happens to a path with "//": refuse (400) or
	// merge (the route, the policies and the upstream all see one slash).
	// Default refuse.
	RepeatedSlashes string `yaml:"repeated_slashes" enum:"refuse,merge" desc:"A path with repeated slashes (/a//b): refuse answers 400; merge rewrites it to single slashes before routing, so the route, the policy and the upstream all see the same path. Default refuse: a backend that merges slashes itself would otherwise serve a path the gateway routed differently."`
	// UnderscoreHeaders is what happens to a header whose name has "_":
	// drop it (nginx's default) or refuse the request (400). Default drop.
	// PathAliases is what happens to a request whose path, read as a
	// lenient backend reads it (ignoring case, a trailing slash, trailing
	// dots and spaces of a segment, ";" parameters, Unicode compatibility
	// forms), leads to another route than the exact path does: refuse
	// (400) or allow. Default refuse.
	PathAliases       string `yaml:"path_aliases" enum:"refuse,allow" desc:"A request whose path leads to another route when read as lenient backends read it (case-insensitively, without a trailing slash, without trailing dots or spaces in a segment or an NTFS ::$DATA suffix, cut at ;, NFKC-normalised as full-width letters are): refuse answers 400 path-ambiguous; allow routes it on the exact path only. Default refuse: with a route /admin that authenticates and a public catch-all, /ADMIN, /admin/, /admin. or a full-width /ａdmin would otherwise reach a backend that serves them as /admin, unauthenticated."`
	UnderscoreHeaders string `yaml:"underscore_headers" enum:"drop,refuse" desc:"Request headers whose name contains an underscore: drop removes them (nginx's default), refuse answers 400. Many backends (CGI, WSGI, PHP, some nginx setups) read X_User and X-User as one name, so such a header could stand in for one the gateway checked or set. Default drop."`
}

// DefaultAllowedMethods are request_hygiene.allowed_methods by default.
func DefaultAllowedMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
}

func defaultRequestHygiene() RequestHygiene {
	return RequestHygiene{AllowedMethods: DefaultAllowedMethods(), RepeatedSlashes: "refuse", UnderscoreHeaders: "drop", PathAliases: "refuse"}
}

func validateHygiene(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	h := c.RequestHygiene
	if len(h.AllowedMethods) == 0 {
		add("request_hygiene.allowed_methods", "must list at least one method")
	}
	for i, m := range h.AllowedMethods {
		p := fmt.Sprintf("request_hygiene.allowed_methods[%d]", i)
		switch {
		case !methodRE.MatchString(m):
			add(p, "%q is not an upper-case HTTP method (e.g. GET)", m)
		case slices.Contains(h.AllowedMethods[:i], m):
			add(p, "%q is listed twice", m)
		}
	}
	for i, r := range c.Routes {
		if r.MethodOverride && len(r.Match.Methods) > 0 && !slices.Contains(r.Match.Methods, "POST") {
			add(fmt.Sprintf("routes[%d].method_override", i), "only a POST may carry a method override, and match.methods does not list POST")
		}
	}
	return errs
}
