package jwt

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestVerifyAlgorithms(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name  string
		token string
		iss   string
	}{
		{"RS256", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil)), issA},
		{"RS512", sign(t, jose.RS512, k.rsaA, "rsa", claims(issA, nil)), issA},
		{"PS256", sign(t, jose.PS256, k.rsaA, "rsa", claims(issA, nil)), issA},
		{"ES256", sign(t, jose.ES256, k.ec256, "ec", claims(issA, nil)), issA},
		{"ES384", sign(t, jose.ES384, k.ec384, "ec384", claims(issA, nil)), issA},
		{"EdDSA", sign(t, jose.EdDSA, k.ed, "ed", claims(issA, nil)), issA},
		{"HS256 explicitly allowed", sign(t, jose.HS256, k.hmac, "hs", claims(issH, nil)), issH},
		{"no kid: every key of the right type is tried", sign(t, jose.ES256, k.ec256, "", claims(issA, nil)), issA},
		{"provider B", sign(t, jose.RS256, k.rsaB, "rsa-b", claims(issB, nil)), issB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.v.Verify(context.Background(), tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != "user-1" || id.Issuer != tc.iss || id.Method != identity.MethodJWT || id.CredentialID != "jti-1" {
				t.Errorf("identity = %+v", id)
			}
			if !id.ExpiresAt.Equal(testNow.Add(5 * time.Minute)) {
				t.Errorf("ExpiresAt = %v", id.ExpiresAt)
			}
		})
	}
}

func TestVerifyIdentity(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	c := claims(issA, map[string]any{
		"client_id": "client-1", "azp": "ignored", "scope": "read write  admin",
	})
	tok := sign(t, jose.RS256, k.rsaA, "rsa", c)
	id, err := f.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	iat := time.Unix(c["iat"].(int64), 0)
	want := identity.Identity{
		Subject: "user-1", Issuer: issA, Provider: "a", Method: identity.MethodJWT, CredentialID: "jti-1",
		ClientID: "client-1", Scopes: []string{"read", "write", "admin"}, ExpiresAt: testNow.Add(5 * time.Minute),
		// For the revocation list: iat, and the token's SHA-256.
		IssuedAt: iat, TokenHash: sha256.Sum256([]byte(tok)),
	}
	if got := *id; !equalIdentity(got, want) {
		t.Errorf("identity\n got %+v\nwant %+v", got, want)
	}
}

func TestAudienceForms(t *testing.T) {
	k := keys()
	f := newFixture(t, func(p *Provider) { p.Audiences = []string{"first", aud} })
	for _, tc := range []struct {
		name string
		aud  any
		ok   bool
	}{
		{"string", aud, true},
		{"array with ours", []string{"x", aud}, true},
		{"array of one", []string{"first"}, true},
		{"array without ours", []string{"x", "y"}, false},
		{"empty array", []string{}, false},
		{"array of non-strings", []any{1, true, nil}, false},
		{"empty string", "", false},
		{"case differs", strings.ToUpper(aud), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": tc.aud})))
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && reasonOf(err) != authn.ReasonAudience {
				t.Fatalf("err = %v, want audience_mismatch", err)
			}
		})
	}
}

// TestAudienceClaim: aud is required by default, even when another claim
// holds an accepted value; a provider configured with AudienceClaim (Amazon
// Cognito: client_id) checks that claim instead, and only that one.
func TestAudienceClaim(t *testing.T) {
	k := keys()
	def := newFixture(t, nil)
	cognito := newFixture(t, func(p *Provider) { p.Audiences = []string{"app-client-1"}; p.AudienceClaim = "client_id" })
	for _, tc := range []struct {
		name   string
		fx     *fixture
		change map[string]any
		want   authn.Reason // "" = accepted
	}{
		{"default: no aud refused", def, map[string]any{"aud": nil, "client_id": aud}, authn.ReasonMissingClaim},
		{"default: aud accepted", def, nil, ""},
		{"client_id: accepted without aud", cognito, map[string]any{"aud": nil, "client_id": "app-client-1"}, ""},
		{"client_id: another client refused", cognito, map[string]any{"aud": nil, "client_id": "app-client-2"}, authn.ReasonAudience},
		{"client_id: missing refused", cognito, map[string]any{"aud": nil}, authn.ReasonMissingClaim},
		{"client_id: aud alone does not do", cognito, map[string]any{"aud": "app-client-1"}, authn.ReasonMissingClaim},
		{"client_id: not a string refused", cognito, map[string]any{"aud": nil, "client_id": 7}, authn.ReasonAudience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.fx.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, tc.change)))
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}

