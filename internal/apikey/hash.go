package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// MinPepperLen is the shortest pepper NewHasher accepts: the HMAC-SHA-256
// key must carry at least 256 bits.
const MinPepperLen = 32

// Hash schemes reported by Hasher.Scheme.
const (
	SchemeHMACSHA256 = "hmac-sha256"
	SchemeSHA256     = "sha256"
)

// ErrInvalidPepper reports a pepper that NewHasher refuses.
var ErrInvalidPepper = errors.New("apikey: invalid pepper")

// Hasher computes the lookup hash under which a key is stored and found.
//
// Keys carry 256 bits from crypto/rand, so no slow password hash (bcrypt,
// argon2) is needed: nobody can enumerate 2^256 candidates, and a fast hash
// keeps lookups cheap on the request path. With a pepper (a server-side
// secret kept outside the database, at least 32 bytes) the hash is
// HMAC-SHA-256 keyed with it, so a stolen database alone cannot even be used
// to test candidate keys offline (for example keys leaked elsewhere, or
// keys from a weakened generator). Without one it is plain SHA-256.
//
// Security effect of changing the scheme or the pepper: every stored hash
// stops matching and every key stops working. Rotate the pepper only
// together with re-issuing all keys.
//
// A nil *Hasher hashes with plain SHA-256. Safe for concurrent use.
type Hasher struct {
	pepper []byte
	pool   sync.Pool // of hash.Hash (HMAC with pepper); avoids re-keying per call
}

// NewHasher returns a Hasher keyed with pepper. An empty pepper selects
// plain SHA-256; otherwise the pepper must be at least MinPepperLen bytes.
// The pepper is copied.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) == 0 {
		return &Hasher{}, nil
	}
	if len(pepper) < MinPepperLen {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrInvalidPepper, len(pepper), MinPepperLen)
	}
	h := &Hasher{pepper: append([]byte(nil), pepper...)}
	h.pool.New = func() any { return hmac.New(sha256.New, h.pepper) }
	return h, nil
}

// Hash returns the 32-byte lookup hash of key.
func (h *Hasher) Hash(key string) []byte {
	if h == nil || len(h.pepper) == 0 {
		sum := sha256.Sum256([]byte(key))
		return sum[:]
	}
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	_, _ = m.Write([]byte(key)) // hash.Hash.Write never fails
	out := m.Sum(make([]byte, 0, sha256.Size))
	h.pool.Put(m)
	return out
}

// Scheme names the hash function: "hmac-sha256" with a pepper, "sha256"
// without. Operators can log it to confirm which scheme is active (never the
// pepper).
func (h *Hasher) Scheme() string {
	if h == nil || len(h.pepper) == 0 {
		return SchemeSHA256
	}
	return SchemeHMACSHA256
}
