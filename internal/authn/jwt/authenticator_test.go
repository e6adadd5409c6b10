package jwt

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestAuthenticatorHeaders(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	a, err := NewAuthenticator(f.v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Method() != identity.MethodJWT {
		t.Errorf("Method = %q", a.Method())
	}
	tok := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))
	bad := sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil))

	errNone := authn.ErrNoCredential
	for _, tc := range []struct {
		name    string
		values  []string
		wantErr error        // ErrNoCredential, or nil
		reason  authn.Reason // for a Failure
	}{
		{"no header", nil, errNone, ""},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, errNone, ""},
		{"other scheme starting with Bearer", []string{"BearerToken " + tok}, errNone, ""},
		{"two Basic headers", []string{"Basic a", "Basic b"}, errNone, ""},
		{"two headers, one Bearer", []string{"Basic a", "Bearer " + tok}, nil, authn.ReasonMalformed},
		{"two Bearer headers", []string{"Bearer " + tok, "Bearer " + tok}, nil, authn.ReasonMalformed},
		{"Bearer", []string{"Bearer " + tok}, nil, ""},
		{"lowercase bearer", []string{"bearer " + tok}, nil, ""},
		{"uppercase BEARER", []string{"BEARER " + tok}, nil, ""},
		{"several spaces", []string{"Bearer   " + tok}, nil, ""},
		{"Bearer without token", []string{"Bearer"}, nil, authn.ReasonMalformed},
		{"Bearer with spaces only", []string{"Bearer   "}, nil, authn.ReasonMalformed},
		{"Bearer with two tokens", []string{"Bearer " + tok + " " + tok}, nil, authn.ReasonMalformed},
		{"Bearer with a tab", []string{"Bearer " + tok + "\t"}, nil, authn.ReasonMalformed},
		{"Bearer, tab, token", []string{"Bearer\t" + tok}, nil, authn.ReasonMalformed},
		{"Bearer, comma, token", []string{"Bearer," + tok}, nil, authn.ReasonMalformed},
		{"Bearer, colon, token", []string{"Bearer:" + tok}, nil, authn.ReasonMalformed},
		{"bearer, vertical tab, token", []string{"bearer\v" + tok}, nil, authn.ReasonMalformed},
		{"Bearer then non-ASCII is another scheme", []string{"Bearer\u00e9 " + tok}, errNone, ""},
		{"Bearer with comma list", []string{"Bearer " + tok + ", Basic a"}, nil, authn.ReasonMalformed},
		{"Bearer with bad token", []string{"Bearer " + bad}, nil, authn.ReasonBadSignature},
		{"Bearer with garbage", []string{"Bearer !!!"}, nil, authn.ReasonMalformed},
		// An opaque token is presented but not this method's: a
		// NotMineError (so introspection may claim it) that carries the
		// token_unsupported failure the chain answers with if no method
		// does (never anonymous: see TestChainOpaqueBearer).
		{"Bearer with an opaque token", []string{"Bearer ory_at_abc123.def456"}, nil, authn.ReasonUnsupported},
		{"Bearer with a one-part opaque token", []string{"Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a"}, nil, authn.ReasonUnsupported},
		{"Bearer with three parts, not base64url", []string{"Bearer abc.d+f.g/h"}, nil, authn.ReasonUnsupported},
		{"Bearer with an opaque token over the JWT size limit", []string{"Bearer " + strings.Repeat("o", DefaultMaxTokenBytes+1)}, nil, authn.ReasonUnsupported},
		// A JWE is opaque to the gateway: not mine either (introspection
		// may claim it), refused as token_encrypted if nothing does.
		{"Bearer with five parts is a JWE, not mine", []string{"Bearer a.b.c.d.e"}, nil, authn.ReasonEncrypted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tc.values {
				r.Header.Add("Authorization", v)
			}
			id, err := a.Authenticate(r)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || id != nil {
					t.Fatalf("id = %v, err = %v, want %v", id, err, tc.wantErr)
				}
			case tc.reason == authn.ReasonUnsupported || tc.reason == authn.ReasonEncrypted:
				var nm *authn.NotMineError
				if !errors.As(err, &nm) || !errors.Is(err, authn.ErrNoCredential) || id != nil {
					t.Fatalf("id = %v, err = %v, want a NotMineError", id, err)
				}
				var fail *authn.Failure
				if errors.As(err, &fail) {
					t.Fatal("a NotMineError must not unwrap to a Failure")
				}
				if f := nm.Failure; f == nil || f.Reason != tc.reason || f.Method != identity.MethodJWT ||
					(tc.reason == authn.ReasonUnsupported && f.Description != "The bearer token is not a JWT; this route accepts only JWT access tokens.") {
					t.Fatalf("carried failure %+v", nm.Failure)
				}
				if strings.Contains(err.Error(), "ory_at_") || strings.Contains(err.Error(), "gho_") {
					t.Fatal("error repeats the token")
				}
			case tc.reason != "":
				var fail *authn.Failure
				if !errors.As(err, &fail) || fail.Reason != tc.reason || id != nil {
					t.Fatalf("id = %v, err = %v, want failure %q", id, err, tc.reason)
				}
				if errors.Is(err, authn.ErrNoCredential) {
					t.Fatal("a failure must not look like a missing credential")
				}
				if strings.Contains(err.Error(), tok) || strings.Contains(fail.Description, tok) {
					t.Fatal("error repeats the token")
				}
			default:
				if err != nil || id == nil || id.Subject != "user-1" {
					t.Fatalf("id = %v, err = %v", id, err)
				}
			}
		})
	}
}