// TestClockSkew checks the exact boundaries of exp, nbf and iat with a
// 30s leeway and an injected clock.
func TestClockSkew(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	const skew = 30 * time.Second
	at := func(d time.Duration) json.Number {
		return json.Number(formatSeconds(testNow.Add(d)))
	}
	for _, tc := range []struct {
		name    string
		changes map[string]any
		want    authn.Reason
	}{
		{"exp exactly at now-skew", map[string]any{"exp": at(-skew), "iat": at(-time.Minute)}, ""},
		{"exp one second before", map[string]any{"exp": at(-skew - time.Second), "iat": at(-time.Minute)}, authn.ReasonExpired},
		{"exp fractional just before", map[string]any{"exp": at(-skew - time.Millisecond), "iat": at(-time.Minute)}, authn.ReasonExpired},
		{"exp fractional just after", map[string]any{"exp": at(-skew + 500*time.Millisecond), "iat": at(-time.Minute)}, ""},
		{"exp now", map[string]any{"exp": at(0)}, ""},
		{"nbf exactly at now+skew", map[string]any{"nbf": at(skew)}, ""},
		{"nbf one second after", map[string]any{"nbf": at(skew + time.Second)}, authn.ReasonNotYetValid},
		{"iat exactly at now+skew", map[string]any{"iat": at(skew), "nbf": nil}, ""},
		{"iat one second after", map[string]any{"iat": at(skew + time.Second), "nbf": nil}, authn.ReasonIssuedInFuture},
		{"lifetime exactly the maximum", map[string]any{"iat": at(-time.Minute), "exp": at(time.Hour - time.Minute)}, ""},
		{"lifetime one second over", map[string]any{"iat": at(-time.Minute), "exp": at(time.Hour - time.Minute + time.Second)}, authn.ReasonLifetime},
		{"exp huge", map[string]any{"exp": json.Number("1e300"), "iat": nil}, authn.ReasonMissingClaim},
		{"exp huge integer, no lifetime limit", map[string]any{"exp": json.Number("99999999999999999999999")}, authn.ReasonLifetime},
		{"exp negative", map[string]any{"exp": json.Number("-1e300")}, authn.ReasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, tc.changes)))
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tc.want, err)
			}
		})
	}

	// Without a leeway and a lifetime limit, the boundaries are exact.
	strict := newFixture(t, func(p *Provider) { p.ClockSkew, p.MaxLifetime = 0, 0 })
	for _, tc := range []struct {
		exp  time.Duration
		want authn.Reason
	}{{0, ""}, {-time.Second, authn.ReasonExpired}, {100 * 365 * 24 * time.Hour, ""}} {
		_, err := strict.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": at(tc.exp)})))
		if got := reasonOf(err); got != tc.want {
			t.Errorf("exp now%+v: reason = %q, want %q", tc.exp, got, tc.want)
		}
	}
}

func formatSeconds(t time.Time) string {
	s := float64(t.UnixNano()) / 1e9
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRequiredTypeAndClaims(t *testing.T) {
	k := keys()
	f := newFixture(t, func(p *Provider) {
		p.RequiredType = "at+jwt"
		p.RequiredClaims = []string{"client_id", "realm_access.roles"}
		p.ClaimValues = map[string][]string{
			"tenant":         {"t1", "t2"},
			"amr":            {"mfa"},
			"email_verified": {"true"},
		}
	})
	base := map[string]any{
		"client_id": "c", "realm_access": map[string]any{"roles": []string{"r"}},
		"tenant": "t2", "amr": []string{"pwd", "mfa"}, "email_verified": true,
	}
	with := func(changes map[string]any) map[string]any {
		c := claims(issA, base)
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	typ := func(v string) func(*jose.SignerOptions) {
		return func(so *jose.SignerOptions) { so.WithType(jose.ContentType(v)) }
	}
	for _, tc := range []struct {
		name  string
		token string
		want  authn.Reason
	}{
		{"all present", sign(t, jose.RS256, k.rsaA, "rsa", with(nil), typ("at+jwt")), ""},
		{"typ with application/ prefix and other case", sign(t, jose.RS256, k.rsaA, "rsa", with(nil), typ("application/AT+JWT")), ""},
		{"typ JWT", sign(t, jose.RS256, k.rsaA, "rsa", with(nil), typ("JWT")), authn.ReasonTyp},
		{"typ missing", sign(t, jose.RS256, k.rsaA, "rsa", with(nil)), authn.ReasonTyp},
		{"typ not a string", sign(t, jose.RS256, k.rsaA, "rsa", with(nil), header("typ", 1)), authn.ReasonTyp},
		{"required claim missing", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"client_id": nil}), typ("at+jwt")), authn.ReasonMissingClaim},
		{"required nested claim missing", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"realm_access": map[string]any{}}), typ("at+jwt")), authn.ReasonMissingClaim},
		{"claim value wrong", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"tenant": "t3"}), typ("at+jwt")), authn.ReasonClaimValue},
		{"claim value missing", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"tenant": nil}), typ("at+jwt")), authn.ReasonMissingClaim},
		{"claim value case differs", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"tenant": "T1"}), typ("at+jwt")), authn.ReasonClaimValue},
		{"array claim without value", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"amr": []string{"pwd"}}), typ("at+jwt")), authn.ReasonClaimValue},
		{"boolean claim false", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"email_verified": false}), typ("at+jwt")), authn.ReasonClaimValue},
		{"boolean claim as string", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"email_verified": "true"}), typ("at+jwt")), ""},
		{"object claim", sign(t, jose.RS256, k.rsaA, "rsa", with(map[string]any{"tenant": map[string]any{"t1": true}}), typ("at+jwt")), authn.ReasonClaimValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), tc.token)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}

