package ssf

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDecodeClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ev := `"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{"event_timestamp":1799999990}}`
	for _, tc := range []struct {
		name, payload string
		ok            bool
		check         func(*SET) bool
	}{
		{"SSF 1.0 with sub_id", `{"iss":"i","aud":"a","iat":1799999999,"jti":"j","sub_id":{"format":"iss_sub","iss":"x","sub":"alice"},` + ev + `}`, true,
			func(s *SET) bool {
				return s.Subject.Format == "iss_sub" && s.Subject.Sub == "alice" && s.EventTimestamp.Unix() == 1799999990 && s.Audience[0] == "a"
			}},
		{"complex subject", `{"iss":"i","aud":["a","b"],"iat":1,"jti":"j","sub_id":{"format":"complex","user":{"format":"email","email":"e@x"}},` + ev + `}`, true,
			func(s *SET) bool { return s.Subject.Email == "e@x" && len(s.Audience) == 2 }},
		{"unknown subject format", `{"iss":"i","iat":1,"jti":"j","sub_id":{"format":"phone_number","phone_number":"+1"},` + ev + `}`, true,
			func(s *SET) bool { return s.Subject.Format == "phone_number" }},
		{"duplicate member", `{"iss":"i","iss":"j","iat":1,"jti":"j",` + ev + `}`, false, nil},
		{"duplicate nested member", `{"iss":"i","iat":1,"jti":"j","sub_id":{"format":"opaque","id":"a","id":"b"},` + ev + `}`, false, nil},
		{"no jti", `{"iss":"i","iat":1,` + ev + `}`, false, nil},
		{"no iat", `{"iss":"i","jti":"j",` + ev + `}`, false, nil},
		{"iat a string", `{"iss":"i","iat":"1","jti":"j",` + ev + `}`, false, nil},
		{"no events", `{"iss":"i","iat":1,"jti":"j"}`, false, nil},
		{"event not an object", `{"iss":"i","iat":1,"jti":"j","events":{"x":[]}}`, false, nil},
		{"expired", `{"iss":"i","iat":1,"jti":"j","exp":2,` + ev + `}`, false, nil},
		{"aud a number", `{"iss":"i","aud":3,"iat":1,"jti":"j",` + ev + `}`, false, nil},
		{"trailing data", `{"iss":"i","iat":1,"jti":"j",` + ev + `}{}`, false, nil},
		{"too deep", `{"iss":"i","iat":1,"jti":"j","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `,` + ev + `}`, false, nil},
		{"control character in iss", `{"iss":"i\u0000","iat":1,"jti":"j",` + ev + `}`, false, nil},
		{"iss_sub without sub", `{"iss":"i","iat":1,"jti":"j","sub_id":{"format":"iss_sub","iss":"x"},` + ev + `}`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DecodeClaims([]byte(tc.payload), now)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if tc.check != nil && !tc.check(s) {
				t.Errorf("decoded %+v", s)
			}
		})
	}
}

// FuzzParseSET: parsing a SET's serialization and decoding claims never
// panics, keeps to the budgets (size, text length), and whatever decodes
// has the required claims.
func FuzzParseSET(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJFUzI1NiIsInR5cCI6InNlY2V2ZW50K2p3dCJ9.eyJpc3MiOiJpIn0.c2ln"), []byte(`{"iss":"i","aud":"a","iat":1,"jti":"j","sub_id":{"format":"iss_sub","iss":"x","sub":"s"},"events":{"e":{"event_timestamp":2}}}`))
	f.Add([]byte("a.b.c"), []byte(`{"iss":"i","iat":1,"jti":"j","events":{"e":{"subject":{"user":{"format":"opaque","id":"u"}}}}}`))
	f.Add([]byte(""), []byte(`{"a":{"a":1,"a":2}}`))
	f.Add([]byte(".."), []byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, raw, payload []byte) {
		if jws, err := ParseSET(raw); err == nil {
			if len(raw) > MaxSETBytes || len(jws.Signatures) != 1 {
				t.Fatalf("accepted outside the budget: %d bytes, %d signatures", len(raw), len(jws.Signatures))
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}
		s, err := DecodeClaims(payload, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if s.Issuer == "" || s.JTI == "" || s.EventType == "" || s.IssuedAt.IsZero() {
			t.Fatalf("decoded without required claims: %+v", s)
		}
		for _, v := range []string{s.Issuer, s.JTI, s.EventType, s.Subject.Sub, s.Subject.Issuer, s.Subject.Email, s.Subject.ID} {
			if len(v) > MaxTextBytes || !utf8.ValidString(v) {
				t.Fatalf("text outside the budget: %q", v)
			}
		}
	})
}
