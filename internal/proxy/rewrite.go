package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/clientip"
)

// setVouched writes the headers the gateway vouches for on the outgoing
// headers h. It runs after the client's headers were copied without the
// hop-by-hop ones, so no client Connection header can remove them, and
// each replaces any client-sent value (outbound skipped those). The
// values live in ex.vals when they fit, each capped so that an append to
// one header cannot reach the next.
func setVouched(h http.Header, ex *exchange) {
	vals := ex.vals[:0:len(ex.vals)]
	if len(ex.vouched) > len(ex.vals) {
		vals = make([]string, 0, len(ex.vouched))
	}
	for _, v := range ex.vouched {
		vals = append(vals, v.Value)
		n := len(vals)
		h[v.Name] = vals[n-1 : n : n]
	}
}

// rewritePath applies StripPrefix then AddPrefix to u. When the client's
// path has escapes that its decoded form cannot reproduce (RawPath set,
// e.g. "%2F"), both forms are rewritten so they stay consistent and the
// upstream receives the escapes the client sent.
func (p *Proxy) rewritePath(u *url.URL) {
	if p.strip == "" && p.add == "" {
		return
	}
	if u.RawPath == "" {
		// Path re-escapes to exactly what the client sent, so plain
		// string operations on it are exact.
		path := u.Path
		if p.strip != "" {
			if rest, ok := cutSegments(path, p.strip); ok {
				path = rest
			}
		}
		u.Path = orRoot(p.add + path)
		return
	}
	raw := u.RawPath
	if p.strip != "" {
		if rest, ok := cutEscapedSegments(raw, p.strip); ok {
			raw = rest
		}
	}
	raw = orRoot(p.addEscaped + raw)
	path, err := url.PathUnescape(raw)
	if err != nil {
		// Unreachable: raw is a suffix of a RawPath the server already
		// validated, behind a prefix we escaped ourselves.
		return
	}
	u.Path, u.RawPath = path, raw
}

func orRoot(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

// cutSegments removes prefix from path if path equals it or continues
// with "/" right after it.
func cutSegments(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || rest != "" && rest[0] != '/' {
		return path, false
	}
	return rest, true
}

// cutEscapedSegments is cutSegments for an escaped path: prefix (decoded)
// must match raw after unescaping, where an escaped slash ("%2F") is part of
// a segment and never matches a separator.
func cutEscapedSegments(raw, prefix string) (string, bool) {
	i := 0
	for j := 0; j < len(prefix); j++ {
		if i >= len(raw) {
			return raw, false
		}
		c, n := raw[i], 1
		if c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			c, n = unhex(raw[i+1])<<4|unhex(raw[i+2]), 3
			if c == '/' {
				return raw, false
			}
		}
		if c != prefix[j] {
			return raw, false
		}
		i += n
	}
	if i < len(raw) && raw[i] != '/' {
		return raw, false
	}
	return raw[i:], true
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
	default:
		return c - 'a' + 10
	}
}

// setForwarding writes X-Forwarded-For, -Proto, -Host and Forwarded on the
// outbound headers h, which hold none of them yet. The incoming values are
// kept (and appended to) only when the TCP peer is a trusted proxy; from
// anyone else they are forgeries and are replaced by what this hop
// observed. client is the resolved peer (clientip.Resolver.Resolve).
// The values are stored in vals, each capped so that an append to one
// header cannot reach the next.
func (p *Proxy) setForwarding(h http.Header, in *http.Request, client clientip.Client, vals *[4]string) {
	peer, trusted := client.Peer, client.PeerTrusted
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	values := vals[:0:len(vals)]
	set := func(key, value string) {
		values = append(values, value)
		n := len(values)
		h[key] = values[n-1 : n : n]
	}

	// The element's text also holds the peer's address, which
	// X-Forwarded-For shares rather than formats again.
	elem, ip := forwardedElementIP(peer, in.Host, proto)
	if peer.IsValid() {
		if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		set("X-Forwarded-For", ip)
	}
	keepOrSet(h, in.Header, trusted, "X-Forwarded-Proto", proto, set)
	keepOrSet(h, in.Header, trusted, "X-Forwarded-Host", in.Host, set)

	if prior := in.Header["Forwarded"]; trusted && len(prior) > 0 {
		elem = strings.Join(prior, ", ") + ", " + elem
	}
	set("Forwarded", elem)
}

// keepOrSet copies the incoming header key when trusted and present, else
// sets it to value with set. The copied slice is capped so that a later
// append on the outbound header can never write into the inbound one.
func keepOrSet(out, in http.Header, trusted bool, key, value string, set func(key, value string)) {
	if v := in[key]; trusted && len(v) > 0 {
		out[key] = v[:len(v):len(v)]
		return
	}
	if value == "" {
		delete(out, key)
		return
	}
	set(key, value)
}

// forwardedElement formats this hop's RFC 7239 element:
// for=<peer>;host="<host>";proto=<proto>. IPv6 nodes are bracketed and
// quoted as the RFC requires; an unknown peer is "unknown".
func forwardedElement(peer netip.Addr, host, proto string) string {
	elem, _ := forwardedElementIP(peer, host, proto)
	return elem
}

// forwardedElementIP is forwardedElement, and also returns the peer's
// address as text (peer.String()), a substring of the element ("" for an
// invalid peer).
func forwardedElementIP(peer netip.Addr, host, proto string) (elem, ip string) {
	var b strings.Builder
	b.Grow(64 + len(host))
	b.WriteString("for=")
	var text [64]byte // an address as text, without a string allocation
	start, end := 0, 0
	switch {
	case !peer.IsValid():
		b.WriteString("unknown")
	case peer.Is4():
		start = b.Len()
		b.Write(peer.AppendTo(text[:0]))
		end = b.Len()
	default:
		b.WriteString(`"[`)
		start = b.Len()
		b.Write(peer.WithZone("").AppendTo(text[:0]))
		end = b.Len()
		b.WriteString(`]"`)
	}
	if host != "" {
		b.WriteString(`;host="`)
		writeQuotedContent(&b, host)
		b.WriteByte('"')
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	elem = b.String()
	return elem, elem[start:end]
}

// writeQuotedContent escapes s for the inside of an RFC 7230 quoted-string.
// net/http already refuses Host headers with such characters; escaping
// anyway keeps a hostile Host from ever adding a parameter or element.
func writeQuotedContent(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t' || c == 0x7f:
			// Not representable in a quoted-string, even escaped.
		default:
			b.WriteByte(c)
		}
	}
}
