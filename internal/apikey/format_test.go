package apikey

import (
	"errors"
	"hash/crc32"
	"math/big"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func mustFormat(t testing.TB, prefix string) Format {
	t.Helper()
	f, err := NewFormat(prefix)
	if err != nil {
		t.Fatalf("NewFormat(%q): %v", prefix, err)
	}
	return f
}

func mustGenerate(t testing.TB, f Format) string {
	t.Helper()
	k, err := f.Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return k
}

func TestNewFormat(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, want string
		ok                 bool
	}{
		{"empty selects default", "", DefaultPrefix, true},
		{"default", "gate_live_", "gate_live_", true},
		{"one word", "gate_", "gate_", true},
		{"digits", "acme2_test3_", "acme2_test3_", true},
		{"max length", "a" + strings.Repeat("b", 30) + "_", "a" + strings.Repeat("b", 30) + "_", true},
		{"too long", "a" + strings.Repeat("b", 31) + "_", "", false},
		{"no trailing underscore", "gate", "", false},
		{"uppercase", "Gate_", "", false},
		{"leading digit", "1gate_", "", false},
		{"three words", "a_b_c_", "", false},
		{"double underscore", "gate__", "", false},
		{"hyphen", "gate-live_", "", false},
		{"only underscore", "_", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFormat(tc.prefix)
			if !tc.ok {
				if !errors.Is(err, ErrInvalidPrefix) {
					t.Fatalf("NewFormat(%q) error = %v, want ErrInvalidPrefix", tc.prefix, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewFormat(%q): %v", tc.prefix, err)
			}
			if f.Prefix != tc.want {
				t.Fatalf("Prefix = %q, want %q", f.Prefix, tc.want)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	for _, prefix := range []string{"", "gate_", "gate_test_", "a" + strings.Repeat("b", 30) + "_"} {
		f := mustFormat(t, prefix)
		seen := make(map[string]bool)
		for range 2000 {
			k := mustGenerate(t, f)
			if len(k) != f.Len() || len(k) != len(f.Prefix)+49 {
				t.Fatalf("len(%q) = %d, want %d", k, len(k), f.Len())
			}
			if !strings.HasPrefix(k, f.Prefix) {
				t.Fatalf("key %q lacks prefix %q", k, f.Prefix)
			}
			if err := f.Check(k); err != nil {
				t.Fatalf("Check(generated key): %v", err)
			}
			if seen[k] {
				t.Fatalf("duplicate key %q", k)
			}
			seen[k] = true
		}
	}
}

func TestGenerateInvalidPrefix(t *testing.T) {
	if _, err := (Format{Prefix: "Bad"}).Generate(); !errors.Is(err, ErrInvalidPrefix) {
		t.Fatalf("Generate with bad prefix: error = %v, want ErrInvalidPrefix", err)
	}
}

func TestZeroFormatUsesDefault(t *testing.T) {
	k := mustGenerate(t, Format{})
	if !strings.HasPrefix(k, DefaultPrefix) {
		t.Fatalf("zero Format generated %q", k)
	}
	if err := mustFormat(t, DefaultPrefix).Check(k); err != nil {
		t.Fatal(err)
	}
}

// encodeBody must agree with an independent math/big conversion, use its
// whole width for 2^256-1 and stay left-padded for small values.
func TestEncodeBody(t *testing.T) {
	reference := func(raw [bodyBytes]byte) string {
		n := new(big.Int).SetBytes(raw[:])
		out := make([]byte, BodyLen)
		sixtyTwo := big.NewInt(62)
		rem := new(big.Int)
		for i := BodyLen - 1; i >= 0; i-- {
			n.QuoRem(n, sixtyTwo, rem)
			out[i] = base62Alphabet[rem.Int64()]
		}
		if n.Sign() != 0 {
			t.Fatal("value does not fit in BodyLen digits")
		}
		return string(out)
	}
	r := mrand.New(mrand.NewPCG(3, 4))
	inputs := [][bodyBytes]byte{{}, {31: 61}, {31: 62}}
	var max [bodyBytes]byte
	for i := range max {
		max[i] = 0xff
	}
	inputs = append(inputs, max)
	for range 200 {
		var raw [bodyBytes]byte
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		inputs = append(inputs, raw)
	}
	for _, raw := range inputs {
		want := reference(raw)
		dst := make([]byte, BodyLen)
		in := raw
		encodeBody(dst, &in)
		if string(dst) != want {
			t.Fatalf("encodeBody(%x) = %q, want %q", raw, dst, want)
		}
		if in != [bodyBytes]byte{} {
			t.Fatal("encodeBody did not consume its input")
		}
	}
	if got := reference([bodyBytes]byte{31: 61}); got != strings.Repeat("0", BodyLen-1)+"z" {
		t.Fatalf("61 encodes as %q", got)
	}
	if got := reference(max); got[0] == '0' {
		t.Fatalf("2^256-1 encodes as %q: the body is wider than needed", got)
	}
}

func TestCheck(t *testing.T) {
	f := mustFormat(t, "gate_live_")
	valid := mustGenerate(t, f)
	body := valid[len(f.Prefix) : len(valid)-ChecksumLen]
	other := mustGenerate(t, mustFormat(t, "gate_test_"))
	for _, tc := range []struct {
		name   string
		key    string
		reason string // "" = valid
	}{
		{"valid", valid, ""},
		{"empty", "", "wrong prefix"},
		{"other prefix", other, "wrong prefix"},
		{"prefix only", "gate_live_", "wrong length"},
		{"truncated", valid[:len(valid)-1], "wrong length"},
		{"truncated body", valid[:len(valid)-10], "wrong length"},
		{"extra char", valid + "a", "wrong length"},
		{"trailing newline", valid + "\n", "wrong length"},
		{"leading space", " " + valid, "wrong prefix"},
		{"uppercase prefix", strings.ToUpper(valid[:10]) + valid[10:], "wrong prefix"},
		{"bad char in body", valid[:12] + "-" + valid[13:], "bad character"},
		{"bad char in checksum", valid[:len(valid)-1] + "_", "bad character"},
		{"non-ascii", valid[:len(valid)-2] + "é", "bad character"},
		{"checksum of another key", f.Prefix + body + other[len(other)-ChecksumLen:], "bad checksum"},
		{"all zero", f.Prefix + strings.Repeat("0", BodyLen+ChecksumLen), "bad checksum"},
		{"random letters", f.Prefix + strings.Repeat("a", BodyLen+ChecksumLen), "bad checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Check(tc.key)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Check error = %q, want reason %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), tc.key) && tc.key != "" {
				t.Fatalf("Check error %q contains the key", err)
			}
		})
	}
}

// Every single-character substitution, and every adjacent transposition, of
// many generated keys must be rejected: CRC-32 detects all bursts up to 32
// bits, and a changed checksum character changes the checksum string.
func TestCheckRejectsTypos(t *testing.T) {
	f := mustFormat(t, "gate_live_")
	for range 20 {
		key := mustGenerate(t, f)
		b := []byte(key)
		for i := range b {
			orig := b[i]
			for j := 0; j < len(base62Alphabet); j++ {
				c := base62Alphabet[j]
				if c == orig {
					continue
				}
				b[i] = c
				if err := f.Check(string(b)); !errors.Is(err, ErrMalformed) {
					t.Fatalf("typo at %d (%q→%q) accepted", i, orig, c)
				}
			}
			b[i] = orig
		}
		for i := len(f.Prefix); i+1 < len(b); i++ {
			if b[i] == b[i+1] {
				continue
			}
			b[i], b[i+1] = b[i+1], b[i]
			if err := f.Check(string(b)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("transposition at %d accepted", i)
			}
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
}

func TestCheckRejectsRandomStrings(t *testing.T) {
	f := mustFormat(t, "gate_live_")
	r := mrand.New(mrand.NewPCG(1, 2))
	accepted := 0
	for range 100000 {
		b := make([]byte, BodyLen+ChecksumLen)
		for i := range b {
			b[i] = base62Alphabet[r.IntN(len(base62Alphabet))]
		}
		if f.Check(f.Prefix+string(b)) == nil {
			accepted++
		}
	}
	// A random well-shaped string passes with probability ~2^-32.
	if accepted > 0 {
		t.Fatalf("%d random strings passed Check", accepted)
	}
}

func TestHint(t *testing.T) {
	key := mustGenerate(t, mustFormat(t, "gate_live_"))
	for _, tc := range []struct {
		name, key, want string
	}{
		{"generated", key, "gate_live_…" + key[len(key)-4:]},
		{"fixed", "gate_live_" + strings.Repeat("x", 45) + "a1b2", "gate_live_…a1b2"},
		{"one-word prefix", "gate_" + strings.Repeat("x", 45) + "a1b2", "gate_…a1b2"},
		{"no prefix", strings.Repeat("x", 45) + "a1b2", "…a1b2"},
		{"too short", "gate_live_abc12345", "gate_live_…"},
		{"empty", "", "…"},
		{"non-key tail", "gate_live_" + strings.Repeat("x", 45) + "a\nb2", "gate_live_…"},
		{"bad prefix", "Gate_live_" + strings.Repeat("x", 45) + "a1b2", "…a1b2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hint(tc.key); got != tc.want {
				t.Fatalf("Hint(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestRegexp(t *testing.T) {
	for _, prefix := range []string{"gate_live_", "acme_"} {
		f := mustFormat(t, prefix)
		re := regexp.MustCompile(f.Regexp())
		for range 200 {
			k := mustGenerate(t, f)
			if !re.MatchString(k) {
				t.Fatalf("%s does not match %q", re, k)
			}
			text := "config:\n  token: \"" + k + "\"\n"
			if got := re.FindString(text); got != k {
				t.Fatalf("FindString in text = %q, want %q", got, k)
			}
		}
		k := mustGenerate(t, f)
		for _, s := range []string{k[:len(k)-1], k + "x", "x" + k, strings.ToUpper(k)} {
			if re.MatchString(s) {
				t.Fatalf("%s matches non-key %q", re, s)
			}
		}
	}
}

// checksumMatches recomputes the checksum independently of Check.
func checksumMatches(key string) bool {
	if len(key) < ChecksumLen {
		return false
	}
	split := len(key) - ChecksumLen
	var v uint64
	for i := split; i < len(key); i++ {
		d := strings.IndexByte(base62Alphabet, key[i])
		if d < 0 {
			return false
		}
		v = v*62 + uint64(d)
	}
	return v == uint64(crc32.ChecksumIEEE([]byte(key[:split])))
}

func FuzzCheck(f *testing.F) {
	format := mustFormat(f, "gate_live_")
	for range 4 {
		f.Add(mustGenerate(f, format))
	}
	k := mustGenerate(f, format)
	f.Add(k[:len(k)-1] + "0")
	f.Add(k[:20])
	f.Add("")
	f.Add("gate_live_")
	f.Add("gate_test_" + k[10:])
	f.Add(k + "\x00")
	f.Fuzz(func(t *testing.T, key string) {
		err := format.Check(key)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !strings.HasPrefix(key, format.Prefix) || len(key) != format.Len() {
			t.Fatalf("Check accepted %q of wrong shape", key)
		}
		if !checksumMatches(key) {
			t.Fatalf("Check accepted %q whose checksum does not match", key)
		}
		_ = Hint(key)
	})
}

func BenchmarkCheck(b *testing.B) {
	f := mustFormat(b, "gate_live_")
	k := mustGenerate(b, f)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Check(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	f := mustFormat(b, "gate_live_")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Generate(); err != nil {
			b.Fatal(err)
		}
	}
}