func TestProviderTokenSize(t *testing.T) {
	k := keys()
	f := newFixture(t, func(p *Provider) { p.MaxTokenBytes = 600 })
	big := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"pad": strings.Repeat("x", 600)}))
	if _, err := f.v.Verify(context.Background(), big); reasonOf(err) != authn.ReasonTooLarge {
		t.Fatalf("err = %v, want token_too_large", err)
	}
	if f.srcA.calls.Load() != 0 {
		t.Error("keys were looked up for an oversized token")
	}
	// Another provider's larger limit still applies to its own tokens.
	if _, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaB, "rsa-b", claims(issB, map[string]any{"pad": strings.Repeat("x", 600)}))); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifierRejects(t *testing.T) {
	keys := &fakeKeys{}
	ok := func() Provider {
		return Provider{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: keys}
	}
	with := func(change func(*Provider)) []Provider {
		p := ok()
		change(&p)
		return []Provider{p}
	}
	for _, tc := range []struct {
		name      string
		providers []Provider
		want      string
	}{
		{"no providers", nil, "no identity providers"},
		{"alg none", with(func(p *Provider) { p.Algorithms = []jose.SignatureAlgorithm{jose.RS256, "none"} }), `"none"`},
		{"alg NONE", with(func(p *Provider) { p.Algorithms = []jose.SignatureAlgorithm{"NONE"} }), `"none"`},
		{"alg unknown", with(func(p *Provider) { p.Algorithms = []jose.SignatureAlgorithm{"RS1"} }), "unsupported algorithm"},
		{"alg from JWE", with(func(p *Provider) { p.Algorithms = []jose.SignatureAlgorithm{"RSA-OAEP"} }), "unsupported algorithm"},
		{"no name", with(func(p *Provider) { p.Name = "" }), "name is required"},
		{"no issuer", with(func(p *Provider) { p.Issuer = "" }), "issuer is required"},
		{"no audience", with(func(p *Provider) { p.Audiences = nil }), "audience"},
		{"empty audience", with(func(p *Provider) { p.Audiences = []string{""} }), "empty audience"},
		{"no keys", with(func(p *Provider) { p.Keys = nil }), "key source"},
		{"negative skew", with(func(p *Provider) { p.ClockSkew = -time.Second }), "negative"},
		{"negative size", with(func(p *Provider) { p.MaxTokenBytes = -1 }), "negative"},
		{"empty required claim", with(func(p *Provider) { p.RequiredClaims = []string{""} }), "required claim"},
		{"claim without values", with(func(p *Provider) { p.ClaimValues = map[string][]string{"tenant": nil} }), "claim values"},
		{"mapping without path", with(func(p *Provider) { p.Mapping.Claims = map[string]string{"x": ""} }), "claim mapping"},
		{"type only a prefix", with(func(p *Provider) { p.RequiredType = "application/" }), "required type"},
		{"duplicate name", []Provider{ok(), func() Provider { p := ok(); p.Issuer = issB; return p }()}, "used twice"},
		{"duplicate issuer", []Provider{ok(), func() Provider { p := ok(); p.Name = "b"; return p }()}, "same issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.providers, nil)
			if err == nil || v != nil {
				t.Fatalf("NewVerifier accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "authn/jwt: ") {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNewVerifierDefaults(t *testing.T) {
	v, err := NewVerifier([]Provider{{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: &fakeKeys{}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := v.byName["a"]
	if !equalStrings(algStrings(p.algs), []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}) {
		t.Errorf("default algorithms = %v", p.algs)
	}
	if p.maxBytes != DefaultMaxTokenBytes || v.maxBytes != DefaultMaxTokenBytes || p.subject != "sub" {
		t.Errorf("defaults: %+v", p)
	}
	if v.now == nil {
		t.Error("no default clock")
	}
}

// TestConfigNotAliased checks that the Verifier keeps its own copies of the
// configuration's slices.
func TestConfigNotAliased(t *testing.T) {
	k := keys()
	auds := []string{aud}
	v, err := NewVerifier([]Provider{{Name: "a", Issuer: issA, Audiences: auds, Keys: &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaA, "rsa")}}}}, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	auds[0] = "changed"
	if _, err := v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))); err != nil {
		t.Fatal(err)
	}
}

// TestKeySourceMisbehaving checks that keys the source should not have
// returned are not used.
func TestKeySourceMisbehaving(t *testing.T) {
	k := keys()
	for _, tc := range []struct {
		name string
		key  jose.JSONWebKey
		want authn.Reason
	}{
		{"key with another kid", pub(k.rsaA, "other"), authn.ReasonBadSignature},
		{"key without kid (PEM)", pub(k.rsaA, ""), ""},
		{"encryption key", func() jose.JSONWebKey { j := pub(k.rsaA, "rsa"); j.Use = "enc"; return j }(), authn.ReasonBadSignature},
		{"key bound to another alg", func() jose.JSONWebKey { j := pub(k.rsaA, "rsa"); j.Algorithm = "PS256"; return j }(), authn.ReasonBadSignature},
		{"key bound to this alg", func() jose.JSONWebKey { j := pub(k.rsaA, "rsa"); j.Algorithm = "RS256"; j.Use = "sig"; return j }(), ""},
		{"private key", jose.JSONWebKey{Key: k.rsaA, KeyID: "rsa"}, authn.ReasonBadSignature},
		{"nil key", jose.JSONWebKey{KeyID: "rsa"}, authn.ReasonBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &rawKeys{keys: []jose.JSONWebKey{tc.key}}
			v, err := NewVerifier([]Provider{{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: src}}, func() time.Time { return testNow })
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil)))
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason = %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}

