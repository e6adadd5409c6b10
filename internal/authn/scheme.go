package authn

import "strings"

// SplitAuthorization splits an Authorization header value into its
// auth-scheme, the leading run of RFC 9110 §5.6.2 token characters, and the
// credentials after the spaces that follow it.
//
// ok is false when the scheme is followed by something other than a space
// or the end of the value (a tab, a comma, a colon): the value is then a
// malformed credential of that scheme, which its method must refuse rather
// than treat as "not mine" — on a route that allows anonymous access that
// would let the request through. A non-ASCII byte right after the scheme
// makes the whole value an unknown scheme: scheme is then "".
func SplitAuthorization(v string) (scheme, credentials string, ok bool) {
	i := 0
	for i < len(v) && isTokenChar(v[i]) {
		i++
	}
	rest := v[i:]
	switch {
	case rest == "":
		return v, "", true
	case rest[0] == ' ':
		return v[:i], strings.TrimLeft(rest, " "), true
	case rest[0] >= 0x80:
		return "", "", true
	}
	return v[:i], "", false
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
