package keyset_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func publicJWK(t *testing.T, p *testidp.Provider) jose.JSONWebKey {
	t.Helper()
	kid, priv, alg := p.SigningKey()
	return jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

func pemBlock(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock(t, "PUBLIC KEY", der)
}

func certPEM(t *testing.T, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "testidp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock(t, "CERTIFICATE", der)
}

func TestStaticKeys(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			p := testidp.Start(t, testidp.WithAlgorithm(alg))
			_, priv, _ := p.SigningKey()
			jwk := publicJWK(t, p)
			jwkJSON, err := json.Marshal(jwk)
			if err != nil {
				t.Fatal(err)
			}
			setJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name    string
				data    []byte
				wantKID string
			}{
				{"JWK", jwkJSON, jwk.KeyID},
				{"JWK Set", setJSON, jwk.KeyID},
				{"PEM public key", pkixPEM(t, priv.Public()), ""},
				{"PEM certificate", certPEM(t, priv), ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					keys, err := keyset.LoadKeyFile(writeFile(t, tc.data))
					if err != nil {
						t.Fatalf("LoadKeyFile: %v", err)
					}
					if len(keys) != 1 || keys[0].KeyID != tc.wantKID || !keys[0].IsPublic() {
						t.Fatalf("keys = %+v", keys)
					}
					s := newSet(t, keyset.Config{Static: keys})
					if err := s.Ready(); err != nil {
						t.Fatalf("Ready: %v", err)
					}
					// The token names the provider's kid; PEM keys have none
					// and answer for it.
					if err := verifyToken(s, p.Mint(t, nil)); err != nil {
						t.Fatalf("verify: %v", err)
					}
					if err := verifyToken(s, p.MintWithHeaders(t, nil, map[string]any{"kid": nil})); err != nil {
						t.Fatalf("verify token without kid: %v", err)
					}
					if p.JWKSHits() != 0 {
						t.Fatal("a static set fetched the provider's JWKS")
					}
					h := s.Health()
					if h.Source != "static" || !h.Ready || h.Keys != 1 {
						t.Errorf("Health = %+v", h)
					}
				})
			}
		})
	}
}

func TestStaticUnknownKID(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	s := newSet(t, keyset.Config{Static: []jose.JSONWebKey{publicJWK(t, p)}})
	_, err := s.Lookup(context.Background(), "other")
	if !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("Lookup(other) = %v, want ErrUnknownKID", err)
	}
}

func TestHMACKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	key, err := keyset.HMACKey(secret, "hmac-1")
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 'X' // HMACKey copied it
	s := newSet(t, keyset.Config{Static: []jose.JSONWebKey{key}})

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256,
		Key: jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: "svc"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyToken(s, token); err != nil {
		t.Fatalf("HS256 token: %v", err)
	}

	for _, n := range []int{0, 16, 31} {
		if _, err := keyset.HMACKey(make([]byte, n), "k"); err == nil || !strings.Contains(err.Error(), "shorter") {
			t.Errorf("HMACKey(%d bytes) = %v, want refusal", n, err)
		}
	}
}

func TestLoadKeyFileRefuses(t *testing.T) {
	p := testidp.Start(t) // RS256
	_, priv, _ := p.SigningKey()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privJWK, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	octJWK, err := json.Marshal(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	encJWK := publicJWK(t, p)
	encJWK.Use = "enc"
	encJSON, err := json.Marshal(encJWK)
	if err != nil {
		t.Fatal(err)
	}
	public := pkixPEM(t, priv.Public())
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"PEM private key", pemBlock(t, "PRIVATE KEY", pkcs8), "private key"},
		{"PEM RSA private key", pemBlock(t, "RSA PRIVATE KEY", []byte("x")), "private key"},
		{"public then private", append(append([]byte{}, public...), pemBlock(t, "EC PRIVATE KEY", []byte("x"))...), "private key"},
		{"private JWK", privJWK, "private key"},
		{"private JWK in a set", []byte(`{"keys":[` + string(privJWK) + `]}`), "private key"},
		{"symmetric JWK", octJWK, "symmetric"},
		{"encryption JWK", encJSON, "use"},
		{"empty", []byte("  \n"), "empty"},
		{"empty set", []byte(`{"keys":[]}`), "no keys"},
		{"not a key", []byte("hello"), "neither"},
		{"trailing junk", append(append([]byte{}, public...), []byte("junk")...), "trailing"},
		{"bad JSON", []byte(`{"kty":`), "JSON"},
		{"unknown PEM", pemBlock(t, "OPENSSH KEY", []byte("x")), "unsupported"},
		{"broken certificate", pemBlock(t, "CERTIFICATE", []byte("x")), "CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := keyset.LoadKeyFile(writeFile(t, tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keyset: ") {
				t.Fatalf("LoadKeyFile = %d keys, %v; want an error mentioning %q", len(keys), err, tc.want)
			}
		})
	}
	if _, err := keyset.LoadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("LoadKeyFile of a missing file succeeded")
	}
	// Static private keys given directly are refused too.
	if _, err := keyset.New(keyset.Config{Static: []jose.JSONWebKey{{Key: priv, KeyID: "k"}}}); err == nil ||
		!strings.Contains(err.Error(), "private key") {
		t.Fatalf("New with a private static key = %v", err)
	}
}

func FuzzLoadKeyFile(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"a"}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"kty":"oct","k":"c2VjcmV0"}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := keyset.LoadKeyFile(writeFile(t, data))
		if err != nil {
			if len(keys) != 0 {
				t.Fatalf("keys returned with error %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if _, symmetric := k.Key.([]byte); symmetric || !k.IsPublic() || !k.Valid() {
				t.Fatalf("accepted a non-public or invalid key: %T", k.Key)
			}
		}
		// Whatever LoadKeyFile accepts, New must accept as static keys.
		if _, err := keyset.New(keyset.Config{Static: keys}); err != nil {
			t.Fatalf("New refused loaded keys: %v", err)
		}
	})
}
