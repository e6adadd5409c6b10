package clientip

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustResolver(t testing.TB, trusted ...string) *Resolver {
	t.Helper()
	r, err := NewResolver(trusted)
	if err != nil {
		t.Fatalf("NewResolver(%q): %v", trusted, err)
	}
	return r
}

func TestNewResolver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		bad     string // entry the error must name; "" = no error
		trusts  []string
		refuses []string
	}{
		{name: "empty", refuses: []string{"127.0.0.1", "::1"}},
		{name: "single v4", entries: []string{"10.0.0.1"}, trusts: []string{"10.0.0.1", "::ffff:10.0.0.1"}, refuses: []string{"10.0.0.2"}},
		{name: "single v6", entries: []string{"::1"}, trusts: []string{"::1"}, refuses: []string{"127.0.0.1", "::2"}},
		{name: "cidr v4", entries: []string{"10.0.0.0/8"}, trusts: []string{"10.1.2.3", "::ffff:10.9.9.9"}, refuses: []string{"11.0.0.1"}},
		{name: "cidr unmasked", entries: []string{"192.168.1.77/24"}, trusts: []string{"192.168.1.1"}, refuses: []string{"192.168.2.1"}},
		{name: "cidr v6", entries: []string{"2001:db8::/32"}, trusts: []string{"2001:db8:1::5"}, refuses: []string{"2001:db9::1"}},
		{name: "mapped address", entries: []string{"::ffff:10.0.0.1"}, trusts: []string{"10.0.0.1"}, refuses: []string{"10.0.0.2"}},
		{name: "mapped prefix", entries: []string{"::ffff:10.0.0.0/104"}, trusts: []string{"10.200.0.1"}, refuses: []string{"11.0.0.1"}},
		{name: "zone ignored", entries: []string{"fe80::1%eth0"}, trusts: []string{"fe80::1", "fe80::1%eth1"}},
		{name: "spaces trimmed", entries: []string{" 10.0.0.1 "}, trusts: []string{"10.0.0.1"}},
		{name: "garbage", entries: []string{"10.0.0.1", "not-an-ip"}, bad: "not-an-ip"},
		{name: "bad cidr", entries: []string{"10.0.0.0/33"}, bad: "10.0.0.0/33"},
		{name: "host name", entries: []string{"proxy.internal"}, bad: "proxy.internal"},
		{name: "empty entry", entries: []string{""}, bad: `""`},
		{name: "wide mapped prefix", entries: []string{"::ffff:0:0/80"}, bad: "::ffff:0:0/80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewResolver(tc.entries)
			if tc.bad != "" {
				if err == nil {
					t.Fatalf("NewResolver(%q) = nil error, want one naming %s", tc.entries, tc.bad)
				}
				if !errors.Is(err, ErrInvalidTrusted) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("error %q: want ErrInvalidTrusted naming %s", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.trusts {
				if !r.Trusted(netip.MustParseAddr(s)) {
					t.Errorf("Trusted(%s) = false, want true", s)
				}
			}
			for _, s := range tc.refuses {
				if r.Trusted(netip.MustParseAddr(s)) {
					t.Errorf("Trusted(%s) = true, want false", s)
				}
			}
		})
	}
}

func TestNilResolverTrustsNobody(t *testing.T) {
	var r *Resolver
	if r.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("nil Resolver trusted 127.0.0.1")
	}
	if (&Resolver{}).Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("zero Resolver trusted 127.0.0.1")
	}
	if mustResolver(t, "0.0.0.0/0").Trusted(netip.Addr{}) {
		t.Fatal("invalid Addr trusted")
	}
}

