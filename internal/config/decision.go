package config

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// DefaultDecisionPath is decision_api.path.
const DefaultDecisionPath = "/.gatehouse/decide"

// DecisionAPI is the forward-auth endpoint that other proxies (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz)
// ask whether a request may pass (docs/forward-auth.md). It decides as the
// proxy path would (route, authentication, authorization, limits, audit)
// without proxying anything.
type DecisionAPI struct {
	// Path is where callers ask. Default /.gatehouse/decide.
	Path string `yaml:"path" desc:"Where trusted callers ask for decisions. The path itself takes the forwarded-header dialects (X-Forwarded-Method/-Uri/-Host/-Proto of Traefik and Caddy, X-Original-Method/-URI of nginx); a path below it is Envoy ext_authz's (path_prefix set to this path: the rest is the original path, the check request's method and Host the original's). Default /.gatehouse/decide."`
	// Listener, when set, names the one listener that serves the
	// decision API; it then serves nothing else. Default: every listener.
	Listener string `yaml:"listener" desc:"Name of the listener (listeners[].name) that serves the decision API; that listener then serves nothing else (every other request is 404). Default: the path is served on every listener, before routing."`
	// TrustedCallers are the proxies allowed to ask. Required.
	TrustedCallers []string `yaml:"trusted_callers" desc:"IPs or CIDRs of the proxies allowed to ask (the TCP peer). Anyone else is refused with 403 and their forwarded headers are never read. Also trusted, like forwarding.trusted_proxies, for the X-Forwarded-For they send. Required: at least one."`
	// NginxStatusMapping answers the refusals nginx cannot pass on with
	// 403 (nginx dialect only). Default false.
	NginxStatusMapping bool `yaml:"nginx_status_mapping" desc:"For requests in the nginx dialect (X-Original-URI) only: answer refusals whose status nginx auth_request cannot pass on (anything but 401 and 403: 429, 400, 404, 503...) with 403, the real status in X-Gatehouse-Status and the other headers (Retry-After, RateLimit) kept, so that error_page can restore it (docs/forward-auth.md). Default false: the gateway's own status, which nginx turns into 500."`
}

func (d *DecisionAPI) setDefaults() { d.Path = DefaultDecisionPath }

// validateDecisionAPI checks decision_api and the routes that depend on
// it (decision_only).
func validateDecisionAPI(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	d := c.DecisionAPI
	if d == nil {
		for i, r := range c.Routes {
			if r.DecisionOnly {
				add(fmt.Sprintf("routes[%d].decision_only", i), "there is no decision_api to ask: configure decision_api or remove decision_only")
			}
		}
		return errs
	}
	if !strings.HasPrefix(d.Path, "/") || len(d.Path) < 2 || strings.HasSuffix(d.Path, "/") || !cleanDecisionPath(d.Path) {
		add("decision_api.path", "%q: an absolute path without a trailing slash, \".\" or \"..\" segments, query or unusual characters is required", d.Path)
	}
	if d.Listener != "" {
		found := false
		for _, l := range c.Listeners {
			found = found || l.Name == d.Listener
		}
		if !found {
			add("decision_api.listener", "no listener is named %q", d.Listener)
		} else if len(c.Listeners) < 2 {
			add("decision_api.listener", "listener %q would serve only the decision API and leave no listener for the proxy: add a listener, or leave listener out to serve the path on every listener", d.Listener)
		}
	}
	if len(d.TrustedCallers) == 0 {
		add("decision_api.trusted_callers", "list the IPs or CIDRs of the proxies that ask: nobody else is answered")
	}
	for i, tc := range d.TrustedCallers {
		if _, err := clientip.NewResolver([]string{tc}); err != nil {
			add(fmt.Sprintf("decision_api.trusted_callers[%d]", i), "%q is not an IP address or CIDR", tc)
		}
	}
	if d.Listener == "" {
		// The decision API is looked for before routing on every
		// listener: a route at or below its path could never be reached.
		for i, r := range c.Routes {
			for _, kv := range [][2]string{{"path", r.Match.Path}, {"path_prefix", r.Match.PathPrefix}} {
				key, v := kv[0], kv[1]
				if v == d.Path || strings.HasPrefix(v, d.Path+"/") {
					add(fmt.Sprintf("routes[%d].match.%s", i, key), "%s is at or below decision_api.path (%s), which is answered before routing: this route could never be reached", v, d.Path)
				}
			}
		}
	}
	return errs
}

// cleanDecisionPath: letters, digits and -._~/ only, no empty, "." or ".."
// segment.
func cleanDecisionPath(p string) bool {
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return false
			}
		}
	}
	return true
}
