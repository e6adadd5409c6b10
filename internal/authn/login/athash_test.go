package login

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// TestCheckATHash: at_hash as another implementation (zitadel/oidc's
// ClaimHash, which OPs built on it put in their ID tokens) computes it
// matches for each hash family; another token, another value, or no
// string is refused.
func TestCheckATHash(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const access = "an-access-token.from-the-token-response"
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		key any
	}{
		{jose.RS256, rsaKey}, {jose.PS512, rsaKey}, {jose.ES384, ecKey}, {jose.EdDSA, edKey},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key}, nil)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte(`{"sub":"alice"}`))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			want, err := oidc.ClaimHash(access, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkATHash(raw, access, want); err != nil {
				t.Fatalf("matching at_hash refused: %v", err)
			}
			for name, c := range map[string]struct {
				access string
				claim  any
			}{
				"another access token": {access + "x", want},
				"another value":        {access, strings.ToUpper(want)},
				"empty":                {access, ""},
				"not a string":         {access, 42},
			} {
				if err := checkATHash(raw, c.access, c.claim); err == nil {
					t.Errorf("%s: accepted", name)
				}
			}
		})
	}
}
