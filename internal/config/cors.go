package config

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/cors"
)

// CORS is a route's cross-origin resource sharing policy
// (docs/cors.md). With it, the gateway answers the route's CORS preflights
// itself, without authentication and without the upstream, and sets the
// Access-Control-* response headers on every answer, replacing any the
// upstream sent.
type CORS struct {
	// AllowedOrigins are the origins whose scripts may read this route's
	// responses. Required.
	AllowedOrigins []string `yaml:"allowed_origins" desc:"Origins whose scripts may call this route: exact (https://app.example.com, http://localhost:3000), wildcard subdomains (https://*.example.com matches one or more labels, never example.com itself), or * for any origin (refused with allow_credentials). No paths; null is refused. Required."`
	// AllowedMethods may be asked for in a preflight. Default GET, HEAD, POST.
	AllowedMethods []string `yaml:"allowed_methods" desc:"Methods a cross-origin request may use (compared exactly, upper case; GET implies HEAD). Default GET, HEAD, POST."`
	// AllowedHeaders may be asked for in a preflight ("*": any).
	AllowedHeaders []string `yaml:"allowed_headers" desc:"Request headers a cross-origin request may send (case-insensitive), e.g. Authorization, Content-Type; * allows any. Default none (only the CORS-safelisted ones)."`
	// ExposedHeaders are response headers scripts may read.
	ExposedHeaders []string `yaml:"exposed_headers" desc:"Response headers beyond the CORS-safelisted ones that scripts may read (Access-Control-Expose-Headers). Default none."`
	// AllowCredentials lets browsers send cookies and Authorization.
	AllowCredentials bool `yaml:"allow_credentials" desc:"Let browsers send cookies and HTTP authentication and let scripts read the answer (Access-Control-Allow-Credentials: true). Refused with origin *. Default false."`
	// MaxAge is how long browsers may cache a preflight answer.
	MaxAge Duration `yaml:"max_age" desc:"How long a browser may cache a preflight answer (Access-Control-Max-Age, whole seconds; browsers cap it, Chromium at 2h). Default 0: no header, browsers cache for 5s."`
}

// Policy is the cors package's form of c.
func (c *CORS) Policy() cors.Config {
	return cors.Config{
		AllowedOrigins: c.AllowedOrigins, AllowedMethods: c.AllowedMethods,
		AllowedHeaders: c.AllowedHeaders, ExposedHeaders: c.ExposedHeaders,
		AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAge.Std(),
	}
}

// validateCORS checks a route's cors block, each origin at its own line.
func validateCORS(c *CORS, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	if len(c.AllowedOrigins) == 0 {
		add(p+".allowed_origins", "at least one origin is required")
	}
	for i, o := range c.AllowedOrigins {
		if err := cors.CheckOrigin(o, c.AllowCredentials); err != nil {
			add(fmt.Sprintf("%s.allowed_origins[%d]", p, i), "%s", strings.TrimPrefix(err.Error(), "cors: "))
		}
	}
	for i, m := range c.AllowedMethods {
		if !methodRE.MatchString(m) {
			add(fmt.Sprintf("%s.allowed_methods[%d]", p, i), "%q is not an upper-case HTTP method (e.g. GET)", m)
		}
	}
	for i, h := range c.AllowedHeaders {
		if h != "*" && !headerNameRE.MatchString(h) {
			add(fmt.Sprintf("%s.allowed_headers[%d]", p, i), "%q is not a header name", h)
		}
	}
	for i, h := range c.ExposedHeaders {
		if !headerNameRE.MatchString(h) || h == "*" && c.AllowCredentials {
			add(fmt.Sprintf("%s.exposed_headers[%d]", p, i), "%q is not a header name (* is not a wildcard with allow_credentials)", h)
		}
	}
	if c.MaxAge < 0 {
		add(p+".max_age", "must not be negative")
	}
	if len(errs) == 0 {
		if _, err := cors.New(c.Policy()); err != nil {
			add(p, "%v", err)
		}
	}
	return errs
}