func TestAuthenticatorProviders(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	onlyB, err := NewAuthenticator(f.v, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	req := func(tok string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}

	_, err = onlyB.Authenticate(req(sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))))
	var fail *authn.Failure
	if !errors.As(err, &fail) || fail.Reason != authn.ReasonProviderDenied || fail.Provider != "a" || fail.Issuer != issA {
		t.Fatalf("err = %v (%+v)", err, fail)
	}
	if n := f.srcA.calls.Load(); n != 0 {
		t.Errorf("provider a's keys were looked up %d times for a route that does not accept it", n)
	}
	id, err := onlyB.Authenticate(req(sign(t, jose.RS256, k.rsaB, "rsa-b", claims(issB, nil))))
	if err != nil || id.Provider != "b" {
		t.Fatalf("id = %v, err = %v", id, err)
	}
	// An issuer that is not configured at all is still unknown_issuer.
	_, err = onlyB.Authenticate(req(sign(t, jose.RS256, k.rsaA, "rsa", claims("https://x.example.com", nil))))
	if reasonOf(err) != authn.ReasonUnknownIssuer {
		t.Fatalf("err = %v", err)
	}

	if _, err := NewAuthenticator(f.v, []string{"b", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown provider: err = %v", err)
	}
	if _, err := NewAuthenticator(nil, nil); err == nil {
		t.Error("nil verifier accepted")
	}
}

func TestAuthenticatorUnavailable(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	f.srcA.err = errUnavailableForTest
	a, err := NewAuthenticator(f.v, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil)))
	id, err := a.Authenticate(r)
	var u *authn.UnavailableError
	if id != nil || !errors.As(err, &u) || u.Reason != authn.ReasonKeysUnavailable || !errors.Is(err, errUnavailableForTest) {
		t.Fatalf("id = %v, err = %v", id, err)
	}

	// Through a chain, an unavailable key set stops the chain: no
	// fall-through to anonymous.
	chain := &authn.Chain{Authenticators: []authn.Authenticator{a}, AllowAnonymous: true}
	if id, err := chain.Authenticate(r); id != nil || !errors.As(err, &u) {
		t.Fatalf("chain: id = %v, err = %v", id, err)
	}
}
