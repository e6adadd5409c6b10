package pipeline

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFoldPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/admin", "/admin", true},
		{"/ADMIN/X/", "/admin/x", true},
		{"/admin./x.. /", "/admin/x", true},
		{"/admin::$DATA", "/admin", true},
		{"/admin;jsessionid=1/x", "/admin/x", true},
		{"/ａｄｍｉｎ", "/admin", true},
		{"/a\u200bdmin\u00ad", "/admin", true},
		{"/\u212a", "/k", true},
		{"/report\u017f", "/reports", true},
		{"/...", "/...", true},
		{"/a/\uff0e\uff0e/b", "", false},
		{"/a\uff0fb", "", false},
		{"/a\uff05\uff12e", "", false},
		{"/caf\u00e9", "/caf\u00e9", true},
		{"/a/;/b", "/a/b", true},
		{"/admin/;jsessionid=1/", "/admin", true},
		{"/0/;/", "/0", true},
		{"/;x", "/", true},
	} {
		got, ok := foldPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("foldPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzFoldPath: folding never panics, and a folded path folds to itself,
// so a backend that normalises twice reads what the check read.
func FuzzFoldPath(f *testing.F) {
	for _, s := range []string{"/ADMIN/", "/ａdmin.", "/a\u200b;x/b::$DATA", "/\u212a/\u017f", "/x/\uff0e\uff0e", "/0/;/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") || !utf8.ValidString(p) || !cleanPath(p) || strings.Contains(p, "//") {
			return // refused (or merged) before the alias check
		}
		folded, ok := foldPath(p)
		if !ok {
			return
		}
		if !mayFold(p) && folded != p {
			t.Fatalf("mayFold(%q) is false but it folds to %q", p, folded)
		}
		again, ok := foldPath(folded)
		if !ok || again != folded {
			t.Fatalf("foldPath(%q) = %q, which folds to %q (%v)", p, folded, again, ok)
		}
	})
}

// FuzzNormalizeHost: an accepted Host is in its one spelling (normalising
// it again changes nothing), and it is a name, IPv4 address or bracketed
// IPv6 address with an optional numeric port, which every reader splits at
// the same colon.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"API.Example.com.:443", "[::1]:80", "a%2eb", "[x]y", "h:1:2", ":80", "", "[::1", "[::0A]", "127.1", "0x7f.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		r := &http.Request{Host: host, Header: http.Header{}}
		if normalizeHost(r) != nil {
			return
		}
		got := r.Host
		if err := normalizeHost(r); err != nil || r.Host != got {
			t.Fatalf("%q normalised to %q, which normalises to %q (%v)", host, got, r.Host, err)
		}
		if got == "" {
			return
		}
		name, port := got, ""
		if strings.HasPrefix(got, "[") {
			i := strings.IndexByte(got, ']')
			name, port = got[:i+1], got[i+1:]
		} else if i := strings.IndexByte(got, ':'); i >= 0 {
			name, port = got[:i], got[i:]
		}
		if !strings.HasPrefix(name, "[") && strings.ContainsAny(name, ":[]") || port != "" && !validPort(port) {
			t.Fatalf("%q: accepted as %q, with name %q and port %q", host, got, name, port)
		}
		if strings.ToLower(name) != name || strings.HasSuffix(name, ".") || strings.ContainsAny(name, "%@/?#\\ ") {
			t.Fatalf("%q: accepted as %q", host, got)
		}
		// An address has one spelling: the one netip writes (RFC 5952
		// for IPv6, the dotted quad for IPv4).
		literal := strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		if a, err := netip.ParseAddr(literal); err == nil && a.String() != literal {
			t.Fatalf("%q: accepted as %q, not the canonical %q", host, got, a)
		} else if err != nil && (strings.HasPrefix(name, "[") || endsInNumber(name)) {
			t.Fatalf("%q: accepted as %q, which is no address (%v)", host, got, err)
		}
	})
}

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"api.example.com", "api.example.com"},
		{"API.Example.com.:8443", "api.example.com:8443"},
		{"[::1]:80", "[::1]:80"},
		{"[::0A]", "[::a]"},
		{"[0:0:0:0:0:0:0:1]:8080", "[::1]:8080"},
		{"[2001:DB8::1]", "[2001:db8::1]"},
		{"[::ffff:7f00:1]", "[::ffff:127.0.0.1]"},
		{"[fe80::1%25eth0]", ""},
		{"[127.0.0.1]", ""},
		{"[::1]x", ""},
		{"[::1]:", ""},
		{"127.0.0.1:80", "127.0.0.1:80"},
		{"127.1", ""},
		{"127.000.0.1", ""},
		{"0x7f.0.0.1", ""},
		{"0X7F000001", ""},
		{"2130706433", ""},
		{"1.2.3.4.5", ""},
		{"example.0x", ""},
		{"v1.api.example.com", "v1.api.example.com"},
		{"host-1.example.com2", "host-1.example.com2"},
		{"0xfoo.example.com", "0xfoo.example.com"},
		{"a..b", ""},
		{"api%2eexample.com", ""},
		{"h:1:2", ""},
	} {
		r := &http.Request{Host: tc.in, Header: http.Header{}}
		err := normalizeHost(r)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("normalizeHost(%q) accepted as %q, want refused", tc.in, r.Host)
		case tc.want != "" && (err != nil || r.Host != tc.want):
			t.Errorf("normalizeHost(%q) = %q, %v; want %q", tc.in, r.Host, err, tc.want)
		}
	}
}
