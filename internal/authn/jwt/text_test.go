package jwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// signRS256Raw signs exactly the given header and payload bytes with
// provider a's RSA key: go-jose (and encoding/json) would repair invalid
// UTF-8 before signing, and the point is to sign what they would not.
func signRS256Raw(t testing.TB, header, payload string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, keys().rsaA, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// payloadWithSub is a valid claims set for provider a whose sub is the raw
// JSON text sub (quotes included, escapes as given).
func payloadWithSub(sub string) string {
	c := claims(issA, nil)
	return fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d,"iat":%d,"nbf":%d,"jti":"j","sub":%s}`,
		c["iss"], c["aud"], c["exp"], c["iat"], c["nbf"], sub)
}

// TestClaimsMustBeText: RFC 7519 section 7.2 step 10: the claims set (and
// step 5, the header) must be valid UTF-8. encoding/json turns every
// invalid sequence and every lone surrogate escape into U+FFFD, so distinct
// subjects would reach the backend as one; each is refused instead.
func TestClaimsMustBeText(t *testing.T) {
	fx := newFixture(t, nil)
	const rsHeader = `{"alg":"RS256","kid":"rsa"}`
	for _, tc := range []struct {
		name            string
		header, payload string
		wantSubject     string // "" = must fail with token_malformed
	}{
		{"plain subject accepted", rsHeader, payloadWithSub(`"alice"`), "alice"},
		{"non-ASCII subject accepted", rsHeader, payloadWithSub(`"zoë-日本"`), "zoë-日本"},
		{"escaped surrogate pair accepted", rsHeader, payloadWithSub(`"smile-\ud83d\ude00"`), "smile-😀"},
		{"escaped backslash before u accepted", rsHeader, payloadWithSub(`"a\\ud800"`), `a\ud800`},
		{"escaped BMP character accepted", rsHeader, payloadWithSub(`"\u00e9t\u00E9"`), "été"},

		{"invalid byte 0xff in sub", rsHeader, payloadWithSub("\"admin\xff\""), ""},
		{"invalid byte 0xfe in sub", rsHeader, payloadWithSub("\"admin\xfe\""), ""},
		{"truncated sequence in sub", rsHeader, payloadWithSub("\"admin\xc3\""), ""},
		{"overlong encoding of /", rsHeader, payloadWithSub("\"a\xc0\xafb\""), ""},
		{"encoded surrogate bytes", rsHeader, payloadWithSub("\"a\xed\xa0\x80\""), ""},
		{"lone high surrogate escape", rsHeader, payloadWithSub(`"admin\ud800"`), ""},
		{"lone low surrogate escape", rsHeader, payloadWithSub(`"admin\udc00"`), ""},
		{"high surrogate then BMP escape", rsHeader, payloadWithSub(`"admin\ud800\u0041"`), ""},
		{"reversed surrogate pair", rsHeader, payloadWithSub(`"\ude00\ud83d"`), ""},
		{"lone surrogate in a claim name", rsHeader, payloadWithSub(`"alice","x\udfff":1`), ""},
		{"invalid byte in an unmapped claim", rsHeader, payloadWithSub("\"alice\",\"note\":\"\xff\""), ""},
		{"invalid byte in kid", "{\"alg\":\"RS256\",\"kid\":\"rsa\xff\"}", payloadWithSub(`"alice"`), ""},
		{"lone surrogate in typ", `{"alg":"RS256","kid":"rsa","typ":"at+jwt\ud800"}`, payloadWithSub(`"alice"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRS256Raw(t, tc.header, tc.payload)
			id, err := fx.v.Verify(context.Background(), tok)
			if tc.wantSubject != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Subject != tc.wantSubject {
					t.Fatalf("subject %q, want %q", id.Subject, tc.wantSubject)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted with subject %q", id.Subject)
			}
			if r := reasonOf(err); r != authn.ReasonMalformed {
				t.Fatalf("reason %q, want %q (%v)", r, authn.ReasonMalformed, err)
			}
		})
	}

	// The defect this guards against: two tokens with different invalid
	// subjects must not both pass as one identity.
	a := signRS256Raw(t, rsHeader, payloadWithSub("\"user\xff\""))
	b := signRS256Raw(t, rsHeader, payloadWithSub("\"user\xfe\""))
	for _, tok := range []string{a, b} {
		if id, err := fx.v.Verify(context.Background(), tok); err == nil {
			t.Fatalf("token with an invalid subject accepted as %q", id.Subject)
		}
	}
}

