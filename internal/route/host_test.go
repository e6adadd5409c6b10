package route

import (
	"strings"
	"testing"
)

func TestValidateHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		err  string // substring of the error; "" for valid hosts
	}{
		{host: "api.example.com"},
		{host: "*.example.com"},
		{host: "*.eu.example.com"},
		{host: "*.com"},
		{host: "localhost"},
		{host: "127.0.0.1"},
		{host: "my_service.internal"},
		{host: "a-b.c-d"},
		{host: "xn--bcher-kva.example"},
		{host: strings.Repeat("a", 63) + ".test"},

		{host: "", err: "must not be empty"},
		{host: "*", err: `"*" alone is not a wildcard`},
		{host: "*.", err: `label "": empty label`},
		{host: "*example.com", err: `"*" is only allowed as a leading "*."`},
		{host: "*.*.example.com", err: `"*" is only allowed as a leading "*."`},
		{host: "a.*.example.com", err: `"*" is only allowed as a leading "*."`},
		{host: "api.*", err: `"*" is only allowed as a leading "*."`},
		{host: "API.example.com", err: "must be lower case"},
		{host: "*.Example.com", err: "must be lower case"},
		{host: "example.com.", err: "must not end with a dot"},
		{host: "example.com:8080", err: "must not contain a port"},
		{host: "[::1]", err: "IPv6 literals are not supported"},
		{host: "::1", err: "must not contain a port"},
		{host: ".example.com", err: "empty label"},
		{host: "a..example.com", err: "empty label"},
		{host: "-a.example.com", err: `must not start or end with "-"`},
		{host: "a-.example.com", err: `must not start or end with "-"`},
		{host: "a b.example.com", err: `invalid character ' '`},
		{host: "bücher.example", err: "invalid character"},
		{host: "a/b", err: "invalid character '/'"},
		{host: strings.Repeat("a", 64) + ".test", err: "longer than 63 bytes"},
		{host: strings.Repeat("abc.", 64) + "test", err: "longer than 253 bytes"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			err := ValidateHost(tc.host)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "route: host ") {
				t.Errorf("err = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestAppendCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"API.Example.Com", "api.example.com"},
		{"api.example.com:8080", "api.example.com"},
		{"api.example.com.", "api.example.com"},
		{"api.example.com.:8080", "api.example.com"},
		{"[::1]:8080", "[::1]"},
		{"[::1]", "[::1]"},
		{"[FE80::1%25ETH0]:443", "[fe80::1%25eth0]"},
		{"[::1", "[::1"},
		{"", ""},
		{":80", ""},
		{".", ""},
	} {
		if got := string(appendCanonicalHost(nil, tc.in)); got != tc.want {
			t.Errorf("appendCanonicalHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
