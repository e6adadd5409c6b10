package basic

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testHash is one argon2id hash of "s3cret" at the default parameters,
// computed once for the package's tests.
var testHash = sync.OnceValue(func() string {
	s, err := HashPassword([]byte("s3cret"), DefaultParams)
	if err != nil {
		panic(err)
	}
	return s
})

// testBcrypt is a bcrypt hash of "legacy-pass" at cost 10 (an imported
// htpasswd -B -C 10 line).
var testBcrypt = sync.OnceValue(func() string {
	b, err := bcrypt.GenerateFromPassword([]byte("legacy-pass"), 10)
	if err != nil {
		panic(err)
	}
	return string(b)
})

func TestParseHash(t *testing.T) {
	good := testHash()
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…,t=…,p=…, salt, hash
	with := func(params string) string {
		return "$argon2id$v=19$" + params + "$" + parts[4] + "$" + parts[5]
	}
	lowCost, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want error // nil: parses
		alg  Algorithm
	}{
		{"argon2id default", good, nil, Argon2id},
		{"argon2id 46 MiB t=1", with("m=47104,t=1,p=1"), nil, Argon2id},
		{"argon2id 64 MiB t=3 p=4", with("m=65536,t=3,p=4"), nil, Argon2id},
		{"bcrypt cost 10", testBcrypt(), nil, Bcrypt},
		{"bcrypt $2y$ (htpasswd)", "$2y$" + testBcrypt()[4:], nil, Bcrypt},
		{"plaintext", "s3cret", ErrPlaintext, ""},
		{"empty", "", ErrPlaintext, ""},
		{"apache md5", "$apr1$abcdefgh$0123456789abcdefghijkl", ErrPlaintext, ""},
		{"sha1", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", ErrPlaintext, ""},
		{"sha512-crypt", "$6$salt$hash", ErrPlaintext, ""},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5], ErrMalformed, ""},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1), ErrMalformed, ""},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5], ErrMalformed, ""},
		{"hostile memory", with("m=4194304,t=2,p=1"), ErrParams, ""},
		{"memory just above ceiling", with("m=262145,t=2,p=1"), ErrParams, ""},
		{"memory above uint32", with("m=99999999999,t=2,p=1"), ErrMalformed, ""},
		{"hostile iterations", with("m=19456,t=1000000,p=1"), ErrParams, ""},
		{"hostile lanes", with("m=19456,t=2,p=255"), ErrParams, ""},
		{"lanes above uint8", with("m=19456,t=2,p=256"), ErrParams, ""},
		{"work above ceiling", with("m=262144,t=5,p=1"), ErrParams, ""},
		{"weak memory", with("m=4096,t=3,p=1"), ErrParams, ""},
		{"weak work", with("m=19456,t=1,p=1"), ErrParams, ""},
		{"zero iterations", with("m=19456,t=0,p=1"), ErrParams, ""},
		{"zero lanes", with("m=19456,t=2,p=0"), ErrParams, ""},
		{"leading zero", with("m=019456,t=2,p=1"), ErrMalformed, ""},
		{"sign", with("m=+19456,t=2,p=1"), ErrMalformed, ""},
		{"order", with("t=2,m=19456,p=1"), ErrMalformed, ""},
		{"duplicate", with("m=19456,m=19456,p=1"), ErrMalformed, ""},
		{"extra parameter", with("m=19456,t=2,p=1,k=1"), ErrMalformed, ""},
		{"missing parameter", with("m=19456,t=2"), ErrMalformed, ""},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "==$" + parts[5], ErrMalformed, ""},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + parts[5], ErrMalformed, ""},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "$a2V5", ErrMalformed, ""},
		{"bad base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!!!!!!!!$" + parts[5], ErrMalformed, ""},
		{"extra field", good + "$x", ErrMalformed, ""},
		{"too long", "$argon2id$" + strings.Repeat("a", MaxHashLen), ErrMalformed, ""},
		{"bcrypt cost 4", string(lowCost), ErrParams, ""},
		{"bcrypt cost 15", testBcrypt()[:4] + "15" + testBcrypt()[6:], ErrParams, ""},
		{"bcrypt truncated", testBcrypt()[:40], ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHash(tc.in)
			if tc.want == nil {
				if err != nil || h.Alg != tc.alg {
					t.Fatalf("ParseHash: %v, %v; want %s", h, err, tc.alg)
				}
				if h.String() != tc.in {
					t.Fatalf("String() = %q, want the input back", h.String())
				}
				return
			}
			if !errors.Is(err, tc.want) || h != nil {
				t.Fatalf("ParseHash = %v, %v; want %v", h, err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	a, err := ParseHash(testHash())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseHash(testBcrypt())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 73)
	bl, err := bcrypt.GenerateFromPassword([]byte(long[:72]), 10)
	if err != nil {
		t.Fatal(err)
	}
	b72, err := ParseHash(string(bl))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    *Hash
		pw   string
		want bool
	}{
		{"argon2id right", a, "s3cret", true},
		{"argon2id wrong", a, "s3cre", false},
		{"argon2id empty", a, "", false},
		{"argon2id too long", a, strings.Repeat("s", MaxPasswordLen+1), false},
		{"bcrypt right", b, "legacy-pass", true},
		{"bcrypt wrong", b, "legacy-pasS", false},
		// bcrypt reads 72 bytes; a 73-byte password is refused, never
		// truncated into a match.
		{"bcrypt 72 bytes", b72, long[:72], true},
		{"bcrypt 73 bytes", b72, long, false},
		{"nil hash", nil, "s3cret", false},
		{"zero hash", &Hash{}, "s3cret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Verify([]byte(tc.pw)); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		pw   string
		p    Params
		ok   bool
	}{
		{"default", "pw", DefaultParams, true},
		{"empty password", "", DefaultParams, false},
		{"too long", strings.Repeat("p", MaxPasswordLen+1), DefaultParams, false},
		{"weak params", "pw", Params{MemoryKiB: 1024, Iterations: 1, Lanes: 1}, false},
		{"hostile params", "pw", Params{MemoryKiB: 1 << 30, Iterations: 1, Lanes: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := HashPassword([]byte(tc.pw), tc.p)
			if (err == nil) != tc.ok {
				t.Fatalf("HashPassword: %q, %v", s, err)
			}
			if !tc.ok {
				return
			}
			h, err := ParseHash(s)
			if err != nil || !h.Verify([]byte(tc.pw)) || h.Params != tc.p {
				t.Fatalf("round trip of %q: %v %+v", s, err, h)
			}
			// A fresh salt each time.
			s2, _ := HashPassword([]byte(tc.pw), tc.p)
			if s2 == s {
				t.Fatal("two hashes of one password are equal: the salt is not random")
			}
		})
	}
}
