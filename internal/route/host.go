package route

import (
	"errors"
	"fmt"
	"strings"
)

// maxHostLen is the longest DNS name (RFC 1035 without the trailing dot).
const maxHostLen = 253

// ValidateHost validates a host condition: a lower-case DNS name
// ("api.example.com") or a wildcard ("*.example.com") that matches one or more
// labels in front of the suffix, but not the bare suffix itself.
//
// Rejected: upper case (write conditions canonically; matching is
// case-insensitive anyway), ports and IPv6 literals (the port of the Host
// header is ignored, so a condition with one could never match), a trailing
// dot, "*" anywhere but a leading "*.", and labels that are empty, longer
// than 63 bytes, start or end with "-", or contain anything but a-z, 0-9, "-"
// and "_" (underscores are not valid in DNS host names but do occur in
// internal service names, and they are harmless here). IPv4 addresses are
// accepted as exact hosts.
//
// Errors are prefixed "route: ".
func ValidateHost(h string) error {
	if err := validateHost(h); err != nil {
		return fmt.Errorf("route: host %q: %w", h, err)
	}
	return nil
}

func validateHost(h string) error {
	name := h
	if strings.HasPrefix(h, "*.") {
		name = h[2:]
	}
	switch {
	case h == "":
		return errors.New("must not be empty (leave hosts out to match any host)")
	case h == "*":
		return errors.New(`"*" alone is not a wildcard (leave hosts out to match any host)`)
	case strings.Contains(name, "*"):
		return errors.New(`"*" is only allowed as a leading "*." that stands for one or more labels`)
	case strings.ContainsAny(name, "[]"):
		return errors.New("IPv6 literals are not supported as host conditions")
	case strings.Contains(name, ":"):
		return errors.New("must not contain a port (the Host header's port is ignored when matching)")
	case strings.HasSuffix(name, "."):
		return errors.New("must not end with a dot (a trailing dot in the Host header is ignored when matching)")
	case strings.ToLower(name) != name:
		return errors.New("must be lower case (matching is case-insensitive)")
	case len(name) > maxHostLen:
		return fmt.Errorf("longer than %d bytes", maxHostLen)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := validateLabel(label); err != nil {
			return fmt.Errorf("label %q: %w", label, err)
		}
	}
	return nil
}

func validateLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label")
	case len(label) > 63:
		return errors.New("longer than 63 bytes")
	case label[0] == '-' || label[len(label)-1] == '-':
		return errors.New(`must not start or end with "-"`)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("invalid character %q (allowed: a-z, 0-9, \"-\", \"_\")", c)
		}
	}
	return nil
}

// appendCanonicalHost appends the canonical form of a Host header value to
// dst: the port removed ("example.com:8080", "[::1]:8080" → "[::1]"), one
// trailing dot removed, ASCII letters lower-cased. Only ASCII is folded, on
// purpose: Unicode case folding would let "K" (U+212A KELVIN SIGN) match "k",
// and a valid host condition is ASCII anyway. Writing into a caller's stack
// buffer keeps Match free of allocations.
func appendCanonicalHost(dst []byte, host string) []byte {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			host = host[:i+1]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// validateMethod accepts an HTTP method token (RFC 9110 tchar) without
// lower-case letters: methods are case-sensitive and matched exactly, so
// "get" in a config would silently never match a real GET.
func validateMethod(m string) error {
	if m == "" {
		return errors.New("empty method")
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'a' <= c && c <= 'z':
			return fmt.Errorf("method %q must be upper case (methods are matched exactly)", m)
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return fmt.Errorf("method %q: invalid character %q", m, c)
		}
	}
	return nil
}
