package pipeline

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// parseTarget splits a request target as net/http's server does.
func parseTarget(t testing.TB, target string) *url.URL {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("ParseRequestURI(%q): %v", target, err)
	}
	return u
}

func TestCleanPathSegments(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/a/b": true, "/a/..b/c.": true, "/a/...": true, "/a;b/c": true,
		"": false, "a": false, "*": false, "/..": false, "/a/./b": false, "/a/../b": false,
		"/a/..;/b": false, "/a/.;x/b": false, "/a/..;": false, `/a\..\b`: false, `/a\.`: false, `/a/..\b`: false,
	} {
		if got := cleanPath(p); got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		target string
		found  finding
		err    error
	}{
		{"/", 0, nil},
		{"/api/users/42", 0, nil},
		{"/a%20b/caf%C3%A9/%E2%82%AC", 0, nil},
		{"/a%41b", 0, nil},
		{"/a%23b%3Fc", 0, nil},
		{"/a%25b", 0, nil},    // "%b" after decoding: not an escape
		{"/a%2541", 0, nil},   // "%41" after decoding: "A", harmless
		{"/a%252", 0, nil},    // "%2" at the end
		{"/x/..a/.b", 0, nil}, // dot segments are cleanPath's
		{"/a%00", 0, errPathControl},
		{"/a%0a", 0, errPathControl},
		{"/a%7F", 0, errPathControl},
		{"/a%1Fb", 0, errPathControl},
		{`/a\b`, 0, errPathBackslash},
		{"/a#b", 0, errPathFragment},
		{"/a%5Cb", foundEncodedSeparator, nil},
		{"/a%5cb", foundEncodedSeparator, nil},
		{"/a%2Fb", foundEncodedSeparator, nil},
		{"/a%2fb", foundEncodedSeparator, nil},
		{"/a%2f%41", foundEncodedSeparator, nil},
		{"/a;b", foundPathParam, nil},
		{"/a%3Bb", foundPathParam, nil},
		{"/a;b%2F", foundPathParam | foundEncodedSeparator, nil},
		{"//a", foundRepeatedSlash, nil},
		{"/a//b", foundRepeatedSlash, nil},
		{"/a//%41", foundRepeatedSlash, nil},
		{"/a/%2F", foundEncodedSeparator, nil}, // judged as sent: not a repeated slash
		{"/%2F 00", foundRepeatedSlash, nil},   // a raw path net/url will not send: judged as re-escaped, "//%2000"
		{"/a%2F\"b", 0, nil},                   // likewise: leaves as "/a/%22b", the path that was routed
		{"/a%252e", 0, errPathDoubleEncoding},
		{"/a%252F", 0, errPathDoubleEncoding},
		{"/a%255c", 0, errPathDoubleEncoding},
		{"/a%2525", 0, errPathDoubleEncoding},
		{"/a%2500", 0, errPathDoubleEncoding},
		{"/a%25C0%25AE", 0, errPathDoubleEncoding},
		{"/a%25%32%65", 0, errPathDoubleEncoding},
		{"/a%C0%AE", 0, errPathUTF8},
		{"/a%E0%80%AE", 0, errPathUTF8},
		{"/a%ED%A0%80", 0, errPathUTF8},
		{"/a%FF", 0, errPathUTF8},
		{"/a\xc0\xae", 0, errPathUTF8},
	} {
		t.Run(tc.target, func(t *testing.T) {
			u := parseTarget(t, tc.target)
			found, err := checkPath(u.Path, u.RawPath)
			if !errors.Is(err, tc.err) || err == nil && found != tc.found {
				t.Fatalf("checkPath(%q, %q) = %b, %v; want %b, %v", u.Path, u.RawPath, found, err, tc.found, tc.err)
			}
		})
	}
}

// FuzzCheckPath: whatever checkPath accepts has no control characters, is
// valid UTF-8, holds nothing double-encoded, and carries an encoded
// separator, a ';' or a repeated slash only if it reports it (for the
// route to decide).
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a%2Fb", "/a%5C", `/a\b`, "/a;b", "/a%252e", "/%C0%AE", "//x", "/a#b", "/a%00", "/a%25%32%65", "/caf\xc3\xa9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http answers 400 itself
		}
		found, err := checkPath(u.Path, u.RawPath)
		if err != nil {
			return
		}
		p := u.Path
		if !utf8.ValidString(p) {
			t.Fatalf("accepted invalid UTF-8: %q", p)
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("accepted a control character: %q", p)
			}
			if p[i] == '%' && i+2 < len(p) {
				if v, ok := unhex2(p[i+1], p[i+2]); ok && doubleEncodedUnsafe(v) {
					t.Fatalf("accepted a double-encoded %q: %q", v, p)
				}
			}
		}
		sent := u.EscapedPath()
		if found&foundEncodedSeparator == 0 {
			lower := strings.ToLower(sent)
			if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(p, `\`) {
				t.Fatalf("encoded separator not reported: %q (sent %q)", p, sent)
			}
		}
		if strings.ContainsAny(u.RawPath, `\#`) {
			t.Fatalf("accepted a raw backslash or #: %q", u.RawPath)
		}
		if found&foundPathParam == 0 && strings.Contains(p, ";") {
			t.Fatalf("';' not reported: %q", p)
		}
		if found&foundRepeatedSlash == 0 && strings.Contains(sent, "//") {
			t.Fatalf("repeated slash not reported: %q", sent)
		}
	})
}

// TestHygieneDoesNotAllocate: a clean request passes the checks and the
// route match without allocating.
func TestHygieneDoesNotAllocate(t *testing.T) {
	p := buildPlan(t, `
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["http://upstream.test"]}
`)
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api/users/42?page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "test/1.0")
	r.Header.Set("X-Request-Id", "abc")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.route(r, p.peerTrusted(r)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per clean request, want 0", allocs)
	}
}

// BenchmarkHygiene is the cost of the checks and the route match for a
// clean request.
//
//	go test -run '^$' -bench Hygiene -benchmem ./internal/pipeline
func BenchmarkHygiene(b *testing.B) {
	p := buildPlan(b, `
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["http://upstream.test"]}
`)
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api/users/42/orders?page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Authorization", "Bearer x")
	r.RemoteAddr = "192.0.2.10:40000"
	b.Run("route", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.route(r, p.peerTrusted(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check_path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := checkPath(r.URL.Path, r.URL.RawPath); err != nil {
				b.Fatal(err)
			}
		}
	})
}
