package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/route"
)

// Gateway-served routes and gateway-owned endpoints (docs/endpoints.md).

// MaxDirectResponseBody bounds direct_response.body: a status page, not a
// file server.
const MaxDirectResponseBody = 64 << 10

// DefaultMetadataMaxAge is protected_resource_metadata.cache_max_age.
const DefaultMetadataMaxAge = time.Hour

// DirectResponse makes the gateway answer a route's requests itself, with
// a fixed response (a health page, a maintenance notice, a 410 for a
// retired API), after the route's authentication and policy.
type DirectResponse struct {
	// Status is the response status. Default 200.
	Status int `yaml:"status" desc:"Status to answer with, 200 to 599. Default 200."`
	// ContentType of the body. Default text/plain; charset=utf-8 when a
	// body is set.
	ContentType string `yaml:"content_type" desc:"Content-Type of the body. Default text/plain; charset=utf-8 (only sent with a body)."`
	// Body is sent as it is, at most 64KiB.
	Body string `yaml:"body" desc:"The response body, at most 64KiB; none with 204 or 304. Default empty."`
	// Headers are added to the response.
	Headers map[string]string `yaml:"headers" desc:"Response headers, as Name: value (a Location must be an absolute http(s) URL or a path). Content-Type, Content-Length, Transfer-Encoding, Connection and Set-Cookie are refused. Default none."`
}

// ProtectedResource describes a route as an OAuth 2.0 protected resource
// (RFC 9728): the gateway serves its metadata document and names it in
// the route's 401 challenges.
type ProtectedResource struct {
	// Resource is the resource identifier clients use. Required.
	Resource string `yaml:"resource" desc:"The protected resource's identifier, the URL clients call (https; http only for a loopback host), without query or fragment. Its path gives the metadata path (/.well-known/oauth-protected-resource plus the path), and the advertised metadata URL is built from it, never from a request's Host. Required."`
	// ScopesSupported are advertised as scopes_supported.
	ScopesSupported []string `yaml:"scopes_supported" desc:"Scopes advertised as scopes_supported. Default none (member left out)."`
	// AuthorizationServers are advertised as authorization_servers.
	AuthorizationServers []string `yaml:"authorization_servers" desc:"Issuer URLs of the authorization servers, advertised as authorization_servers. Default: the issuers of the identity providers the route accepts (authenticate.providers, or every provider); one is required."`
	// ResourceName overrides protected_resource_metadata.resource_name.
	ResourceName string `yaml:"resource_name" desc:"Human-readable name (resource_name). Default protected_resource_metadata.resource_name."`
	// ResourceDocumentation overrides protected_resource_metadata.resource_documentation.
	ResourceDocumentation string `yaml:"resource_documentation" desc:"URL of documentation for developers (resource_documentation). Default protected_resource_metadata.resource_documentation."`
}

// ProtectedResourceMetadata holds what every route's RFC 9728 document
// shares. It turns nothing on by itself: only routes with
// protected_resource are described.
type ProtectedResourceMetadata struct {
	// ResourceName is the default resource_name.
	ResourceName string `yaml:"resource_name" desc:"Default resource_name of every protected_resource. Default none."`
	// ResourceDocumentation is the default resource_documentation.
	ResourceDocumentation string `yaml:"resource_documentation" desc:"Default resource_documentation URL of every protected_resource. Default none."`
	// CacheMaxAge is the documents' Cache-Control max-age. Default 1h.
	CacheMaxAge Duration `yaml:"cache_max_age" desc:"How long clients may cache a metadata document (Cache-Control: public, max-age). Default 1h; 0 sends no-cache."`
}

// WellKnownProtectedResource is the RFC 9728 well-known path.
const WellKnownProtectedResource = "/.well-known/oauth-protected-resource"

// MetadataPath returns the path of the metadata document of a resource
// identifier (RFC 9728 §3.1: the well-known path inserted between host and
// path, a terminating slash after the host removed) and its absolute URL.
func MetadataPath(resource string) (path, full string, err error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", "", err
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if u.Path == "/" || u.Path == "" {
		p = ""
	}
	path = WellKnownProtectedResource + p
	return path, u.Scheme + "://" + u.Host + path, nil
}

// AuthorizationServers returns the authorization servers of r's protected
// resource: its own list, or the issuers of the identity providers the
// route accepts for jwt.
func (c *Config) AuthorizationServers(r *Route) []string {
	pr := r.ProtectedResource
	if pr == nil {
		return nil
	}
	if len(pr.AuthorizationServers) > 0 {
		return pr.AuthorizationServers
	}
	a := r.Authenticate
	if a == nil || !slices.Contains(a.Methods, "jwt") {
		return nil
	}
	var out []string
	for _, p := range c.IdentityProviders {
		if (len(a.Providers) == 0 || slices.Contains(a.Providers, p.Name)) && !slices.Contains(out, p.Issuer) {
			out = append(out, p.Issuer)
		}
	}
	return out
}

