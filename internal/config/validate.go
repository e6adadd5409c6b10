package config

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/route"
)

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	methodRE = regexp.MustCompile(`^[A-Z][A-Z0-9_-]{0,31}$`)
	// headerNameRE is an RFC 9110 token, the form of a header field name.
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
)

// validate checks values the decoder cannot: relations between fields,
// addresses, URLs, patterns and files. Every problem is collected.
func validate(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }

	addrs := map[string]string{}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if err := checkHostPort(l.Address); err != nil {
			add(p+".address", "%v", err)
		} else if other, dup := addrs[l.Address]; dup {
			add(p+".address", "address %s is already used by %s", l.Address, other)
		} else if !strings.HasSuffix(l.Address, ":0") {
			// Port 0 means "any free port" (tests); such addresses never clash.
			addrs[l.Address] = p
		}
		if names[l.Name] {
			add(p+".name", "duplicate listener name %q", l.Name)
		}
		names[l.Name] = true
		if l.MaxHeaderBytes < 1024 {
			add(p+".max_header_bytes", "must be at least 1KiB, got %s", l.MaxHeaderBytes)
		}
		if l.Timeouts.ReadHeader == 0 {
			add(p+".timeouts.read_header", "must be greater than 0: without it a slow client can hold a connection forever")
		}
		if l.TLS != nil {
			if missing := l.TLS.missingFiles(); missing != "" {
				// One message for "tls: {}", a tls section holding only
				// min_version, and a file left out: a listener with tls is
				// HTTPS, and HTTPS cannot start without both files.
				add(p+".tls", "HTTPS needs cert_file and key_file; %s missing (remove tls to serve plain HTTP)", missing)
			} else if _, err := tls.LoadX509KeyPair(l.TLS.CertFile, l.TLS.KeyFile); err != nil {
				add(p+".tls", "cannot load certificate and key: %v", err)
			}
			if cc := l.TLS.ClientCertificates; cc != nil {
				validateClientCertificates(p+".tls.client_certificates", cc, add)
			}
		}
		if fc := l.ForwardedClientCertificates; fc != nil {
			validateForwardedClientCertificates(p+".forwarded_client_certificates", fc, len(c.Forwarding.TrustedProxies) > 0, add)
		}
	}
	if h := c.Admin.TokenHash; h != "" {
		if _, err := ParseTokenHash(h); err != nil {
			add("admin.token_hash", "%v", err)
		}
	}
	noToken := c.Admin.TokenHash == "" && c.Admin.TokenFile == ""
	if c.Admin.Pprof && noToken {
		add("admin.pprof", "pprof is served behind the admin token, and none is configured (set token_hash or token_file)")
	}
	validateTracing(c.Tracing, add)
	validateRedis(c.Redis, add)
	validateRateLimits(c, add)
	if c.Metrics.Enabled && c.Metrics.RequireToken && noToken {
		add("metrics.require_token", "no admin token is configured (set admin.token_hash or admin.token_file)")
	}
	if !c.Admin.Disabled {
		if err := checkHostPort(c.Admin.Address); err != nil {
			add("admin.address", "%v", err)
		} else if other, dup := addrs[c.Admin.Address]; dup {
			add("admin.address", "address %s is already used by %s", c.Admin.Address, other)
		}
	}
	for i, tp := range c.Forwarding.TrustedProxies {
		if _, err := clientip.NewResolver([]string{tp}); err != nil {
			add(fmt.Sprintf("forwarding.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", tp)
		}
	}
	if c.AccessLog.Output == "" {
		add("access_log.output", "must be stdout, stderr or a file path")
	}

	if len(c.Routes) == 0 {
		add("routes", "at least one route is required")
	}
	routeNames := map[string]int{}
	matchKeys := map[string]string{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			add(p+".name", "required")
		case !nameRE.MatchString(r.Name):
			add(p+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", r.Name)
		default:
			if j, dup := routeNames[r.Name]; dup {
				add(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
			}
			routeNames[r.Name] = i
		}
		errs = append(errs, validateMatch(r.Match, p+".match", f)...)
		if key := matchKey(r.Match); key != "" {
			if other, dup := matchKeys[key]; dup {
				add(p+".match", "matches exactly the same requests as %s, so it can never be chosen", other)
			} else {
				matchKeys[key] = p
			}
		}
		errs = append(errs, validateServed(c, &c.Routes[i], p, f)...)
		if r.CORS != nil {
			errs = append(errs, validateCORS(r.CORS, p+".cors", f)...)
		}
	}
	errs = append(errs, validateMetadataDefaults(c.ProtectedResourceMetadata, f)...)
	errs = append(errs, validateAuth(c, f)...)
	errs = append(errs, validateOutboundTLS(c, f)...)
	errs = append(errs, validateHygiene(c, f)...)
	errs = append(errs, validateDecisionAPI(c, f)...)
	return errs
}

func validateClientCertificates(p string, cc *ClientCertificates, add func(path, format string, a ...any)) {
	ok := true
	if len(cc.CAFiles) == 0 {
		add(p+".ca_files", "list at least one PEM file of CA certificates that issue client certificates")
		ok = false
	}
	if cc.MinRSABits < 2048 {
		add(p+".min_rsa_bits", "must be at least 2048, got %d", cc.MinRSABits)
		ok = false
	}
	if cc.MinECBits < 256 {
		add(p+".min_ec_bits", "must be at least 256, got %d", cc.MinECBits)
		ok = false
	}
	for i, n := range cc.SignatureAlgorithms {
		if _, known := clientcert.ParseSignatureAlgorithm(n); !known {
			add(fmt.Sprintf("%s.signature_algorithms[%d]", p, i), "unknown or refused signature algorithm %q (want one of %s)", n, strings.Join(clientcert.SignatureAlgorithmNames(), ", "))
			ok = false
		}
	}
	if !ok {
		return
	}
	if _, err := clientcert.Load(cc.Settings()); err != nil {
		add(p, "%v", err)
	}
}

func validateForwardedClientCertificates(p string, fc *ForwardedClientCertificates, anyTrusted bool, add func(path, format string, a ...any)) {
	if !anyTrusted {
		add(p, "a forwarded certificate is read only from forwarding.trusted_proxies, and none is configured: list the load balancers' addresses there")
	}
	switch {
	case !headerNameRE.MatchString(fc.Header):
		add(p+".header", "%q is not a valid header name", fc.Header)
	case slices.Contains(reservedHeaders, http.CanonicalHeaderKey(fc.Header)):
		add(p+".header", "%q is reserved and cannot carry a certificate", fc.Header)
	}
	validateClientCertificates(p, fc.verification(), add)
}

// missingFiles names the certificate files a tls section lacks ("" if none).
func (t *TLS) missingFiles() string {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return "both are"
	case t.CertFile == "":
		return "cert_file is"
	case t.KeyFile == "":
		return "key_file is"
	}
	return ""
}

