package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// t0 is the tests' fixed clock.
var t0 = time.Unix(1_800_000_000, 0)

func fixedClock() time.Time { return t0 }

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce            sync.Once
	ecKey, ec384Key     *ecdsa.PrivateKey
	rsaKey, rsaSmallKey *rsa.PrivateKey
	edKey               ed25519.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaSmallKey, err = rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		if err != nil {
			panic(err)
		}
	})
}

const (
	testToken  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	testURL    = "https://api.example.com/v1/things"
	testMethod = "POST"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// goodClaims are the claims of a valid proof for testMethod testURL with
// testToken.
func goodClaims() map[string]any {
	return map[string]any{
		"jti": "e1j3V_bKic8-LAEB",
		"htm": testMethod,
		"htu": testURL,
		"iat": t0.Unix(),
		"ath": AccessTokenHash(testToken),
	}
}

// proofSpec describes a proof to sign. Header entries with a nil value
// are left out; "jwk" defaults to the public key, "typ" to dpop+jwt.
type proofSpec struct {
	alg    jose.SignatureAlgorithm
	key    any // signing key
	header map[string]any
	claims map[string]any
	// payload, when set, is signed instead of claims.
	payload []byte
}

// sign makes a compact proof with go-jose.
func sign(t testing.TB, p proofSpec) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	jwkSet, typSet := false, false
	for k, v := range p.header {
		switch k {
		case "jwk":
			jwkSet = true
		case "typ":
			typSet = true
		}
		if v != nil {
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	if !typSet {
		opts.WithType("dpop+jwt")
	}
	if !jwkSet {
		opts.EmbedJWK = true
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: p.alg, Key: p.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := p.claims
	if claims == nil {
		claims = goodClaims()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	if p.payload != nil {
		payload = p.payload
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// es256 signs claims with the P-256 test key.
func es256(t testing.TB, claims map[string]any) string {
	keys(t)
	return sign(t, proofSpec{alg: jose.ES256, key: ecKey, claims: claims})
}

// with returns goodClaims with k set to v (nil: removed).
func with(kv ...any) map[string]any {
	c := goodClaims()
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = kv[i+1]
		}
	}
	return c
}

// rawProof assembles a compact JWS from a header and claims as JSON text
// and a signature, none of them checked: for proofs go-jose refuses to
// make.
func rawProof(header, claims string, sig []byte) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(claims)) + "." + e(sig)
}

func jwkJSON(t testing.TB, key any) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func thumbprint(t testing.TB, key any) string {
	t.Helper()
	k := jose.JSONWebKey{Key: key}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedClock
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemoryReplayCache(1024, cfg.Now)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