// rawKeys returns its keys whatever kid is asked for.
type rawKeys struct{ keys []jose.JSONWebKey }

func (r *rawKeys) Lookup(context.Context, string) ([]jose.JSONWebKey, error) { return r.keys, nil }

// TestCandidateLimit checks that a token without kid costs at most
// maxCandidateKeys verifications.
func TestCandidateLimit(t *testing.T) {
	k := keys()
	var ks []jose.JSONWebKey
	for range maxCandidateKeys {
		ks = append(ks, pub(k.rsaB, ""))
	}
	ks = append(ks, pub(k.rsaA, ""))
	v, err := NewVerifier([]Provider{{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: &rawKeys{keys: ks}}}, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "", claims(issA, nil))); reasonOf(err) != authn.ReasonBadSignature {
		t.Fatalf("err = %v", err)
	}
}

// TestConcurrentVerify runs valid and invalid tokens from many goroutines;
// run with -race.
func TestConcurrentVerify(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	tokens := []struct {
		token string
		want  authn.Reason
	}{
		{sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil)), ""},
		{sign(t, jose.ES256, k.ec256, "ec", claims(issA, nil)), ""},
		{sign(t, jose.EdDSA, k.ed, "ed", claims(issA, nil)), ""},
		{sign(t, jose.HS256, k.hmac, "hs", claims(issH, nil)), ""},
		{sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil)), authn.ReasonBadSignature},
		{sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": "x"})), authn.ReasonAudience},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				tc := tokens[(g+i)%len(tokens)]
				_, err := f.v.Verify(context.Background(), tc.token)
				if got := reasonOf(err); got != tc.want {
					errs <- errors.New("reason " + string(got) + ", want " + string(tc.want))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func algStrings(a []jose.SignatureAlgorithm) []string {
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = string(x)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalIdentity(a, b identity.Identity) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