// emptySection explains "tls:" with nothing under it, which YAML reads as
// null: it does not mean "TLS off".
func (*TLS) emptySection() string {
	return "tls with nothing under it does not turn TLS off: HTTPS needs cert_file and key_file; remove the tls line to serve plain HTTP"
}

func validateMatch(m Match, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	switch {
	case m.Path == "" && m.PathPrefix == "":
		add(p, "set path (exact) or path_prefix")
	case m.Path != "" && m.PathPrefix != "":
		add(p, "set either path or path_prefix, not both")
	case m.Path != "":
		if _, err := route.ParsePath(m.Path); err != nil {
			add(p+".path", "%v", err)
		}
	default:
		if _, err := route.ParsePath(m.PathPrefix); err != nil {
			add(p+".path_prefix", "%v", err)
		}
	}
	for i, h := range m.Hosts {
		if err := route.ValidateHost(h); err != nil {
			add(fmt.Sprintf("%s.hosts[%d]", p, i), "%v", err)
		}
	}
	for i, meth := range m.Methods {
		if !methodRE.MatchString(meth) {
			add(fmt.Sprintf("%s.methods[%d]", p, i), "%q is not an upper-case HTTP method (e.g. GET)", meth)
		}
	}
	return errs
}

// matchKey is a canonical form of a match, to find routes that can never win.
func matchKey(m Match) string {
	if m.Path == "" && m.PathPrefix == "" {
		return ""
	}
	hosts := slices.Clone(m.Hosts)
	for i := range hosts {
		hosts[i] = strings.ToLower(hosts[i])
	}
	slices.Sort(hosts)
	methods := slices.Clone(m.Methods)
	slices.Sort(methods)
	return fmt.Sprintf("%q|%q|%q|%v", hosts, m.Path, m.PathPrefix, slices.Compact(methods))
}

func validateUpstream(u Upstream, p string, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	if len(u.Targets) == 0 {
		add(p+".targets", "at least one target is required")
	}
	for i, t := range u.Targets {
		if err := CheckTarget(t); err != nil {
			add(fmt.Sprintf("%s.targets[%d]", p, i), "%v", err)
		}
	}
	for _, pf := range []struct{ key, val string }{{"strip_prefix", u.StripPrefix}, {"add_prefix", u.AddPrefix}} {
		if pf.val != "" && (!strings.HasPrefix(pf.val, "/") || strings.ContainsAny(pf.val, "?#{} ")) {
			add(p+"."+pf.key, "%q must start with / and hold no ?, #, braces or spaces", pf.val)
		}
	}
	if u.Timeouts.Dial == 0 {
		add(p+".timeouts.dial", "must be greater than 0")
	}
	if u.Timeouts.ResponseHeader == 0 {
		add(p+".timeouts.response_header", "must be greater than 0")
	}
	return errs
}

// BuiltinEcho is the target that names the demo echo backend.
const BuiltinEcho = "builtin:echo"

// CheckTarget validates an upstream target URL.
func CheckTarget(t string) error {
	if t == BuiltinEcho {
		return nil
	}
	u, err := url.Parse(t)
	if err != nil {
		return fmt.Errorf("%q is not a URL", t)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https (or the target %s)", t, BuiltinEcho)
	case u.Host == "":
		return fmt.Errorf("%q: missing host", t)
	case u.User != nil:
		// Credentials in a URL end up in logs and error messages.
		return fmt.Errorf("%q: credentials in the URL are not allowed", redactUser(u))
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: a target must not have a query or fragment", t)
	}
	return nil
}

func redactUser(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !nameRE.MatchString(host) {
		return fmt.Errorf("%q: invalid host", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: invalid port", addr)
	}
	return nil
}

// ParseTokenHash decodes "sha256:<64 hex digits>".
func ParseTokenHash(s string) ([]byte, error) {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	b, err := hex.DecodeString(hexPart)
	if !ok || err != nil || len(b) != 32 {
		return nil, fmt.Errorf("must be sha256: followed by 64 hex digits (gatehouse admin-token prints one)")
	}
	return b, nil
}
