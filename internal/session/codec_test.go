package session_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/session"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, session.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newCodec(t testing.TB, keys ...[]byte) *session.Codec {
	t.Helper()
	c, err := session.NewCodec(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	c := newCodec(t, newKey(t))
	for _, tc := range []struct {
		name string
		pt   []byte
	}{
		{"empty", nil},
		{"short", []byte("x")},
		{"typical", bytes.Repeat([]byte("session "), 300)},
		{"max", bytes.Repeat([]byte{0xA5}, session.MaxPlaintext)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.Seal("__Host-gatehouse", tc.pt)
			if err != nil {
				t.Fatal(err)
			}
			if len(v) > session.MaxSealed {
				t.Fatalf("sealed length %d over MaxSealed %d", len(v), session.MaxSealed)
			}
			if strings.ContainsAny(v, "=+/") {
				t.Fatalf("not unpadded base64url: %q", v[:min(len(v), 40)])
			}
			got, err := c.Open("__Host-gatehouse", v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Fatal("round trip changed the plaintext")
			}
			// A fresh nonce every time: two seals of one plaintext differ.
			v2, _ := c.Seal("__Host-gatehouse", tc.pt)
			if v2 == v {
				t.Fatal("two seals of the same plaintext are equal (nonce reuse)")
			}
		})
	}
}

func TestCodecRefuses(t *testing.T) {
	oldKey, newK, otherKey := newKey(t), newKey(t), newKey(t)
	sealer := newCodec(t, oldKey)
	good, err := sealer.Seal("cookie-a", []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	reenc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	withByte := func(i int, v byte) string {
		b := bytes.Clone(raw)
		b[i] = v
		return reenc(b)
	}
	for _, tc := range []struct {
		name    string
		opener  *session.Codec
		purpose string
		value   string
		ok      bool
	}{
		{"good", sealer, "cookie-a", good, true},
		{"rotation: old key still opens", newCodec(t, newK, oldKey), "cookie-a", good, true},
		{"wrong purpose", sealer, "cookie-b", good, false},
		{"empty purpose", sealer, "", good, false},
		{"purpose prefix", sealer, "cookie-", good, false},
		{"unknown key id", newCodec(t, otherKey), "cookie-a", good, false},
		{"key removed after rotation", newCodec(t, newK), "cookie-a", good, false},
		{"key id of a known key, other key's ciphertext", newCodec(t, otherKey, oldKey), "cookie-a", func() string {
			v, _ := newCodec(t, otherKey).Seal("cookie-a", []byte(`{"v":1}`))
			b, _ := base64.RawURLEncoding.DecodeString(v)
			copy(b[1:5], raw[1:5]) // claim oldKey's id
			return reenc(b)
		}(), false},
		{"version 0", sealer, "cookie-a", withByte(0, 0), false},
		{"version 2", sealer, "cookie-a", withByte(0, 2), false},
		{"empty", sealer, "cookie-a", "", false},
		{"truncated by one byte", sealer, "cookie-a", reenc(raw[:len(raw)-1]), false},
		{"header only", sealer, "cookie-a", reenc(raw[:29]), false},
		{"tag only", sealer, "cookie-a", reenc(raw[:45]), false},
		{"appended byte", sealer, "cookie-a", reenc(append(bytes.Clone(raw), 0)), false},
		{"padded", sealer, "cookie-a", base64.URLEncoding.EncodeToString(raw), false},
		{"std alphabet", sealer, "cookie-a", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/", false},
		{"space inside", sealer, "cookie-a", good[:10] + " " + good[10:], false},
		{"not base64", sealer, "cookie-a", strings.Repeat("!", 80), false},
		{"oversize", sealer, "cookie-a", strings.Repeat("A", session.MaxSealed+1), false},
		{"huge", sealer, "cookie-a", strings.Repeat("A", 10<<20), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.opener.Open(tc.purpose, tc.value)
			if tc.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if string(pt) != `{"v":1}` {
					t.Fatalf("plaintext %q", pt)
				}
				return
			}
			if !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("Open = %q, %v; want ErrInvalid", pt, err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
}

// Every byte of a sealed value is covered: flipping any bit of any byte
// (header, nonce, ciphertext, tag) makes it refused.
func TestCodecTamperEveryByte(t *testing.T) {
	c := newCodec(t, newKey(t), newKey(t))
	v, err := c.Seal("p", bytes.Repeat([]byte("abc"), 50))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= bit
			if _, err := c.Open("p", base64.RawURLEncoding.EncodeToString(b)); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("byte %d bit %#x flipped: Open err = %v, want ErrInvalid", i, bit, err)
			}
		}
	}
	// And every character of the encoded form, including the last one
	// (whose low bits are padding: strict decoding refuses them).
	for i := range v {
		for _, ch := range []byte{'A', 'z', '-'} {
			if v[i] == ch {
				continue
			}
			s := v[:i] + string(ch) + v[i+1:]
			if _, err := c.Open("p", s); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("char %d set to %q: Open err = %v, want ErrInvalid", i, ch, err)
			}
		}
	}
}

