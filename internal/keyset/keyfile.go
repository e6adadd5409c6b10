package keyset

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// MinHMACSecretBytes is the shortest HMAC secret accepted: 256 bits, the
// output size of HS256. Shorter secrets can be brute-forced offline from a
// single token.
const MinHMACSecretBytes = 32

// maxKeyFileBytes bounds key files; real ones are a few kilobytes.
const maxKeyFileBytes = MaxBodyBytes

// LoadKeyFile reads public verification keys from a file holding a JWK, a
// JWK Set, or one or more PEM blocks ("PUBLIC KEY", "RSA PUBLIC KEY",
// "CERTIFICATE"). Private keys are refused, as are symmetric JWKs (use
// HMACKey for shared secrets): verification needs only public material, and
// a private key on a gateway is one more secret to leak. PEM keys carry no
// kid; a static Set serves kid-less keys for any kid (see Config.Static).
func LoadKeyFile(path string) ([]jose.JSONWebKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyset: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("keyset: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("keyset: %s: larger than %d bytes", path, maxKeyFileBytes)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyset: %s: %w", path, err)
	}
	return keys, nil
}

// parseKeyFile detects the format by its first non-space byte.
func parseKeyFile(data []byte) ([]jose.JSONWebKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty key file")
	}
	if trimmed[0] == '{' {
		return parseJWKFile(trimmed)
	}
	return parsePEMFile(trimmed)
}

// parseJWKFile parses a JWK or a JWK Set.
func parseJWKFile(data []byte) ([]jose.JSONWebKey, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	var raws []json.RawMessage
	if rawKeys, ok := probe["keys"]; ok {
		if err := json.Unmarshal(rawKeys, &raws); err != nil {
			return nil, fmt.Errorf("decoding JWK Set: %w", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("JWK Set has no keys")
		}
	} else {
		raws = []json.RawMessage{data}
	}
	if len(raws) > DefaultMaxKeys {
		return nil, fmt.Errorf("%d keys exceed the limit of %d", len(raws), DefaultMaxKeys)
	}
	keys := make([]jose.JSONWebKey, 0, len(raws))
	for i, raw := range raws {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if err := checkPublicJWK(k); err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.KeyID, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// checkPublicJWK accepts valid public asymmetric signature keys.
func checkPublicJWK(k jose.JSONWebKey) error {
	if _, ok := k.Key.([]byte); ok {
		return errors.New("symmetric key refused; configure an HMAC secret instead of a key file")
	}
	if !k.IsPublic() {
		return errors.New("private key refused; only the public key is needed to verify signatures")
	}
	if !k.Valid() {
		return errors.New("invalid key")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q is not \"sig\"", k.Use)
	}
	if !strongEnough(k) {
		return fmt.Errorf("RSA key shorter than %d bits refused", minRSABits)
	}
	return nil
}

// minRSABits is the smallest RSA modulus accepted for verification.
const minRSABits = 2048

// strongEnough refuses RSA keys below minRSABits: a signature made with a
// short key can be forged by whoever factors it.
func strongEnough(k jose.JSONWebKey) bool {
	if pub, ok := k.Key.(*rsa.PublicKey); ok {
		return pub.N.BitLen() >= minRSABits
	}
	return true
}

// parsePEMFile parses every PEM block; anything else in the file is an
// error rather than silently ignored.
func parsePEMFile(data []byte) ([]jose.JSONWebKey, error) {
	var keys []jose.JSONWebKey
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(keys) == 0 {
				return nil, errors.New("neither JSON (JWK) nor PEM")
			}
			return nil, errors.New("trailing data after the last PEM block")
		}
		if len(keys) >= DefaultMaxKeys {
			return nil, fmt.Errorf("more than %d keys", DefaultMaxKeys)
		}
		k, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", len(keys)+1, block.Type, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parsePEMBlock(block *pem.Block) (jose.JSONWebKey, error) {
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return jose.JSONWebKey{}, errors.New("private key refused; only the public key is needed to verify signatures")
	}
	var (
		pub   any
		certs []*x509.Certificate
		err   error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub, certs = cert.PublicKey, []*x509.Certificate{cert}
		}
	default:
		return jose.JSONWebKey{}, errors.New("unsupported PEM block type")
	}
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return jose.JSONWebKey{}, fmt.Errorf("unsupported public key type %T", pub)
	}
	k := jose.JSONWebKey{Key: pub, Use: "sig", Certificates: certs}
	if err := checkPublicJWK(k); err != nil {
		return jose.JSONWebKey{}, err
	}
	return k, nil
}

// HMACKey wraps a shared secret for HS256/384/512 verification. Secrets
// shorter than MinHMACSecretBytes are refused. The secret is copied.
func HMACKey(secret []byte, kid string) (jose.JSONWebKey, error) {
	if len(secret) < MinHMACSecretBytes {
		return jose.JSONWebKey{}, fmt.Errorf("keyset: HMAC secret of %d bytes is shorter than the minimum of %d", len(secret), MinHMACSecretBytes)
	}
	return jose.JSONWebKey{Key: slices.Clone(secret), KeyID: kid, Use: "sig"}, nil
}
