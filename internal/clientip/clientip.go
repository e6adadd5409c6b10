// Package clientip decides who the client of a request is.
//
// The TCP peer is the only address nobody can forge. X-Forwarded-For is
// believed only as far as it was written by proxies the operator trusts: it
// is walked from the right (the entry appended by the nearest proxy) and the
// first address that is not a trusted proxy is the client. Anything to the
// left of that entry was written by the client itself and is ignored.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ErrInvalidTrusted is wrapped by NewResolver when a trusted entry is
// neither an IP address nor a CIDR prefix.
var ErrInvalidTrusted = errors.New("clientip: invalid trusted proxy entry")

// Resolver decides which peers' forwarding headers are believed.
//
// The zero value and a nil *Resolver trust nobody, which is the safe
// default: the client is always the TCP peer.
type Resolver struct {
	// trusted holds masked prefixes with IPv4 stored as plain IPv4 (never
	// IPv4-mapped IPv6), so that one Contains call answers for both forms.
	trusted []netip.Prefix
}

// NewResolver compiles the list of trusted proxies. Entries are single
// addresses ("10.0.0.1", "::1") or CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32"). IPv4-mapped IPv6 entries ("::ffff:10.0.0.1",
// "::ffff:10.0.0.0/104") are converted to IPv4 so that they match peers
// however the listener reports them. The error names the first bad entry.
func NewResolver(trusted []string) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trusted))}
	for _, entry := range trusted {
		p, err := parseTrusted(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrInvalidTrusted, entry, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		// A zone names a local interface; it says nothing about which
		// host is behind it, so it must not make the entry unmatchable.
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			// Wider than the mapped range: it covers real IPv6 space as
			// well, so rewriting it as IPv4 would change its meaning.
			return netip.Prefix{}, errors.New("IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Trusted reports whether addr is one of the trusted proxies. A nil
// Resolver and an invalid addr are never trusted.
func (r *Resolver) Trusted(addr netip.Addr) bool {
	if r == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Peer parses an http.Request RemoteAddr ("ip:port" or "[ipv6]:port"; a
// bare IP is accepted too) into the TCP peer's address. IPv4-mapped
// addresses are unmapped and zones dropped, so the result can be compared
// and logged as-is. Anything else (a Unix socket, an empty string) gives the
// zero Addr, which is never trusted.
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// ClientIP returns the client's address.
//
// If the TCP peer is not trusted, that is the client, whatever the request
// headers claim. If it is trusted, X-Forwarded-For (every header line, in
// order, each a comma-separated list) is walked from the right, skipping
// trusted proxies; the first untrusted address is the client. If every entry
// is trusted, the leftmost one is. If an entry is malformed the walk stops
// and the last good address reached (the nearest trusted hop) is returned:
// a broken chain cannot be believed past the break.
//
// Entries may carry a port ("192.0.2.1:1234", "[2001:db8::1]:443") or
// brackets, as some proxies write them; entries with a zone are malformed.
// ClientIP does not allocate when there is no X-Forwarded-For or the peer
// is untrusted.
func (r *Resolver) ClientIP(req *http.Request) netip.Addr {
	return r.Resolve(req).IP
}

// Client is what a Resolver decided about one request's client, made once
// per request (Resolve) and shared by everything that needs it: the
// pipeline's checks and logs, and the proxy's forwarding headers.
type Client struct {
	// Peer is the TCP peer (see Peer); the zero Addr when RemoteAddr is
	// not an IP address.
	Peer netip.Addr
	// PeerTrusted reports whether Peer is a trusted proxy, whose
	// forwarding headers are believed.
	PeerTrusted bool
	// IP is the client's address, as ClientIP returns it.
	IP netip.Addr
}

// Resolve parses req's peer once and returns it with its trust and the
// client address (ClientIP). It does not allocate when there is no
// X-Forwarded-For or the peer is untrusted.
func (r *Resolver) Resolve(req *http.Request) Client {
	peer := Peer(req.RemoteAddr)
	if !r.Trusted(peer) {
		return Client{Peer: peer, IP: peer}
	}
	return Client{Peer: peer, PeerTrusted: true, IP: r.forwardedClient(req, peer)}
}

// forwardedClient walks X-Forwarded-For from a trusted peer (ClientIP).
func (r *Resolver) forwardedClient(req *http.Request, peer netip.Addr) netip.Addr {
	// Direct map access: the key is a canonical constant, so there is
	// nothing for Header.Values to canonicalise.
	lines := req.Header["X-Forwarded-For"]
	client := peer
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		if strings.TrimSpace(rest) == "" {
			// An empty line adds no hop; skipping it keeps "no header"
			// and "empty header" equivalent.
			continue
		}
		for {
			j := strings.LastIndexByte(rest, ',') // -1 on the last entry
			addr, ok := parseEntry(rest[j+1:])
			if !ok {
				return client
			}
			client = addr
			if !r.Trusted(addr) {
				return client
			}
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return client
}

// parseEntry parses one X-Forwarded-For entry: an IP, optionally in
// brackets, optionally with a port. Zones are refused: they are meaningless
// across hosts, and parsing one would intern an attacker-chosen string.
func parseEntry(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Origin returns the scheme ("http" or "https") and host the client
// addressed req to, as the client saw them (a DPoP proof signs that URL).
//
// From an untrusted peer it is the connection's own view: https when
// req came over TLS, and req.Host. From a trusted proxy (a TLS-terminating
// load balancer), X-Forwarded-Proto and X-Forwarded-Host are believed: of
// each, the last value (the one the nearest proxy wrote, for proxies that
// append rather than replace); a proto other than http or https, or an
// empty value, is ignored and the connection's view kept. Configure the
// nearest proxy to set (not pass through) both headers: whatever it
// forwards from its own clients is believed.
func (r *Resolver) Origin(req *http.Request) (scheme, host string) {
	scheme, host = "http", req.Host
	if req.TLS != nil {
		scheme = "https"
	}
	if !r.Trusted(Peer(req.RemoteAddr)) {
		return scheme, host
	}
	if v := lastValue(req.Header["X-Forwarded-Proto"]); strings.EqualFold(v, "https") {
		scheme = "https"
	} else if strings.EqualFold(v, "http") {
		scheme = "http"
	}
	if v := lastValue(req.Header["X-Forwarded-Host"]); v != "" {
		host = v
	}
	return scheme, host
}

// lastValue is the last comma-separated element of the last header line,
// trimmed.
func lastValue(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	v := lines[len(lines)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}
