package basic

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseBasic: the Basic header parser never panics, stays within its
// budget (a value over MaxEncodedLen is refused before decoding), and
// what it accepts is a valid user name and a bounded, UTF-8 password
// without control characters.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{b64s("alice:s3cret"), b64s("a:"), b64s(":"), "!!", "", "YWxp/2U6cw==", strings.Repeat("A", MaxEncodedLen+4)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		user, pw, err := ParseBasic(in)
		if err != nil {
			if user != "" || pw != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if len(in) > MaxEncodedLen {
			t.Fatalf("accepted %d bytes, budget %d", len(in), MaxEncodedLen)
		}
		if CheckName(user) != nil || len(pw) > MaxPasswordLen || !utf8.Valid(pw) {
			t.Fatalf("accepted user %q / password of %d bytes", user, len(pw))
		}
		if b64s(user+":"+string(pw)) != in {
			t.Fatalf("accepted %q, which is not the canonical encoding of what it returned", in)
		}
	})
}

// FuzzParseHash: the PHC/bcrypt parser never panics and never accepts
// parameters outside the bounds (the fuzz target asserts the budget: a
// hash it accepts costs at most m×t = 1 GiB·pass).
func FuzzParseHash(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$2y$10$abcdefghijklmnopqrstuu5Rx2wz0qHhtGt2aCVt3.XTx6v7wqlNu",
		"plain", "$apr1$x$y", "$argon2id$", "$2b$99$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseHash(in)
		if err != nil {
			if h != nil {
				t.Fatal("hash returned with an error")
			}
			return
		}
		switch h.Alg {
		case Argon2id:
			if h.Params.Check() != nil || len(h.salt) < MinSaltLen || len(h.key) < MinKeyLen || len(h.key) > MaxKeyLen {
				t.Fatalf("accepted out-of-bounds %+v", h.Params)
			}
		case Bcrypt:
			if h.Cost < MinBcryptCost || h.Cost > MaxBcryptCost {
				t.Fatalf("accepted bcrypt cost %d", h.Cost)
			}
		default:
			t.Fatalf("accepted %q as %q", in, h.Alg)
		}
	})
}
