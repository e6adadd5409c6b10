package basic

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseBasic(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		user, pass string
		err        error
	}{
		{"simple", b64s("alice:s3cret"), "alice", "s3cret", nil},
		{"colon in password", b64s("alice:a:b:c"), "alice", "a:b:c", nil},
		{"empty password", b64s("alice:"), "alice", "", nil},
		{"utf-8", b64s("jürgen:pässwörd"), "jürgen", "pässwörd", nil},
		{"space in password", b64s("alice:a b"), "alice", "a b", nil},
		{"no colon", b64s("alice"), "", "", ErrHeaderMalformed},
		{"empty user", b64s(":pw"), "", "", ErrHeaderMalformed},
		{"empty", "", "", "", ErrHeaderMalformed},
		{"bad base64", "!!!!", "", "", ErrHeaderMalformed},
		{"unpadded", strings.TrimRight(b64s("alice:pw"), "="), "", "", ErrHeaderMalformed},
		{"url alphabet", base64.URLEncoding.EncodeToString([]byte("a?>:~~~~")), "", "", ErrHeaderMalformed},
		{"non-utf-8 user", base64.StdEncoding.EncodeToString([]byte("al\xffce:pw")), "", "", ErrHeaderMalformed},
		{"non-utf-8 password", base64.StdEncoding.EncodeToString([]byte("alice:p\xc3w")), "", "", ErrHeaderMalformed},
		{"latin-1", base64.StdEncoding.EncodeToString([]byte("j\xfcrgen:pw")), "", "", ErrHeaderMalformed},
		{"control in user", b64s("al\x00ice:pw"), "", "", ErrHeaderMalformed},
		{"control in password", b64s("alice:p\nw"), "", "", ErrHeaderMalformed},
		{"leading space user", b64s(" alice:pw"), "", "", ErrHeaderMalformed},
		{"long user", b64s(strings.Repeat("u", MaxNameLen+1) + ":pw"), "", "", ErrHeaderMalformed},
		{"long password", b64s("alice:" + strings.Repeat("p", MaxPasswordLen+1)), "", "", ErrHeaderMalformed},
		{"huge", strings.Repeat("A", 1<<20), "", "", ErrHeaderTooLarge},
		{"just too large", strings.Repeat("A", MaxEncodedLen+4), "", "", ErrHeaderTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, pass, err := ParseBasic(tc.in)
			if !errors.Is(err, tc.err) || user != tc.user || string(pass) != tc.pass {
				t.Fatalf("ParseBasic = %q, %q, %v; want %q, %q, %v", user, pass, err, tc.user, tc.pass, tc.err)
			}
		})
	}
}
