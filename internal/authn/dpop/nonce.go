package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Nonces issues and checks stateless server nonces (RFC 9449 section 8).
// A nonce is the number of the current time slot and an HMAC-SHA-256 of
// it under the server's secret; it is accepted during its slot and the
// next one, so a nonce lives between one and two Lifetimes. Every replica
// configured with the same secret accepts every other replica's nonces,
// with no shared state.
//
// Stateless nonces prove freshness, not uniqueness: a proof is still
// single-use only through the replay cache. What they add is that a
// client cannot make proofs for later use (a stolen signing oracle or
// pre-computed proofs stop working after two slots), and that freshness no
// longer rests on the client's clock alone.
type Nonces struct {
	// macs[0] signs; every one of them verifies (rotation of the secret).
	secrets  [][]byte
	lifetime int64 // nanoseconds per slot
	now      func() time.Time
}

// NonceConfig configures Nonces.
type NonceConfig struct {
	// Secrets: the first one makes new nonces; all of them are accepted,
	// so that a secret can be rotated without refusing the nonces clients
	// hold. Each one at least 32 bytes. Required.
	Secrets [][]byte
	// Lifetime is the slot length. Default 5 minutes; at least 10 seconds.
	Lifetime time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// DefaultNonceLifetime is NonceConfig.Lifetime's default.
const DefaultNonceLifetime = 5 * time.Minute

const (
	minNonceSecret   = 32
	minNonceLifetime = 10 * time.Second
	nonceMACBytes    = 16
	nonceBytes       = 8 + nonceMACBytes
	// nonceLen is the length of a nonce in base64url: 32 characters of
	// RFC 9449's NQCHAR.
	nonceLen = (nonceBytes*8 + 5) / 6
)

// nonceLabel separates these MACs from any other use of the secret.
var nonceLabel = []byte("gatehouse dpop nonce v1\x00")

// NewNonces checks cfg and returns Nonces.
func NewNonces(cfg NonceConfig) (*Nonces, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("authn/dpop: nonces need a secret")
	}
	for i, s := range cfg.Secrets {
		if len(s) < minNonceSecret {
			return nil, fmt.Errorf("authn/dpop: nonce secret %d has %d bytes, fewer than %d", i, len(s), minNonceSecret)
		}
	}
	lifetime := cfg.Lifetime
	switch {
	case lifetime == 0:
		lifetime = DefaultNonceLifetime
	case lifetime < minNonceLifetime:
		return nil, fmt.Errorf("authn/dpop: nonce lifetime %s is shorter than %s", lifetime, minNonceLifetime)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	n := &Nonces{lifetime: int64(lifetime), now: now}
	for _, s := range cfg.Secrets {
		n.secrets = append(n.secrets, append([]byte(nil), s...))
	}
	return n, nil
}

// Next returns a nonce for the DPoP-Nonce response header.
func (n *Nonces) Next() string {
	var b [nonceBytes]byte
	n.make(&b, n.slot(), n.secrets[0])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Valid reports whether s is a nonce of the current or the previous slot
// under one of the secrets. The MAC is compared in constant time.
func (n *Nonces) Valid(s string) bool {
	if len(s) != nonceLen {
		return false
	}
	var got [nonceBytes]byte
	if k, err := base64.RawURLEncoding.Strict().Decode(got[:], []byte(s)); err != nil || k != nonceBytes {
		return false
	}
	slot := binary.BigEndian.Uint64(got[:8])
	cur := n.slot()
	if slot != cur && slot+1 != cur {
		return false
	}
	var want [nonceBytes]byte
	ok := 0
	for _, secret := range n.secrets {
		n.make(&want, slot, secret)
		ok |= boolInt(hmac.Equal(want[8:], got[8:]))
	}
	return ok == 1
}

func (n *Nonces) slot() uint64 {
	t := n.now().UnixNano()
	if t < 0 {
		return 0
	}
	return uint64(t / n.lifetime)
}

// make writes slot and its MAC under secret to b.
func (n *Nonces) make(b *[nonceBytes]byte, slot uint64, secret []byte) {
	binary.BigEndian.PutUint64(b[:8], slot)
	m := hmac.New(sha256.New, secret)
	m.Write(nonceLabel)
	m.Write(b[:8])
	var sum [sha256.Size]byte
	copy(b[8:], m.Sum(sum[:0])[:nonceMACBytes])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// current reports whether s, a nonce Valid accepted, is of the current
// slot (not the previous one, which expires at the end of this slot).
func (n *Nonces) current(s string) bool {
	var got [nonceBytes]byte
	if k, err := base64.RawURLEncoding.Strict().Decode(got[:], []byte(s)); err != nil || k != nonceBytes {
		return false
	}
	return binary.BigEndian.Uint64(got[:8]) == n.slot()
}
