package config

import (
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// TracesURL is the collector URL exports go to: Endpoint, with /v1/traces
// when it has no path.
func (t Tracing) TracesURL() string {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return t.Endpoint
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

// validateTracing checks the tracing block; a disabled block is not
// checked beyond its ranges, so it can be prepared before it is turned on.
func validateTracing(t Tracing, add func(path, format string, args ...any)) {
	if t.SamplingRatio < 0 || t.SamplingRatio > 1 {
		add("tracing.sampling_ratio", "must be between 0 and 1, not %v", t.SamplingRatio)
	}
	if t.Timeout < 0 {
		add("tracing.timeout", "must not be negative")
	}
	for name, value := range t.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			add("tracing.headers", "%q is not a valid header name", name)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			// The value is a secret: never echo it.
			add("tracing.headers."+name, "the value is not a valid header value")
		}
		if http.CanonicalHeaderKey(name) == "Content-Type" || http.CanonicalHeaderKey(name) == "Content-Length" {
			add("tracing.headers", "%s is set by the exporter", name)
		}
	}
	if !t.Enabled {
		return
	}
	if t.Endpoint == "" {
		add("tracing.endpoint", "is required when tracing is enabled")
		return
	}
	u, err := url.Parse(t.Endpoint)
	switch {
	case err != nil || u.Host == "":
		add("tracing.endpoint", "must be an absolute http(s) URL such as https://otel-collector:4318")
	case u.User != nil:
		add("tracing.endpoint", "must not carry credentials; use tracing.headers")
	case u.RawQuery != "" || u.Fragment != "":
		add("tracing.endpoint", "must not have a query or fragment")
	case strings.EqualFold(u.Scheme, "http") && !t.Insecure:
		add("tracing.endpoint", "is plain http: spans would cross the network unencrypted (use https, or set tracing.insecure: true)")
	case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https"):
		add("tracing.endpoint", "scheme must be http or https, not %q", u.Scheme)
	}
	if t.ServiceName == "" {
		add("tracing.service_name", "must not be empty")
	}
}