func TestPeer(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = zero Addr
	}{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"192.0.2.1", "192.0.2.1"},
		{"::1", "::1"},
		{"", ""},
		{"@", ""},
		{"/run/gatehouse.sock", ""},
		{"example.com:80", ""},
		{"192.0.2.1:notaport", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := Peer(tc.in)
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("Peer(%q) = %v, want zero Addr", tc.in, got)
				}
				return
			}
			if got != netip.MustParseAddr(tc.want) {
				t.Fatalf("Peer(%q) = %v, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	proxies := mustResolver(t, "10.0.0.0/8", "::1", "2001:db8:ffff::/48")
	for _, tc := range []struct {
		name     string
		resolver *Resolver
		remote   string
		xff      []string // header lines
		want     string   // "" = zero Addr
	}{
		{name: "nil resolver ignores xff", remote: "10.0.0.1:5000", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "untrusted peer spoofed xff", resolver: proxies, remote: "198.51.100.7:5000", xff: []string{"203.0.113.9"}, want: "198.51.100.7"},
		{name: "untrusted peer no xff", resolver: proxies, remote: "198.51.100.7:5000", want: "198.51.100.7"},
		{name: "trusted peer no xff", resolver: proxies, remote: "10.0.0.1:5000", want: "10.0.0.1"},
		{name: "trusted peer empty xff", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{" "}, want: "10.0.0.1"},
		{name: "one hop", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of proxies", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9, 10.0.0.3, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "client-written prefix ignored", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"6.6.6.6, 203.0.113.9, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "all trusted leftmost wins", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"10.0.0.5, 10.0.0.6"}, want: "10.0.0.5"},
		{name: "malformed in the middle", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9, garbage, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "malformed rightmost", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9, garbage"}, want: "10.0.0.1"},
		{name: "empty entry", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9,,10.0.0.2"}, want: "10.0.0.2"},
		{name: "trailing comma", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9,"}, want: "10.0.0.1"},
		{name: "host name entry", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"client.example"}, want: "10.0.0.1"},
		{name: "zone refused", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"fe80::1%eth0"}, want: "10.0.0.1"},
		{name: "entry with port", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9:4711"}, want: "203.0.113.9"},
		{name: "v6 entry with brackets and port", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"[2001:db8::7]:443"}, want: "2001:db8::7"},
		{name: "v6 entry with brackets", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "bracketed v4 refused", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"[203.0.113.9]"}, want: "10.0.0.1"},
		{name: "v6 peer and chain", resolver: proxies, remote: "[::1]:5000", xff: []string{"2001:db8::7, 2001:db8:ffff::1"}, want: "2001:db8::7"},
		{name: "mapped peer trusted", resolver: proxies, remote: "[::ffff:10.0.0.1]:5000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "mapped entries unmapped", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"::ffff:203.0.113.9, ::ffff:10.0.0.2"}, want: "203.0.113.9"},
		{name: "multiple lines", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9", "10.0.0.2"}, want: "203.0.113.9"},
		{name: "multiple lines spoof in first", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"6.6.6.6, 203.0.113.9", "10.0.0.3, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "multiple lines all trusted", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"10.0.0.9", "10.0.0.3, 10.0.0.2"}, want: "10.0.0.9"},
		{name: "multiple lines malformed", resolver: proxies, remote: "10.0.0.1:5000", xff: []string{"203.0.113.9", "nope, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "invalid remote addr", resolver: proxies, remote: "@", xff: []string{"203.0.113.9"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != nil {
				req.Header["X-Forwarded-For"] = tc.xff
			}
			got := tc.resolver.ClientIP(req)
			// Resolve gives the same client, with the peer and its trust
			// that the pipeline hands to the proxy.
			c := tc.resolver.Resolve(req)
			if c.IP != got || c.Peer != Peer(tc.remote) || c.PeerTrusted != tc.resolver.Trusted(Peer(tc.remote)) {
				t.Fatalf("Resolve = %+v, want IP %v, peer %v, trusted %v", c, got, Peer(tc.remote), tc.resolver.Trusted(Peer(tc.remote)))
			}
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("ClientIP = %v, want zero Addr", got)
				}
				return
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPDoesNotAllocate(t *testing.T) {
	r := mustResolver(t, "10.0.0.0/8")
	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"no xff", &http.Request{RemoteAddr: "10.0.0.1:5000", Header: http.Header{}}},
		{"untrusted peer", &http.Request{RemoteAddr: "198.51.100.7:5000", Header: http.Header{"X-Forwarded-For": {"6.6.6.6, 7.7.7.7"}}}},
		{"untrusted v6 peer", &http.Request{RemoteAddr: "[2001:db8::1]:5000", Header: http.Header{"X-Forwarded-For": {"6.6.6.6"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { r.ClientIP(tc.req) }); n != 0 {
				t.Fatalf("ClientIP allocates %v times per call, want 0", n)
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	r := mustResolver(b, "10.0.0.0/8", "192.168.0.0/16", "::1")
	for _, bc := range []struct {
		name   string
		remote string
		xff    []string
	}{
		{"untrusted/no-xff", "198.51.100.7:5000", nil},
		{"untrusted/spoofed-xff", "198.51.100.7:5000", []string{"6.6.6.6, 7.7.7.7"}},
		{"trusted/no-xff", "10.0.0.1:5000", nil},
		{"trusted/one-hop", "10.0.0.1:5000", []string{"203.0.113.9"}},
		{"trusted/chain", "10.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9, 192.168.1.1, 10.0.0.2"}},
		{"trusted/v6-chain", "[::1]:5000", []string{"2001:db8::7, 10.0.0.2"}},
	} {
		req := &http.Request{RemoteAddr: bc.remote, Header: http.Header{}}
		if bc.xff != nil {
			req.Header["X-Forwarded-For"] = bc.xff
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.ClientIP(req)
			}
		})
	}
}

// FuzzClientIP checks the invariants that hold for any header a client can
// send: no panic, an untrusted peer is always the answer, and a trusted peer
// yields either itself or an address that appears in the header.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "1.1.1.1, 10.0.0.2", "[2001:db8::1]:80,, x", "::ffff:1.2.3.4", "fe80::1%eth0", ",,,"} {
		f.Add("10.0.0.1:80", s)
		f.Add("198.51.100.7:80", s)
	}
	r := mustResolver(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		req := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := r.ClientIP(req)
		peer := Peer(remote)
		if !r.Trusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %v: ClientIP = %v", peer, got)
			}
			return
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" {
			t.Fatalf("trusted peer %v: ClientIP = %v, want a valid, unmapped, zone-free address", peer, got)
		}
	})
}

