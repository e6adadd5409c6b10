package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"

	"github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA modulus accepted for verification
// (RFC 7518 section 3.3 requires 2048 bits).
const minRSABits = 2048

// keyFits reports whether k may verify a signature made with alg: the key's
// type (and curve, and size) must be the one alg is defined for, its use
// (if stated) must be "sig" and its alg (if stated) must be alg. This is what
// defeats algorithm confusion: an RSA public key is never used as an HMAC
// secret, a P-384 key never for ES256. Private keys are not used either: a
// key source that hands them out is misconfigured.
func keyFits(alg jose.SignatureAlgorithm, k *jose.JSONWebKey) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		pk, ok := k.Key.(*rsa.PublicKey)
		return ok && pk != nil && pk.N != nil && pk.N.BitLen() >= minRSABits
	case jose.ES256:
		return ecKeyOn(k.Key, elliptic.P256())
	case jose.ES384:
		return ecKeyOn(k.Key, elliptic.P384())
	case jose.ES512:
		return ecKeyOn(k.Key, elliptic.P521())
	case jose.EdDSA:
		pk, ok := k.Key.(ed25519.PublicKey)
		return ok && len(pk) == ed25519.PublicKeySize
	case jose.HS256:
		return hmacKey(k.Key, 32)
	case jose.HS384:
		return hmacKey(k.Key, 48)
	case jose.HS512:
		return hmacKey(k.Key, 64)
	}
	return false
}

func ecKeyOn(key any, curve elliptic.Curve) bool {
	pk, ok := key.(*ecdsa.PublicKey)
	return ok && pk != nil && pk.Curve == curve
}

// hmacKey: RFC 7518 section 3.2 requires a key at least as long as the hash.
func hmacKey(key any, minLen int) bool {
	b, ok := key.([]byte)
	return ok && len(b) >= minLen
}
