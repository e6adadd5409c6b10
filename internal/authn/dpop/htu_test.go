package dpop

import (
	"net/http/httptest"
	"testing"
)

func TestNormalizeHTU(t *testing.T) {
	for _, c := range []struct {
		in, want string
		bad      bool
	}{
		{in: "https://api.example.com/v1/things", want: "https://api.example.com/v1/things"},
		{in: "HTTPS://API.EXAMPLE.COM/V1", want: "https://api.example.com/V1"},
		{in: "https://api.example.com:443/x", want: "https://api.example.com/x"},
		{in: "http://api.example.com:80/x", want: "http://api.example.com/x"},
		{in: "http://api.example.com:443/x", want: "http://api.example.com:443/x"},
		{in: "https://api.example.com:/x", want: "https://api.example.com/x"},
		{in: "https://api.example.com:08443/x", want: "https://api.example.com:8443/x"},
		{in: "https://api.example.com", want: "https://api.example.com/"},
		{in: "https://api.example.com?q#f", want: "https://api.example.com/"},
		{in: "https://api.example.com/a?q=1#f", want: "https://api.example.com/a"},
		{in: "https://api.example.com/%7euser/%41", want: "https://api.example.com/~user/A"},
		{in: "https://api.example.com/a%2fb%3Fc", want: "https://api.example.com/a%2Fb%3Fc"},
		{in: "https://api.example.com/a b", want: "https://api.example.com/a%20b"},
		{in: "https://api.example.com/caf%C3%A9", want: "https://api.example.com/caf%C3%A9"},
		{in: "https://api.example.com/a/./b/../c", want: "https://api.example.com/a/c"},
		{in: "https://api.example.com/a/%2E%2E/c", want: "https://api.example.com/c"},
		{in: "https://api.example.com/../../x", want: "https://api.example.com/x"},
		{in: "https://api.example.com/a/..", want: "https://api.example.com/"},
		{in: "https://api.example.com//a", want: "https://api.example.com//a"},
		{in: "https://[2001:DB8::1]:443/x", want: "https://[2001:db8::1]/x"},
		{in: "https://[::1]:8443/x", want: "https://[::1]:8443/x"},
		{in: "https://127.0.0.1:8080/x", want: "https://127.0.0.1:8080/x"},
		{in: "ftp://api.example.com/x", bad: true},
		{in: "/v1/things", bad: true},
		{in: "api.example.com/v1", bad: true},
		{in: "https:///x", bad: true},
		{in: "https://user:pw@api.example.com/x", bad: true},
		{in: "https:opaque", bad: true},
		{in: "https://api.example.com:99999/x", bad: true},
		{in: "https://api.example.com:x/x", bad: true},
		{in: "https://api.example.com/%zz", bad: true},
		{in: "https://[fe80::1%25eth0]/x", bad: true},
		{in: "https://exa mple.com/x", bad: true},
		{in: "https://bücher.example/x", bad: true},
		{in: "", bad: true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := NormalizeHTU(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("NormalizeHTU(%q) = %q, want an error", c.in, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("NormalizeHTU(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			if again, err := NormalizeHTU(got); err != nil || again != got {
				t.Errorf("not idempotent: %q → %q, %v", got, again, err)
			}
		})
	}
}

func TestRequestURL(t *testing.T) {
	r := httptest.NewRequest("GET", "http://internal:8080/a%2Fb/c?x=1", nil)
	for _, c := range []struct {
		scheme, host, want string
	}{
		{"https", "API.example.com:443", "https://api.example.com/a%2Fb/c"},
		{"http", "", "http://internal:8080/a%2Fb/c"},
	} {
		got, err := normalizeURL(RequestURL(r, c.scheme, c.host))
		if err != nil || got != c.want {
			t.Errorf("RequestURL(%q, %q) = %q, %v; want %q", c.scheme, c.host, got, err, c.want)
		}
	}
}
