package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// The real key set (JWKS fetching, caching, rate limits) and a real OpenID
// Provider are tested in internal/keyset and the gateway tests; here a tiny
// in-memory key source is enough to exercise every verification path.

// fakeKeys is a KeySource over a fixed list of keys.
type fakeKeys struct {
	keys  []jose.JSONWebKey
	err   error
	calls atomic.Int64
}

func (f *fakeKeys) Lookup(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	if kid == "" {
		return f.keys, nil
	}
	var out []jose.JSONWebKey
	for _, k := range f.keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", keyset.ErrUnknownKID, kid)
	}
	return out, nil
}

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsaA, rsaB, rsaMix, attacker *rsa.PrivateKey
	rsa1024                      *rsa.PrivateKey
	ec256, ec384                 *ecdsa.PrivateKey
	ed                           ed25519.PrivateKey
	hmac                         []byte
}

var keys = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{hmac: []byte("0123456789abcdef0123456789abcdef-hmac-secret")}
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsaA, &k.rsaB, &k.rsaMix, &k.attacker} {
		*p, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
	}
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

const (
	issA   = "https://a.example.com"
	issB   = "https://b.example.com"
	issH   = "https://h.example.com"
	issMix = "https://mix.example.com"
	issWk  = "https://weak.example.com"
	aud    = "https://api.example.com"
)

// testNow is the injected clock of every test.
var testNow = time.Unix(1_800_000_000, 0)

func pub(key any, kid string) jose.JSONWebKey {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid}
	case *ecdsa.PrivateKey:
		return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid}
	case ed25519.PrivateKey:
		return jose.JSONWebKey{Key: k.Public().(ed25519.PublicKey), KeyID: kid}
	case []byte:
		return jose.JSONWebKey{Key: k, KeyID: kid}
	}
	panic(fmt.Sprintf("pub: %T", key))
}

// fixture is a verifier over several providers, with their key sources.
type fixture struct {
	v                        *Verifier
	srcA, srcB, srcH, srcMix *fakeKeys
}

func newFixture(t testing.TB, tweak func(p *Provider)) *fixture {
	t.Helper()
	k := keys()
	f := &fixture{
		srcA: &fakeKeys{keys: []jose.JSONWebKey{
			pub(k.rsaA, "rsa"), pub(k.ec256, "ec"), pub(k.ec384, "ec384"), pub(k.ed, "ed"),
		}},
		srcB:   &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaB, "rsa-b")}},
		srcH:   &fakeKeys{keys: []jose.JSONWebKey{pub(k.hmac, "hs")}},
		srcMix: &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaMix, "rsa-mix")}},
	}
	a := Provider{
		Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: f.srcA,
		ClockSkew: 30 * time.Second, MaxLifetime: time.Hour,
	}
	if tweak != nil {
		tweak(&a)
	}
	providers := []Provider{
		a,
		{Name: "b", Issuer: issB, Audiences: []string{aud}, Keys: f.srcB},
		{Name: "h", Issuer: issH, Audiences: []string{aud}, Keys: f.srcH, Algorithms: []jose.SignatureAlgorithm{jose.HS256}},
		{Name: "mix", Issuer: issMix, Audiences: []string{aud}, Keys: f.srcMix, Algorithms: []jose.SignatureAlgorithm{jose.RS256, jose.HS256}},
		{Name: "weak", Issuer: issWk, Audiences: []string{aud}, Keys: &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsa1024, "weak")}}},
	}
	v, err := NewVerifier(providers, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

// claims returns valid claims for issuer iss, with changes applied (a nil
// value deletes the claim).
func claims(iss string, changes map[string]any) map[string]any {
	c := map[string]any{
		"iss": iss,
		"sub": "user-1",
		"aud": aud,
		"exp": testNow.Add(5 * time.Minute).Unix(),
		"iat": testNow.Add(-time.Minute).Unix(),
		"nbf": testNow.Add(-time.Minute).Unix(),
		"jti": "jti-1",
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with go-jose. Options may add headers.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	so := &jose.SignerOptions{}
	for _, o := range opts {
		o(so)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, so)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func header(k jose.HeaderKey, v any) func(*jose.SignerOptions) {
	return func(so *jose.SignerOptions) { so.WithHeader(k, v) }
}

func b64(v any) string {
	var b []byte
	switch t := v.(type) {
	case []byte:
		b = t
	case string:
		b = []byte(t)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// rawToken assembles a token without go-jose, for what go-jose will not
// sign (alg none, mismatched keys).
func rawToken(h map[string]any, c any, sig []byte) string {
	return b64(h) + "." + b64(c) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func reasonOf(err error) authn.Reason {
	var f *authn.Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	var u *authn.UnavailableError
	if errors.As(err, &u) {
		return u.Reason
	}
	return ""
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var errUnavailableForTest = fmt.Errorf("%w: provider unreachable", keyset.ErrUnavailable)
