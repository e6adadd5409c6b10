package cors

import (
	"strings"
	"testing"
	"time"
)

func TestAllowOrigin(t *testing.T) {
	p, err := New(Config{AllowedOrigins: []string{
		"https://app.example.com", "https://*.example.com", "http://localhost:3000",
		"https://*.ports.example.org:8443", "HTTPS://Upper.Example.NET:443",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"HTTPS://APP.EXAMPLE.COM", true},
		{"https://a.example.com", true},
		{"https://a.b.c.example.com", true},
		{"https://example.com", false}, // the apex is not a subdomain
		{"https://.example.com", false},
		{"https://a..example.com", false},
		{"http://a.example.com", false}, // scheme differs
		{"https://a.example.com:8443", false},
		{"https://evil-example.com", false},
		{"https://evilexample.com", false},
		{"https://example.com.evil.net", false},
		{"https://app.example.com.evil.net", false},
		{"https://evil.net/.example.com", false},
		{"https://evil.net?.example.com", false},
		{"https://evil.net#.example.com", false},
		{"https://user@a.example.com", false},
		{"https://a_b.example.com", false},
		{"null", false},
		{"", false},
		{"http://localhost:3000", true},
		{"http://localhost", false},
		{"http://localhost:30000", false},
		{"https://x.ports.example.org:8443", true},
		{"https://x.ports.example.org", false},
		{"https://x.ports.example.org:844", false},
		{"https://upper.example.net", true}, // default port dropped at load
		{"https://upper.example.net:443", false},
	} {
		if got := p.AllowOrigin(tc.origin); got != tc.want {
			t.Errorf("AllowOrigin(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
}

func TestAnyOrigin(t *testing.T) {
	p, err := New(Config{AllowedOrigins: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.AllowOrigin("null") || p.AllowOriginValue("https://a.example") != "*" {
		t.Fatal("* without credentials must allow any origin, answered with *")
	}
}

func TestCheckOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin      string
		credentials bool
		wantErr     string // "" means valid
	}{
		{"https://app.example.com", true, ""},
		{"https://*.example.com", true, ""},
		{"http://127.0.0.1:8080", false, ""},
		{"http://[::1]:8080", false, ""},
		{"chrome-extension://abcdef", false, ""},
		{"*", false, ""},
		{"*", true, "allow_credentials"},
		{"null", false, "cannot be trusted"},
		{"https://*.com", false, "at least two labels"},
		{"https://*", false, "wildcard"},
		{"https://a.*.example.com", false, "wildcard"},
		{"https://*example.com", false, "invalid host"},
		{"https://app.example.com/", false, "path"},
		{"https://app.example.com/x", false, "path"},
		{"https://app.example.com?q", false, "path"},
		{"https://u@app.example.com", false, "user info"},
		{"app.example.com", false, "scheme://host"},
		{"https://", false, "no host"},
		{"https://app.example.com:0", false, "port"},
		{"https://app.example.com:99999", false, "port"},
		{"https://app.example.com:x", false, "port"},
	} {
		err := CheckOrigin(tc.origin, tc.credentials)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckOrigin(%q, %v): %v", tc.origin, tc.credentials, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckOrigin(%q, %v) = %v, want an error about %q", tc.origin, tc.credentials, err, tc.wantErr)
		}
	}
}

func TestMethodsHeadersMaxAge(t *testing.T) {
	p, err := New(Config{AllowedOrigins: []string{"https://a.example"}, AllowedHeaders: []string{"Authorization", "X-Trace"},
		ExposedHeaders: []string{"X-Page", "X-Total"}, MaxAge: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": false, "get": false} {
		if p.AllowMethod(m) != want {
			t.Errorf("AllowMethod(%q) != %v", m, want)
		}
	}
	for list, want := range map[string]bool{
		"": true, "authorization": true, "Authorization, x-trace": true, " x-trace ,authorization": true,
		"authorization, x-admin": false, "x trace": false, "authorization,,x-trace": true,
	} {
		if p.AllowHeaders(list) != want {
			t.Errorf("AllowHeaders(%q) != %v", list, want)
		}
	}
	if p.Exposed != "X-Page, X-Total" || p.MaxAge != "90" {
		t.Fatalf("Exposed %q MaxAge %q", p.Exposed, p.MaxAge)
	}
	get, _ := New(Config{AllowedOrigins: []string{"https://a.example"}, AllowedMethods: []string{"GET", "PUT"}})
	if !get.AllowMethod("HEAD") || get.AllowMethod("POST") {
		t.Fatal("GET must imply HEAD, and nothing else")
	}
	any, _ := New(Config{AllowedOrigins: []string{"https://a.example"}, AllowedHeaders: []string{"*"}})
	if !any.AllowHeaders("X-Anything, Authorization") || any.AllowHeaders("bad header") {
		t.Fatal("* must allow any well-formed header name")
	}
}

func TestAllowOriginAllocs(t *testing.T) {
	p, _ := New(Config{AllowedOrigins: []string{"https://app.example.com", "https://*.example.com"}})
	if n := testing.AllocsPerRun(100, func() { p.AllowOrigin("https://x.y.example.com"); p.AllowHeaders("a, b") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func FuzzAllowOrigin(f *testing.F) {
	p, _ := New(Config{AllowedOrigins: []string{"https://*.example.com"}})
	for _, s := range []string{"https://a.example.com", "https://evil-example.com", "https://a.example.com.evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		if !p.AllowOrigin(origin) {
			return
		}
		// Whatever passes is https://<labels>.example.com, nothing else.
		low := strings.ToLower(origin)
		host := strings.TrimSuffix(strings.TrimPrefix(low, "https://"), ".example.com")
		if !strings.HasPrefix(low, "https://") || !strings.HasSuffix(low, ".example.com") || host == "" ||
			strings.ContainsAny(host, "/?#@:[]\\ %") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
			t.Fatalf("allowed %q", origin)
		}
	})
}
