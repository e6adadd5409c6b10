package session_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/session"
)

// fuzzKey is fixed so that the seed corpus holds values that open.
var fuzzKey = bytes.Repeat([]byte{0x42}, session.KeySize)

const fuzzCookie = "__Host-gatehouse"

// FuzzOpenCookie feeds arbitrary Cookie headers through what the
// session method does with every request: ReadCookies, Open, Unmarshal.
// None may panic, and each stays in its budget: ReadCookies returns at
// most MaxChunks chunks of the largest chunk, and what opens is a
// session that marshals again.
func FuzzOpenCookie(f *testing.F) {
	c, err := session.NewCodec([][]byte{fuzzKey})
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds: the fuzzer minimises every new input it finds
	// interesting, which for a 3 KB session cookie takes longer than the
	// few seconds CI gives a target. Large values are covered by the
	// table tests; the code paths are the same.
	small := &session.Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", Subject: "alice", Claims: map[string]any{"g": []any{"x"}}, Created: time.Unix(1, 0)}
	sb, _ := small.Marshal()
	for _, pt := range [][]byte{sb, []byte("{}"), []byte(`{"v":1,"id":"x"}`)} {
		v, err := c.Seal(fuzzCookie, pt)
		if err != nil {
			f.Fatal(err)
		}
		// 64: several chunks (below what Validate allows; WriteCookies does not care).
		for _, chunk := range []int{3800, 64} {
			opts := session.DefaultCookieOptions()
			opts.MaxChunk = chunk
			var parts []string
			for _, ck := range session.WriteCookies(nil, opts, v) {
				parts = append(parts, ck.Name+"="+ck.Value)
			}
			f.Add(strings.Join(parts, "; "))
		}
	}
	f.Add(fuzzCookie + "=2~abc; " + fuzzCookie + ".1=def")
	f.Add(fuzzCookie + `="abc"; ` + fuzzCookie + "=abd")
	f.Add(fuzzCookie + "=8~" + strings.Repeat("; "+fuzzCookie+".7=A", 3))
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		v, ok := session.ReadCookies(r, fuzzCookie)
		if !ok {
			if v != "" {
				t.Fatal("ReadCookies returned a value with false")
			}
			return
		}
		if len(v) > session.MaxChunks*4000 || len(v) > len(header) {
			t.Fatalf("ReadCookies returned %d bytes from a %d-byte header", len(v), len(header))
		}
		pt, err := c.Open(fuzzCookie, v)
		if err != nil {
			return
		}
		if len(pt) > session.MaxPlaintext {
			t.Fatalf("Open returned %d bytes", len(pt))
		}
		sess, err := session.Unmarshal(pt)
		if err != nil {
			return
		}
		if !session.ValidID(sess.ID) {
			t.Fatalf("Unmarshal accepted id %q", sess.ID)
		}
		if _, err := sess.Marshal(); err != nil {
			t.Fatalf("an opened session does not marshal again: %v", err)
		}
	})
}

// FuzzUnmarshalSession goes past the AEAD, which random input never
// passes: the session decoder itself on arbitrary bytes.
func FuzzUnmarshalSession(f *testing.F) {
	s := &session.Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", Provider: "p", Issuer: "https://i", Subject: "s", SID: "x", AccessToken: "a", RefreshToken: "r", IDToken: "i",
		Claims: map[string]any{"n": 1.5, "g": []any{"a"}}, TokenExpiry: time.Unix(9, 0), AuthTime: time.Unix(1, 0), Created: time.Unix(2, 0), LastSeen: time.Unix(3, 0)}
	b, _ := s.Marshal()
	f.Add(b)
	f.Add([]byte(`{"v":1,"id":"AAAAAAAAAAAAAAAAAAAAAA","c":{"a":[1,{"b":null}]},"exp":-1}`))
	f.Add([]byte(`{"v":1,"id":"AAAAAAAAAAAAAAAAAAAAAA"}{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		sess, err := session.Unmarshal(in)
		if err != nil {
			if sess != nil {
				t.Fatal("session returned with an error")
			}
			return
		}
		if len(in) > session.MaxMarshaled || !session.ValidID(sess.ID) {
			t.Fatalf("accepted %d bytes with id %q", len(in), sess.ID)
		}
		out, err := sess.Marshal()
		if err != nil {
			t.Fatalf("accepted session does not marshal: %v", err)
		}
		again, err := session.Unmarshal(out)
		if err != nil || again.ID != sess.ID || again.Subject != sess.Subject || !again.Created.Equal(sess.Created) {
			t.Fatalf("re-marshalled session does not round trip: %v", err)
		}
	})
}