func TestCodecRotationSealsWithFirstKey(t *testing.T) {
	oldK, newK := newKey(t), newKey(t)
	rotated := newCodec(t, newK, oldK)
	v, err := rotated.Seal("p", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newCodec(t, newK).Open("p", v); err != nil {
		t.Fatalf("new key alone does not open what the rotated codec sealed: %v", err)
	}
	if _, err := newCodec(t, oldK).Open("p", v); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("old key opened a value sealed after rotation: %v", err)
	}
}

func TestCodecSealLimits(t *testing.T) {
	c := newCodec(t, newKey(t))
	if _, err := c.Seal("p", make([]byte, session.MaxPlaintext+1)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("oversize plaintext: %v, want ErrTooLarge", err)
	}
	if _, err := c.Seal("", []byte("x")); err == nil {
		t.Fatal("empty purpose accepted")
	}
}

func TestNewCodecRefuses(t *testing.T) {
	k := newKey(t)
	for _, tc := range []struct {
		name string
		keys [][]byte
		want string
	}{
		{"none", nil, "at least one"},
		{"short", [][]byte{make([]byte, 31)}, "key 1 is 31 bytes"},
		{"long", [][]byte{k, make([]byte, 33)}, "key 2 is 33 bytes"},
		{"repeated", [][]byte{k, newKey(t), bytes.Clone(k)}, "key 3 repeats key 1"},
		{"too many", func() [][]byte {
			var ks [][]byte
			for range 17 {
				ks = append(ks, newKey(t))
			}
			return ks
		}(), "at most 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := session.NewCodec(tc.keys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCodec err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	k := newKey(t)
	// A key whose encodings use + and / (std) or - and _ (url).
	for k[0] = 0; ; k[0]++ {
		s := base64.StdEncoding.EncodeToString(k)
		if strings.ContainsAny(s, "+/") {
			break
		}
	}
	std, url := base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)
	for _, tc := range []struct {
		name  string
		specs []string
		want  string // "" for success
	}{
		{"std padded", []string{std}, ""},
		{"std unpadded", []string{strings.TrimRight(std, "=")}, ""},
		{"url unpadded", []string{url}, ""},
		{"url padded", []string{base64.URLEncoding.EncodeToString(k)}, ""},
		{"surrounding whitespace", []string{" " + std + "\n"}, ""},
		{"two", []string{url, std}, ""},
		{"none", nil, "at least one"},
		{"empty", []string{url, " "}, "key 2 is empty"},
		{"short", []string{base64.StdEncoding.EncodeToString(k[:16])}, "key 1 decodes to 16 bytes"},
		{"long", []string{base64.StdEncoding.EncodeToString(append(bytes.Clone(k), 1))}, "key 1 decodes to 33 bytes"},
		{"not base64", []string{"correct horse battery staple!!!!"}, "key 1 is not base64"},
		{"mixed alphabets", []string{"ab+c-d" + url[6:]}, "key 1 is not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := session.ParseKeys(tc.specs)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, got := range keys {
					if !bytes.Equal(got, k) {
						t.Fatal("decoded key differs")
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, s := range tc.specs {
				if s = strings.TrimSpace(s); len(s) > 4 && strings.Contains(err.Error(), s) {
					t.Fatal("error message echoes the key")
				}
			}
		})
	}
}

func TestNewKeyParses(t *testing.T) {
	s, err := session.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.ParseKeys([]string{s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.NewCodec(keys); err != nil {
		t.Fatal(err)
	}
}
