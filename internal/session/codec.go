package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrInvalid is returned for any value that does not open or decode:
// tampered, truncated, oversized, sealed for another purpose or with a
// key no longer configured. Errors may wrap it with a reason for the
// operator's log; the reason is never a client's business (clients get
// a login redirect or a plain 401).
var ErrInvalid = errors.New("session: invalid")

// ErrTooLarge is returned by Seal for a plaintext over MaxPlaintext.
var ErrTooLarge = errors.New("session: value too large")

const (
	// KeySize is the size of every session key: 32 bytes (256 bits).
	KeySize = chacha20poly1305.KeySize

	// MaxPlaintext bounds what Seal accepts, and so what Open can
	// ever return.
	MaxPlaintext = 48 << 10

	// MaxSealed bounds the base64url value Open looks at; longer input
	// is refused before it is decoded.
	MaxSealed = (1+keyIDSize+nonceSize+MaxPlaintext+tagSize)*4/3 + 4

	version   = 1
	keyIDSize = 4
	nonceSize = chacha20poly1305.NonceSizeX // 24: random nonces never collide in practice
	tagSize   = chacha20poly1305.Overhead
	headSize  = 1 + keyIDSize + nonceSize
	maxKeys   = 16
)

// b64 is the only encoding of sealed values: base64url without padding,
// strict (one encoding per value, so no two strings open to the same
// bytes).
var b64 = base64.RawURLEncoding.Strict()

type codecKey struct {
	id   [keyIDSize]byte
	aead aeadCipher
}

// aeadCipher is the part of cipher.AEAD the codec uses.
type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// Codec seals and opens values (cookies, stored sessions) with
// XChaCha20-Poly1305 (golang.org/x/crypto). The first key seals; every
// key opens, so keys rotate by putting a new key first and dropping the
// old one once every value it sealed has expired. The purpose (the
// cookie name, or the store key) is bound as additional data, so a value
// cannot be moved from one cookie or key to another.
//
// A sealed value is base64url (no padding) of
//
//	version (1 byte, 1) | key id (4 bytes) | nonce (24 bytes) | ciphertext+tag
//
// where the key id is the first 4 bytes of SHA-256 over a fixed label
// and the key (it names the key, it does not weaken it), and the
// additional data is version | key id | purpose. A Codec is safe for
// concurrent use.
type Codec struct {
	keys []codecKey
}

// NewCodec returns a Codec for keys: at least one, at most 16, each
// exactly KeySize bytes, no two alike. keys[0] seals.
func NewCodec(keys [][]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: at least one key is required")
	}
	if len(keys) > maxKeys {
		return nil, fmt.Errorf("session: %d keys, at most %d", len(keys), maxKeys)
	}
	c := &Codec{keys: make([]codecKey, 0, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("session: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		id := keyID(k)
		for j, o := range c.keys {
			if o.id == id {
				if subtle.ConstantTimeCompare(k, keys[j]) == 1 {
					return nil, fmt.Errorf("session: key %d repeats key %d", i+1, j+1)
				}
				return nil, fmt.Errorf("session: keys %d and %d have the same key id; generate a new key", j+1, i+1)
			}
		}
		a, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i+1, err)
		}
		c.keys = append(c.keys, codecKey{id: id, aead: a})
	}
	return c, nil
}

func keyID(k []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte("gatehouse session key id\x00"))
	h.Write(k)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ParseKeys decodes key specs from config or the environment: each is
// base64 (standard or URL alphabet, padded or not) of exactly KeySize
// bytes. Errors name the key by position, never by value.
func ParseKeys(specs []string) ([][]byte, error) {
	if len(specs) == 0 {
		return nil, errors.New("session: at least one key is required")
	}
	keys := make([][]byte, 0, len(specs))
	for i, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("session: key %d is empty", i+1)
		}
		k, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("session: key %d is not base64 (standard or URL alphabet)", i+1)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("session: key %d decodes to %d bytes, want %d (generate one with `openssl rand -base64 32`)", i+1, len(k), KeySize)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.DecodeString(strings.TrimRight(s, "="))
}

// NewKey returns a fresh random key in the form ParseKeys reads
// (base64url, no padding).
func NewKey() (string, error) {
	var k [KeySize]byte
	if _, err := rand.Read(k[:]); err != nil {
		return "", fmt.Errorf("session: random key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(k[:]), nil
}

// Seal encrypts and authenticates plaintext for purpose with the first
// key. purpose must not be empty.
func (c *Codec) Seal(purpose string, plaintext []byte) (string, error) {
	if purpose == "" {
		return "", errors.New("session: seal needs a purpose")
	}
	if len(plaintext) > MaxPlaintext {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(plaintext), MaxPlaintext)
	}
	k := &c.keys[0]
	raw := make([]byte, headSize, headSize+len(plaintext)+tagSize)
	raw[0] = version
	copy(raw[1:], k.id[:])
	nonce := raw[1+keyIDSize : headSize]
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("session: random nonce: %w", err)
	}
	raw = k.aead.Seal(raw, nonce, plaintext, additionalData(raw[:1+keyIDSize], purpose))
	return b64.EncodeToString(raw), nil
}

// Open authenticates and decrypts a value Seal returned for the same
// purpose. Any failure is ErrInvalid (possibly wrapped with a reason
// for logs). It never panics and looks at no more than MaxSealed bytes.
func (c *Codec) Open(purpose, value string) ([]byte, error) {
	if purpose == "" {
		return nil, fmt.Errorf("%w: no purpose", ErrInvalid)
	}
	if len(value) > MaxSealed {
		return nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	if len(value) < b64.EncodedLen(headSize+tagSize) {
		return nil, fmt.Errorf("%w: too short", ErrInvalid)
	}
	raw, err := b64.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	if len(raw) < headSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrInvalid)
	}
	if raw[0] != version {
		return nil, fmt.Errorf("%w: unknown version", ErrInvalid)
	}
	var id [keyIDSize]byte
	copy(id[:], raw[1:1+keyIDSize])
	for i := range c.keys {
		k := &c.keys[i]
		if k.id != id {
			continue
		}
		ct := raw[headSize:]
		pt, err := k.aead.Open(ct[:0], raw[1+keyIDSize:headSize], ct, additionalData(raw[:1+keyIDSize], purpose))
		if err != nil {
			return nil, ErrInvalid
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w: unknown key id (a key removed while values it sealed were live?)", ErrInvalid)
}

// additionalData is version | key id | purpose. The purpose is last and
// the head has a fixed size, so no two (head, purpose) pairs collide.
func additionalData(head []byte, purpose string) []byte {
	ad := make([]byte, 0, len(head)+len(purpose))
	ad = append(ad, head...)
	return append(ad, purpose...)
}
