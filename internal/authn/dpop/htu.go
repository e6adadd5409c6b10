package dpop

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// NormalizeHTU parses an htu claim (or any absolute http(s) URI) and
// returns its normalized form without query and fragment, for comparison
// with the request's (RFC 9449 section 4.3, step 9; RFC 3986 section 6).
//
// What is normalized:
//   - scheme and host to lower case (RFC 3986 section 6.2.2.1);
//   - the port: the scheme's default (80 for http, 443 for https) and an
//     empty port are removed, leading zeros dropped (section 6.2.3);
//   - percent-encoding in the path: escapes of unreserved characters
//     (ALPHA DIGIT - . _ ~) are decoded, the hex digits of the others upper
//     cased, and bytes that may not appear in a path unescaped are escaped
//     (section 6.2.2.2); %2F stays %2F, it is not a '/';
//   - dot segments are removed (section 6.2.2.3) and an empty path is "/"
//     (section 6.2.3);
//   - query and fragment are dropped (RFC 9449 compares without them).
//
// What is refused: a scheme other than http and https, a missing host,
// userinfo, an opaque URI, a host with bytes outside letters, digits and
// "-._~!$&'()*+,;=" (IPv6 literals in brackets are accepted, zones are
// not; international names must be in their ASCII form), a port that is
// not a number up to 65535, and a malformed percent escape.
//
// Nothing else is normalized: a host name's trailing dot, IPv4 written
// differently, or a path's case are significant.
func NormalizeHTU(htu string) (string, error) {
	u, err := url.Parse(htu)
	if err != nil {
		return "", errHTUParse
	}
	return normalizeURL(u)
}

// RequestURL is the externally visible URL of r, for Verify: scheme and
// host as the client addressed them (behind a proxy they come from the
// trusted forwarding headers, never from an untrusted client), and r's
// path, escaped as it was sent. host "" means r.Host. Query and fragment
// are not needed: htu is compared without them.
func RequestURL(r *http.Request, scheme, host string) *url.URL {
	if host == "" {
		host = r.Host
	}
	return &url.URL{Scheme: scheme, Host: host, Path: r.URL.Path, RawPath: r.URL.RawPath}
}

var (
	errHTUParse  = errors.New("authn/dpop: htu is not a URI")
	errHTUScheme = errors.New("authn/dpop: URI scheme is not http or https")
	errHTUHost   = errors.New("authn/dpop: URI host is missing or malformed")
	errHTUPort   = errors.New("authn/dpop: URI port is malformed")
	errHTUForm   = errors.New("authn/dpop: URI has userinfo or is opaque")
	errHTUEscape = errors.New("authn/dpop: URI path has a malformed percent escape")
)

// normalizeURL is NormalizeHTU's work on a parsed URL.
func normalizeURL(u *url.URL) (string, error) {
	if u.Opaque != "" || u.User != nil {
		return "", errHTUForm
	}
	var defaultPort string
	switch strings.ToLower(u.Scheme) {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", errHTUScheme
	}
	host, port, err := splitHost(u.Host)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len("https://") + len(u.Host) + len(u.Path) + 8)
	if defaultPort == "80" {
		b.WriteString("http://")
	} else {
		b.WriteString("https://")
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if port != "" && port != defaultPort {
		b.WriteByte(':')
		b.WriteString(port)
	}
	if err := writePath(&b, u.EscapedPath()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// splitHost splits hostport into a checked host (brackets kept for IPv6)
// and a canonical port ("" when absent or empty).
func splitHost(hostport string) (host, port string, err error) {
	host = hostport
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", "", errHTUHost
		}
		for i := 1; i < end; i++ {
			if c := host[i]; !isHex(c) && c != ':' && c != '.' {
				return "", "", errHTUHost
			}
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", "", errHTUHost
			}
			port = port[1:]
		}
		if end == 1 {
			return "", "", errHTUHost
		}
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port = hostport[:i], hostport[i+1:]
		}
		if host == "" {
			return "", "", errHTUHost
		}
		for i := 0; i < len(host); i++ {
			if !hostByte(host[i]) {
				return "", "", errHTUHost
			}
		}
	}
	if port == "" {
		return host, "", nil
	}
	if len(port) > 5 {
		port = strings.TrimLeft(port, "0")
		if port == "" {
			port = "0"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || len(port) > 5 {
		return "", "", errHTUPort
	}
	return host, strconv.FormatUint(n, 10), nil
}

// hostByte: a byte of an RFC 3986 reg-name that is not a percent escape.
func hostByte(c byte) bool {
	return unreserved(c) || strings.IndexByte("!$&'()*+,;=", c) >= 0
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pathByte: a byte that may appear unescaped in a path (pchar or '/').
func pathByte(c byte) bool {
	return unreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

const upperHex = "0123456789ABCDEF"

// writePath writes the normalized form of the escaped path p: percent
// escapes normalized, dot segments removed, "" as "/".
func writePath(b *strings.Builder, p string) error {
	var buf [128]byte
	norm := buf[:0]
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return errHTUEscape
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if unreserved(d) {
				norm = append(norm, d)
			} else {
				norm = append(norm, '%', upperHex[d>>4], upperHex[d&15])
			}
		case pathByte(c):
			norm = append(norm, c)
		default:
			norm = append(norm, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	out := removeDotSegments(string(norm))
	if out == "" || out[0] != '/' {
		b.WriteByte('/')
	}
	b.WriteString(out)
	return nil
}

// removeDotSegments is RFC 3986 section 5.2.4 on an absolute path (or "").
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	out := make([]byte, 0, len(in))
	for len(in) > 0 {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = popSegment(out)
		case in == "/..":
			in = "/"
			out = popSegment(out)
		case in == "." || in == "..":
			in = ""
		default:
			// Move the first segment (with its leading '/') to out.
			j := 1
			if in[0] != '/' {
				j = 0
			}
			k := strings.IndexByte(in[j:], '/')
			if k < 0 {
				k = len(in)
			} else {
				k += j
			}
			out = append(out, in[:k]...)
			in = in[k:]
		}
	}
	return string(out)
}

// popSegment removes the last segment and its preceding '/' from out.
func popSegment(out []byte) []byte {
	i := len(out) - 1
	for i >= 0 && out[i] != '/' {
		i--
	}
	if i < 0 {
		return out[:0]
	}
	return out[:i]
}