var scopeRE = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,128}$`) // RFC 6749 §3.3 scope-token

// validateServed checks a route's gateway-served parts: exactly one of
// upstream and direct_response, and protected_resource.
func validateServed(c *Config, r *Route, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	hasUpstream := f.has(p+".upstream") || len(r.Upstream.Targets) > 0
	switch {
	case r.DecisionOnly:
		if hasUpstream || r.DirectResponse != nil {
			add(p+".decision_only", "a decision_only route has no upstream and no direct_response: the proxy in front of the gateway forwards the request")
		}
		if r.WebSocket || r.MaxInFlight > 0 {
			add(p+".decision_only", "websocket and max_in_flight apply to the gateway's own upstream, which a decision_only route does not have")
		}
	case r.DirectResponse != nil && hasUpstream:
		add(p, "set either upstream (proxied) or direct_response (served by the gateway), not both")
	case r.DirectResponse == nil && !hasUpstream:
		add(p+".upstream", "required: set upstream (proxied) or direct_response (served by the gateway), or decision_only with decision_api")
	case r.DirectResponse != nil:
		errs = append(errs, validateDirectResponse(r.DirectResponse, p+".direct_response", f)...)
		if r.WebSocket {
			add(p+".websocket", "a direct_response route has no upstream to upgrade to")
		}
	default:
		errs = append(errs, validateUpstream(r.Upstream, p+".upstream", f)...)
	}
	if pr := r.ProtectedResource; pr != nil {
		errs = append(errs, validateProtectedResource(c, r, p+".protected_resource", f)...)
	}
	return errs
}

func validateDirectResponse(d *DirectResponse, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	if d.Status < 200 || d.Status > 599 {
		add(p+".status", "%d: must be 200 to 599", d.Status)
	}
	if len(d.Body) > MaxDirectResponseBody {
		add(p+".body", "%d bytes: at most %d", len(d.Body), MaxDirectResponseBody)
	}
	if d.Body != "" && (d.Status == http.StatusNoContent || d.Status == http.StatusNotModified) {
		add(p+".body", "a %d response has no body", d.Status)
	}
	if d.ContentType != "" && !validHeaderValue(d.ContentType) {
		add(p+".content_type", "must not contain control characters")
	}
	for name, v := range d.Headers {
		hp := p + ".headers." + name
		switch canon := http.CanonicalHeaderKey(name); {
		case !headerNameRE.MatchString(name):
			add(hp, "%q is not a header name", name)
		case slices.Contains([]string{"Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Set-Cookie", "Trailer", "Upgrade", "Keep-Alive"}, canon):
			add(hp, "%s is set by the gateway (use content_type for Content-Type)", canon)
		case !validHeaderValue(v):
			add(hp, "the value must not contain control characters")
		case canon == "Location" && !reply.ValidLocation(v):
			add(hp, "%q: a Location must be an absolute http(s) URL or a path starting with a single /", v)
		}
	}
	return errs
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkResourceURL: https, or http for a loopback host; a host; no
// credentials, query or fragment.
func checkResourceURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", s)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q: an absolute URL with a host is required", s)
	case u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())):
		return fmt.Errorf("%q: the scheme must be https (http only for a loopback host)", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "#") || strings.HasSuffix(s, "?"):
		return fmt.Errorf("%q: no credentials, query or fragment", s)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validateProtectedResource(c *Config, r *Route, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	pr := r.ProtectedResource
	if r.Authenticate == nil {
		add(p, "a public route is no protected resource (set authenticate)")
	}
	if pr.Resource == "" {
		add(p+".resource", "required")
	} else if err := checkResourceURL(pr.Resource); err != nil {
		add(p+".resource", "%v", err)
	} else if path, _, err := MetadataPath(pr.Resource); err != nil {
		add(p+".resource", "%v", err)
	} else if _, err := route.ParsePath(path); err != nil || strings.ContainsAny(path, "{}") {
		add(p+".resource", "its path cannot be served as an exact path (%s)", path)
	}
	for i, s := range pr.ScopesSupported {
		if !scopeRE.MatchString(s) {
			add(fmt.Sprintf("%s.scopes_supported[%d]", p, i), "%q is not a scope (RFC 6749 §3.3)", s)
		}
	}
	for i, s := range pr.AuthorizationServers {
		if err := checkResourceURL(s); err != nil {
			add(fmt.Sprintf("%s.authorization_servers[%d]", p, i), "%v", err)
		}
	}
	if r.Authenticate != nil && len(pr.AuthorizationServers) == 0 && len(c.AuthorizationServers(r)) == 0 {
		add(p+".authorization_servers", "required: the route accepts no identity provider (jwt) whose issuer could be advertised")
	}
	if d := pr.ResourceDocumentation; d != "" {
		if err := checkResourceURL(d); err != nil {
			add(p+".resource_documentation", "%v", err)
		}
	}
	if !validHeaderValue(pr.ResourceName) {
		add(p+".resource_name", "must not contain control characters")
	}
	return errs
}

func validateMetadataDefaults(m *ProtectedResourceMetadata, f *File) Errors {
	var errs Errors
	if m == nil {
		return nil
	}
	if d := m.ResourceDocumentation; d != "" {
		if err := checkResourceURL(d); err != nil {
			errs = append(errs, f.Errorf("protected_resource_metadata.resource_documentation", "%v", err))
		}
	}
	if !validHeaderValue(m.ResourceName) {
		errs = append(errs, f.Errorf("protected_resource_metadata.resource_name", "must not contain control characters"))
	}
	return errs
}

// has reports whether the key path was present in the file.
func (f *File) has(path string) bool {
	if f == nil {
		return false
	}
	_, ok := f.pos[path]
	return ok
}

func (d *DirectResponse) setDefaults()            { d.Status = http.StatusOK }
func (m *ProtectedResourceMetadata) setDefaults() { m.CacheMaxAge = Duration(DefaultMetadataMaxAge) }