func TestValidJSONText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{`{"a":"\\"}`, true},
		{`{"a":"\\\\u"}`, true},
		{`{"a":"\ud83d\ude00"}`, true},
		{`{"a":"\uD83D\uDE00"}`, true},
		{`{"a":"\u"}`, true}, // broken escape: left to the JSON decoder
		{`\`, true},
		{`{"a":"\ud83d"}`, false},
		{`{"a":"\ud83d\`, false},
		{`{"a":"\ud83d\u`, false},
		{`{"a":"\ud83d\uzzzz"}`, false},
		{`{"a":"\ude00"}`, false},
		{`{"a":"\uDFFF"}`, false},
		{"{\"a\":\"\x80\"}", false},
		{"\xef\xbf\xbd", true}, // U+FFFD itself is a valid character
	} {
		if got := validJSONText([]byte(tc.in)); got != tc.want {
			t.Errorf("validJSONText(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzValidJSONText: whatever validJSONText passes, encoding/json decodes
// without inventing a U+FFFD (its sign of a repaired byte or surrogate):
// a replacement character may only come from the input itself.
func FuzzValidJSONText(f *testing.F) {
	for _, s := range []string{`{"sub":"a"}`, `{"sub":"\ud83d\ude00"}`, `{"sub":"\ud800"}`, "{\"sub\":\"\xff\"}",
		`["\\ud800"]`, `"\uDBFF\uDFFF"`, `"\ufffd"`, "\"\xef\xbf\xbd\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !validJSONText(b) || !json.Valid(b) {
			return
		}
		if bytes.Contains(b, []byte("\xef\xbf\xbd")) || bytes.Contains(bytes.ToLower(b), []byte("ufffd")) {
			return // a replacement character the input asked for
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("json.Valid but Unmarshal fails: %v", err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if strings.ContainsRune(x, utf8.RuneError) {
					t.Fatalf("validJSONText passed %q, which decodes to %q", b, x)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
	})
}

// TestIdentityWithoutControlCharacters: a value no identity header can
// carry would be dropped on the way upstream (an authenticated request
// without its subject or groups); the token is refused instead.
func TestIdentityWithoutControlCharacters(t *testing.T) {
	k := keys()
	fx := newFixture(t, func(p *Provider) {
		p.Mapping = Mapping{Groups: "groups", Roles: "roles", Claims: map[string]string{"email": "email", "tags": "tags"}}
	})
	for _, tc := range []struct {
		name   string
		change map[string]any
		ok     bool
	}{
		{"clean", map[string]any{"groups": []string{"staff", "suspended"}, "email": "a@example.com"}, true},
		{"tab allowed", map[string]any{"sub": "a\tb"}, true},
		{"newline in sub", map[string]any{"sub": "alice\r\nX-Auth-Roles: admin"}, false},
		{"NUL in sub", map[string]any{"sub": "alice\x00"}, false},
		{"DEL in client_id", map[string]any{"client_id": "c\x7f"}, false},
		{"control char in one group", map[string]any{"groups": []string{"staff", "suspended\x01"}}, false},
		{"control char in roles", map[string]any{"roles": "admin\n"}, false},
		{"control char in scope", map[string]any{"scope": "read\x01write"}, false},
		{"vertical tab separates scopes", map[string]any{"scope": "read\x0bwrite"}, true},
		{"control char in an extra claim", map[string]any{"email": "a@example.com\r\n"}, false},
		{"control char in an extra array claim", map[string]any{"tags": []any{"x", "y\x1b"}}, false},
		{"control char in an unmapped claim", map[string]any{"note": "x\ny"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fx.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, tc.change)))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && reasonOf(err) != authn.ReasonMalformed:
				t.Fatalf("err = %v, want token_malformed", err)
			}
		})
	}
}

// TestDuplicateMemberNames: a header or claims set that names a member
// twice is refused (RFC 7519 section 4 allows refusing or keeping the last;
// a backend reading the first would see another identity than the one
// checked).
func TestDuplicateMemberNames(t *testing.T) {
	fx := newFixture(t, nil)
	const rsHeader = `{"alg":"RS256","kid":"rsa"}`
	c := claims(issA, nil)
	base := fmt.Sprintf(`"iss":%q,"aud":%q,"exp":%d,"iat":%d,"nbf":%d`, c["iss"], c["aud"], c["exp"], c["iat"], c["nbf"])
	for _, tc := range []struct {
		name, header, payload string
		ok                    bool
	}{
		{"no duplicates", rsHeader, `{` + base + `,"sub":"alice","realm_access":{"roles":["a"]},"x":{"sub":"y"}}`, true},
		{"same name in different objects", rsHeader, `{` + base + `,"sub":"alice","o":{"sub":"bob","o":{"sub":"carol"}},"p":[{"sub":1},{"sub":2}]}`, true},
		{"name equal to a value", rsHeader, `{` + base + `,"sub":"sub","note":"sub:"}`, true},
		{"colon inside a string value", rsHeader, `{` + base + `,"sub":"a","k":"sub" , "z":"\":\""}`, true},
		{"duplicate sub", rsHeader, `{` + base + `,"sub":"alice","sub":"admin"}`, false},
		{"duplicate iss", rsHeader, `{` + base + `,"sub":"alice","iss":"https://evil.example"}`, false},
		{"duplicate with an escaped name", rsHeader, `{` + base + `,"sub":"alice","\u0073ub":"admin"}`, false},
		{"duplicate with whitespace before the colon", rsHeader, `{` + base + `,"sub" : "alice","sub"	:"admin"}`, false},
		{"duplicate nested role list", rsHeader, `{` + base + `,"sub":"alice","realm_access":{"roles":["a"],"roles":["admin"]}}`, false},
		{"duplicate inside an array element", rsHeader, `{` + base + `,"sub":"alice","l":[{"a":1,"a":2}]}`, false},
		{"duplicate kid in the header", `{"alg":"RS256","kid":"other","kid":"rsa"}`, `{` + base + `,"sub":"alice"}`, false},
		{"duplicate alg in the header", `{"alg":"HS256","alg":"RS256","kid":"rsa"}`, `{` + base + `,"sub":"alice"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := fx.v.Verify(context.Background(), signRS256Raw(t, tc.header, tc.payload))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatalf("accepted as %q", id.Subject)
			case !tc.ok && reasonOf(err) != authn.ReasonMalformed:
				t.Fatalf("reason %q, want token_malformed (%v)", reasonOf(err), err)
			}
		})
	}
}

// FuzzHasDuplicateKeys: whatever JSON object hasDuplicateKeys passes
// decodes to exactly as many members as it has names at the top level
// (encoding/json keeps the last duplicate, so a missed one shows up as a
// member lost), and the scanner never panics on any input.
func FuzzHasDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":2}`, `{"a":1,"a":2}`, `{"a":{"a":1}}`, `{"\u0061":1,"a":2}`, `{"a":"\"","a":1}`, `[{"a":1,"a":1}]`, `{"a"`, `"\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dup := hasDuplicateKeys(b)
		if !json.Valid(b) {
			return
		}
		var want, got int
		if !countMembers(b, &want) {
			return
		}
		var v map[string]json.RawMessage
		if json.Unmarshal(b, &v) != nil {
			return
		}
		got = len(v)
		if !dup && got != want {
			t.Fatalf("hasDuplicateKeys(%q) = false, but %d names decode to %d members", b, want, got)
		}
		if dup && got == want && !nestedDuplicate(b) {
			t.Fatalf("hasDuplicateKeys(%q) = true, but the top level has no duplicate and nothing nested does", b)
		}
	})
}

// countMembers counts the member names of the top-level object of b, with
// encoding/json's tokenizer; false if b is not an object.
func countMembers(b []byte, n *int) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the name
			return false
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
		*n++
	}
	return true
}

// nestedDuplicate reports whether a value nested in b's top-level object
// (at any depth) has a duplicate, using the scanner on each member value.
func nestedDuplicate(b []byte) bool {
	var v map[string]json.RawMessage
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	for _, raw := range v {
		if hasDuplicateKeys(raw) {
			return true
		}
	}
	return false
}