// TestOrigin: forwarding headers are believed only from trusted proxies,
// the nearest proxy's value wins, and nonsense keeps the connection's view.
func TestOrigin(t *testing.T) {
	res, err := NewResolver([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer         string
		tls                bool
		proto, fhost       []string
		wantScheme, wantHo string
	}{
		{"untrusted peer, plain", "192.0.2.1:1", false, []string{"https"}, []string{"evil.example"}, "http", "api.example"},
		{"untrusted peer, TLS", "192.0.2.1:1", true, nil, nil, "https", "api.example"},
		{"trusted proxy", "10.1.2.3:1", false, []string{"https"}, []string{"public.example"}, "https", "public.example"},
		{"trusted proxy, last value wins", "10.1.2.3:1", false, []string{"http, https"}, []string{"a.example", "b.example"}, "https", "b.example"},
		{"trusted proxy, bad proto ignored", "10.1.2.3:1", true, []string{"gopher"}, nil, "https", "api.example"},
		{"trusted proxy, empty host ignored", "10.1.2.3:1", false, nil, []string{" "}, "http", "api.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://api.example/x", nil)
			r.RemoteAddr = tc.peer
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.proto != nil {
				r.Header["X-Forwarded-Proto"] = tc.proto
			}
			if tc.fhost != nil {
				r.Header["X-Forwarded-Host"] = tc.fhost
			}
			s, h := res.Origin(r)
			if s != tc.wantScheme || h != tc.wantHo {
				t.Fatalf("Origin = %s, %s; want %s, %s", s, h, tc.wantScheme, tc.wantHo)
			}
		})
	}
}
