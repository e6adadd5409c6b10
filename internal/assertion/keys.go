// Package assertion mints the gateway's signed identity assertions: a
// short-lived JWT, signed with the gateway's own key, that tells an
// upstream who the caller is in a form the upstream can verify (with the
// gateway's JWKS) instead of trusting a plain header
// (docs/identity-assertion.md).
//
// Three parts:
//
//   - Key: one signing key (ES256 or EdDSA), named by its RFC 7638
//     thumbprint, with the schedule on which it is published, signs, and
//     is removed;
//   - KeyRing: the keys of one gateway, from operator-provided files or
//     generated and kept in a Store shared by every replica, rotated on a
//     schedule with overlap; it publishes the JWKS;
//   - Minter: builds the claims from an identity.Identity, signs them with
//     the ring's current key (through go-jose), and caches the result per
//     claims for a bounded time.
//
// The package never hand-rolls JOSE: signing and serialisation are
// go-jose's.
package assertion

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithms the gateway signs with.
const (
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

// ErrNoSigningKey: no key may sign now (the ring has not loaded yet, or
// its store has been unreachable past the last key's signing period).
// Requests that need an assertion then fail closed.
var ErrNoSigningKey = errors.New("assertion: no signing key")

// Key is one of the gateway's signing keys and its schedule. A key is
// published from PublishAt (zero: always) until RemoveAt (zero: never),
// and may sign from SignFrom until SignUntil (zero: no end). Keys are
// immutable once in a ring.
type Key struct {
	// ID is the key's RFC 7638 JWK thumbprint (SHA-256, base64url), its
	// kid in the JWKS and in the assertions' headers.
	ID        string
	Algorithm string
	PublishAt time.Time
	SignFrom  time.Time
	SignUntil time.Time
	RemoveAt  time.Time

	private crypto.Signer
	signer  jose.Signer
	public  jose.JSONWebKey
}

// NewKey wraps a private key (*ecdsa.PrivateKey on P-256 for ES256,
// ed25519.PrivateKey for EdDSA) with its thumbprint and a go-jose signer.
// The schedule fields are left for the caller.
func NewKey(priv crypto.Signer) (*Key, error) {
	var alg string
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("assertion: an ECDSA key must be on P-256 (ES256)")
		}
		alg = ES256
	case ed25519.PrivateKey:
		alg = EdDSA
	default:
		return nil, fmt.Errorf("assertion: unsupported key type %T (want ECDSA P-256 or Ed25519)", priv)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("assertion: thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: priv, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion: signer: %w", err)
	}
	return &Key{ID: pub.KeyID, Algorithm: alg, private: priv, signer: signer, public: pub}, nil
}

// GenerateKey makes a fresh key for alg (ES256 or EdDSA).
func GenerateKey(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("assertion: unsupported algorithm %q (want ES256 or EdDSA)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("assertion: generate key: %w", err)
	}
	return NewKey(priv)
}

// withSchedule returns a copy of k with the given schedule.
func (k *Key) withSchedule(publish, from, until, remove time.Time) *Key {
	c := *k
	c.PublishAt, c.SignFrom, c.SignUntil, c.RemoveAt = publish, from, until, remove
	return &c
}

// published reports whether k is in the JWKS at now.
func (k *Key) published(now time.Time) bool {
	return !now.Before(k.PublishAt) && (k.RemoveAt.IsZero() || now.Before(k.RemoveAt))
}

// signs reports whether k may sign at now.
func (k *Key) signs(now time.Time) bool {
	return !now.Before(k.SignFrom) && (k.SignUntil.IsZero() || now.Before(k.SignUntil))
}

// LoadKeyFile reads a PEM private key (PKCS#8, or SEC 1 "EC PRIVATE KEY")
// for ES256 (P-256) or EdDSA (Ed25519).
func LoadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	return ParseKeyPEM(b)
}

// ParseKeyPEM parses the first private key block of a PEM document.
func ParseKeyPEM(b []byte) (*Key, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("assertion: no PEM private key found")
		}
		var (
			priv any
			err  error
		)
		switch blk.Type {
		case "PRIVATE KEY":
			priv, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			priv, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("assertion: parse %s: %w", blk.Type, err)
		}
		s, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("assertion: unsupported key type %T", priv)
		}
		return NewKey(s)
	}
}

// MarshalKeyPEM encodes k's private key as PKCS#8 PEM (tests, the
// operator's key files).
func MarshalKeyPEM(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Sealer encrypts private keys kept in a shared store (AES-256-GCM under
// a key derived from the operator's seal secret, the key id as
// additional data, so a sealed key cannot be moved under another id).
type Sealer struct{ aead cipher.AEAD }

// MinSealSecret is the shortest seal secret accepted, in bytes.
const MinSealSecret = 32

// NewSealer derives the sealing key from secret (at least MinSealSecret
// bytes of high-entropy material).
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < MinSealSecret {
		return nil, fmt.Errorf("assertion: the seal secret must be at least %d bytes", MinSealSecret)
	}
	k := sha256.Sum256(append([]byte("gatehouse identity assertion key seal v1\x00"), secret...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts k's private key (PKCS#8) for the store.
func (s *Sealer) Seal(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("assertion: seal: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(der)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("assertion: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, der, []byte(k.ID)), nil
}

// Open decrypts a sealed key and checks that it is the key named id.
func (s *Sealer) Open(id string, sealed []byte) (*Key, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("assertion: sealed key too short")
	}
	der, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("assertion: key %s does not open with this seal secret: %w", id, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("assertion: sealed key %s: %w", id, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("assertion: sealed key %s: unsupported type %T", id, priv)
	}
	k, err := NewKey(signer)
	if err != nil {
		return nil, err
	}
	if k.ID != id {
		return nil, fmt.Errorf("assertion: sealed key %s has thumbprint %s", id, k.ID)
	}
	return k, nil
}
