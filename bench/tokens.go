package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// audience is what every benchmark token is for.
const audience = "bench-api"

// issuer is one signing identity: a key pair, the provider Gatehouse
// trusts it as, and the JWK Set file that carries its public key.
type issuer struct {
	alg    jose.SignatureAlgorithm
	name   string // the identity provider's name in the configuration
	iss    string
	signer jose.Signer
	jwks   string // path of the public JWK Set
}

// newIssuers makes one issuer per algorithm the harness measures, with keys
// of the sizes providers use: RSA 2048, P-256, Ed25519.
func newIssuers(dir string) ([]*issuer, error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var out []*issuer
	for _, k := range []struct {
		alg  jose.SignatureAlgorithm
		name string
		priv crypto.Signer
	}{
		{jose.RS256, "rs256", rsaKey},
		{jose.ES256, "es256", ecKey},
		{jose.EdDSA, "eddsa", edKey},
	} {
		kid := k.name + "-1"
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: kid}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, err
		}
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"}}}
		data, err := json.Marshal(set)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, k.name+".jwks.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
		out = append(out, &issuer{alg: k.alg, name: k.name, iss: "https://" + k.name + ".bench.invalid", signer: signer, jwks: path})
	}
	// The DPoP provider: the ES256 key under another issuer, so that only
	// its provider has DPoP on and the other scenarios are untouched.
	es := *out[1]
	es.name, es.iss = "dpop", "https://dpop.bench.invalid"
	return append(out, &es), nil
}

// claims are a typical access token's: subject, client, scopes, groups.
type claims struct {
	jwt.Claims
	Scope    string   `json:"scope"`
	ClientID string   `json:"client_id"`
	Groups   []string `json:"groups"`
}

// mint signs one access token valid for an hour; seq makes it unique.
func (is *issuer) mint(seq int, now time.Time) (string, error) {
	c := claims{
		Claims: jwt.Claims{
			Issuer:   is.iss,
			Subject:  fmt.Sprintf("user-%d", seq),
			Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(time.Hour)),
			ID:       fmt.Sprintf("%s-%d", is.name, seq),
		},
		Scope:    "orders:read orders:write",
		ClientID: "bench-client",
		Groups:   []string{"bench", "staff"},
	}
	return jwt.Signed(is.signer).Claims(c).Serialize()
}

// mintMany signs n distinct tokens on every core. It runs before a
// measurement starts, never during one.
func (is *issuer) mintMany(n int, first int) ([]string, error) {
	out := make([]string, n)
	now := time.Now()
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				tok, err := is.mint(first+i, now)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

// dpopClient is a DPoP client: its key pair, the access token bound to
// it, and the URL its proofs are for.
type dpopClient struct {
	signer jose.Signer
	token  string // "DPoP <token>": the Authorization header's value
	ath    string // base64url SHA-256 of the token
	htu    string
}

// boundClaims are an access token's claims with the RFC 9449 binding.
type boundClaims struct {
	claims
	Cnf struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// newDPoPClient makes a client key (P-256) and has is sign a token bound
// to it (cnf.jkt); htu is the URL Gatehouse sees.
func newDPoPClient(is *issuer, seq int, htu string) (*dpopClient, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, err
	}
	thumb, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var c boundClaims
	c.claims = claims{
		Claims: jwt.Claims{
			Issuer: is.iss, Subject: fmt.Sprintf("user-%d", seq), Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
			ID: fmt.Sprintf("%s-%d", is.name, seq),
		},
		Scope: "orders:read orders:write", ClientID: "bench-client", Groups: []string{"bench", "staff"},
	}
	c.Cnf.JKT = base64.RawURLEncoding.EncodeToString(thumb)
	tok, err := jwt.Signed(is.signer).Claims(c).Serialize()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(tok))
	return &dpopClient{signer: signer, token: "DPoP " + tok, ath: base64.RawURLEncoding.EncodeToString(sum[:]), htu: htu}, nil
}

// proofClaims are a DPoP proof's claims for one GET request.
type proofClaims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	IAT int64  `json:"iat"`
	ATH string `json:"ath"`
}

// proofs signs n proofs, each with a jti of its own, on every core. They
// are signed now: Gatehouse accepts them for max_age (60 s) plus the clock
// skew, so they are signed again for every phase. Each set is the
// Authorization and DPoP headers' values.
func (d *dpopClient) proofs(n int) ([][]string, error) {
	out := make([][]string, n)
	var prefix [8]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, err
	}
	iat := time.Now().Unix()
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p, err := jwt.Signed(d.signer).Claims(proofClaims{
					JTI: fmt.Sprintf("%x-%d", prefix, i), HTM: "GET", HTU: d.htu, IAT: iat, ATH: d.ath,
				}).Serialize()
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = []string{d.token, p}
			}
		})
	}
	wg.Wait()
	return out, firstErr
}
