package jwt

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, must
// return either an identity or a typed error, and must accept nothing but
// the valid tokens it was seeded with: no mutation of a token, however
// small, may verify (canonical base64 rules out respellings).
func FuzzVerify(f *testing.F) {
	k := keys()
	fx := newFixture(f, nil)
	seeds := []string{
		sign(f, jose.RS256, k.rsaA, "rsa", claims(issA, nil)),
		sign(f, jose.ES256, k.ec256, "ec", claims(issA, map[string]any{"aud": []string{"x", aud}})),
		sign(f, jose.EdDSA, k.ed, "ed", claims(issA, map[string]any{"scope": "a b", "realm_access": map[string]any{"roles": []string{"r"}}})),
		sign(f, jose.HS256, k.hmac, "hs", claims(issH, nil)),
		"", ".", "..", "....", "a.b.c", "eyJ.eyJ.", strings.Repeat(".", 100),
		rawToken(map[string]any{"alg": "none"}, claims(issA, nil), nil),
		sign(f, jose.RS256, k.attacker, "rsa", claims(issA, nil), func(so *jose.SignerOptions) { so.EmbedJWK = true }),
		sign(f, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": "x", "aud": 1.5, "sub": []any{nil}})),
		sign(f, jose.HS256, k.hmac, "", claims(issH, map[string]any{"exp": 1e300, "nbf": -1e300, "iat": 0})),
		// Signed, but not text (RFC 7519 section 7.2): never accepted.
		signRS256Raw(f, `{"alg":"RS256","kid":"rsa"}`, payloadWithSub("\"u\xff\"")),
		signRS256Raw(f, `{"alg":"RS256","kid":"rsa"}`, payloadWithSub(`"u\ud800"`)),
	}
	// The tokens we signed that verify; nothing else ever may.
	valid := map[string]bool{}
	for _, tok := range seeds {
		if _, err := fx.v.Verify(context.Background(), tok); err == nil {
			valid[tok] = true
		}
		f.Add(tok)
	}
	if len(valid) < 4 {
		f.Fatalf("only %d valid seeds", len(valid))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := fx.v.Verify(context.Background(), raw)
		if err == nil {
			if id == nil {
				t.Fatal("no identity and no error")
			}
			if !valid[raw] {
				t.Fatalf("accepted a token that was never signed: %q", raw)
			}
			return
		}
		if id != nil {
			t.Fatal("identity returned with an error")
		}
		var fail *authn.Failure
		var unavailable *authn.UnavailableError
		if !errors.As(err, &fail) && !errors.As(err, &unavailable) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if fail != nil && (fail.Reason == "" || fail.Description == "") {
			t.Fatalf("failure without reason or description: %+v", fail)
		}
		if len(raw) >= 32 && strings.Contains(err.Error(), raw) {
			t.Fatal("error repeats the token")
		}
	})
}

// FuzzAuthenticateBearer feeds arbitrary Authorization values to the
// authenticator alone on an allow_anonymous route. Whatever the value, a
// Bearer-scheme header never ends as anonymous access; "not mine" (a
// NotMineError) is answered only for a well-formed bearer value that is
// not in JWS or JWE compact form, carrying token_unsupported, or for a JWE
// (opaque to the gateway too), carrying token_encrypted;
// a plain ErrNoCredential only for another scheme.
func FuzzAuthenticateBearer(f *testing.F) {
	k := keys()
	fx := newFixture(f, nil)
	a, err := NewAuthenticator(fx.v, nil)
	if err != nil {
		f.Fatal(err)
	}
	chain := authn.Chain{Authenticators: []authn.Authenticator{a}, AllowAnonymous: true}
	for _, s := range []string{
		"Bearer " + sign(f, jose.RS256, k.rsaA, "rsa", claims(issA, nil)),
		"Bearer ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ", "Bearer gho_16C7e42F", "Bearer a.b+c.d",
		"Bearer a.b.c.d.e", "Bearer !!!", "Bearer", "bearer  x", "Basic dXNlcjpwYXNz", "Bearer\tx", "", "DPoP x.y.z", "dpop ory_at_x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{value}
		token, s, _ := splitToken(value)
		isBearer := s != schemeNone // Bearer or DPoP: never "no credential"
		id, err := a.Authenticate(r)
		var nm *authn.NotMineError
		switch {
		case errors.As(err, &nm):
			parts, clean := shape(token)
			jwe := parts == 5 && clean
			if !isBearer || !opaque(parts, clean, token) && !jwe {
				t.Fatalf("not mine for %q", value)
			}
			if want := map[bool]authn.Reason{false: authn.ReasonUnsupported, true: authn.ReasonEncrypted}[jwe]; nm.Failure == nil || nm.Failure.Reason != want {
				t.Fatalf("not mine without %s: %+v", want, nm.Failure)
			}
		case errors.Is(err, authn.ErrNoCredential):
			if isBearer {
				t.Fatalf("a Bearer value %q taken for no credential", value)
			}
		}
		if id != nil && err != nil {
			t.Fatal("identity and error")
		}
		cid, cerr := chain.Authenticate(r)
		if isBearer && (cerr == nil && cid == nil || cid != nil && cid.Method == identity.MethodAnonymous) {
			t.Fatalf("a Bearer value %q became anonymous access", value)
		}
		if errors.Is(cerr, authn.ErrNoCredential) {
			t.Fatal("the chain returned ErrNoCredential")
		}
	})
}
