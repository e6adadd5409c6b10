package apikey

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
)

// DefaultPrefix is the key prefix used when none is configured.
const DefaultPrefix = "gate_live_"

// Key format constants. A key is
//
//	<prefix><body><checksum>
//
// where body is 256 bits from crypto/rand written in base62 over exactly
// BodyLen characters (left-padded with '0'), and checksum is the CRC-32
// (IEEE) of prefix+body written in base62 over exactly ChecksumLen
// characters. The base62 alphabet is 0-9, A-Z, a-z, in that order.
const (
	// MaxPrefixLen bounds the configurable prefix.
	MaxPrefixLen = 32
	// BodyLen is the number of base62 characters carrying the key's 256
	// random bits (62^43 > 2^256).
	BodyLen = 43
	// ChecksumLen is the number of base62 characters of the CRC-32 checksum
	// (62^6 > 2^32).
	ChecksumLen = 6
	// bodyBytes is the number of random bytes behind the body.
	bodyBytes = 32
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed reports a string that is not a well-formed key of the
// configured format: wrong prefix, wrong length, a character outside the
// alphabet, or a checksum that does not match. Check wraps it with the
// reason; the key itself never appears in the message.
var ErrMalformed = errors.New("apikey: malformed key")

// ErrInvalidPrefix reports a prefix that NewFormat refuses.
var ErrInvalidPrefix = errors.New("apikey: invalid key prefix")

// prefixPattern is the shape of a prefix: a lowercase word and an optional
// second one, each followed by an underscore ("gate_", "gate_live_",
// "acme_test_"). Underscores keep the prefix visually separate from the
// body and never occur in the body or checksum, so the boundary is
// unambiguous.
var prefixPattern = regexp.MustCompile(`^[a-z][a-z0-9]*_([a-z0-9]+_)?$`)

// Format generates and checks keys with a given prefix. The zero value uses
// DefaultPrefix. Build it with NewFormat so the prefix is validated once, at
// configuration time.
type Format struct {
	// Prefix starts every key; it identifies Gatehouse keys to secret
	// scanners and tells environments apart ("gate_live_", "gate_test_").
	// Empty means DefaultPrefix.
	Prefix string
}

// NewFormat validates prefix and returns the format that uses it. An empty
// prefix selects DefaultPrefix. A prefix must match
// ^[a-z][a-z0-9]*_([a-z0-9]+_)?$ and be at most MaxPrefixLen characters.
func NewFormat(prefix string) (Format, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validatePrefix(prefix); err != nil {
		return Format{}, err
	}
	return Format{Prefix: prefix}, nil
}

func validatePrefix(prefix string) error {
	if len(prefix) > MaxPrefixLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidPrefix, prefix, MaxPrefixLen)
	}
	if !prefixPattern.MatchString(prefix) {
		return fmt.Errorf("%w: %q does not match %s", ErrInvalidPrefix, prefix, prefixPattern)
	}
	return nil
}

func (f Format) prefix() string {
	if f.Prefix == "" {
		return DefaultPrefix
	}
	return f.Prefix
}

// Len is the length of every key of this format.
func (f Format) Len() int { return len(f.prefix()) + BodyLen + ChecksumLen }

// Generate returns a new key. It is the only function in Gatehouse that
// returns a key's plaintext: show it to its owner once and store only its
// hash (Hasher.Hash) and Hint.
func (f Format) Generate() (plaintext string, err error) {
	prefix := f.prefix()
	if err := validatePrefix(prefix); err != nil {
		return "", err
	}
	var raw [bodyBytes]byte
	if _, err := rand.Read(raw[:]); err != nil { // never fails since Go 1.24; kept for clarity
		return "", fmt.Errorf("apikey: reading random bytes: %w", err)
	}
	buf := make([]byte, len(prefix)+BodyLen+ChecksumLen)
	n := copy(buf, prefix)
	encodeBody(buf[n:n+BodyLen], &raw)
	clear(raw[:])
	encodeChecksum(buf[n+BodyLen:], crc32.ChecksumIEEE(buf[:n+BodyLen]))
	return string(buf), nil
}

// Check reports whether key is a well-formed key of this format: the right
// prefix, the right length, only base62 characters after the prefix, and a
// matching checksum. It does not consult any store, so typos and random
// strings are rejected before a lookup. The checksum comparison runs in
// constant time. Errors wrap ErrMalformed and name the reason, never the
// key.
func (f Format) Check(key string) error {
	prefix := f.prefix()
	if !strings.HasPrefix(key, prefix) {
		return fmt.Errorf("%w: wrong prefix", ErrMalformed)
	}
	if len(key) != len(prefix)+BodyLen+ChecksumLen {
		return fmt.Errorf("%w: wrong length", ErrMalformed)
	}
	for i := len(prefix); i < len(key); i++ {
		if !isBase62(key[i]) {
			return fmt.Errorf("%w: bad character", ErrMalformed)
		}
	}
	split := len(key) - ChecksumLen
	var want [ChecksumLen]byte
	encodeChecksum(want[:], crc32IEEEString(key[:split]))
	var got [ChecksumLen]byte
	copy(got[:], key[split:])
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return fmt.Errorf("%w: bad checksum", ErrMalformed)
	}
	return nil
}

// Regexp returns a regular expression (RE2 syntax, also valid PCRE) that
// matches keys of this format, for secret scanners such as GitHub secret
// scanning custom patterns, gitleaks or trufflehog:
//
//	\bgate_live_[0-9A-Za-z]{49}\b
//
// A scanner can cut false positives to nearly zero by also verifying the
// checksum: the last ChecksumLen characters must equal the CRC-32 (IEEE) of
// everything before them, written in base62 (alphabet 0-9A-Za-z, most
// significant digit first, left-padded with '0' to ChecksumLen characters).
func (f Format) Regexp() string {
	return `\b` + regexp.QuoteMeta(f.prefix()) + fmt.Sprintf("[0-9A-Za-z]{%d}", BodyLen+ChecksumLen) + `\b`
}

// minHintTail is the shortest part after the prefix for which Hint shows
// the last characters: shorter strings are not keys of ours, and showing
// four of their characters could reveal much of them.
const minHintTail = 16

// Hint returns the key's prefix, an ellipsis and its last four characters
// ("gate_live_…a1b2"): enough for a person to recognise a key, useless to
// use or guess it (the last four characters belong to the checksum). For a
// string too short to be a key only the prefix, if any, is kept.
func Hint(key string) string {
	prefix := ""
	if i := strings.LastIndexByte(key, '_'); i >= 0 && i < MaxPrefixLen && prefixPattern.MatchString(key[:i+1]) {
		prefix = key[:i+1]
	}
	tail := key[len(prefix):]
	if len(tail) < minHintTail {
		return prefix + "…"
	}
	last := tail[len(tail)-4:]
	for i := 0; i < len(last); i++ {
		if !isBase62(last[i]) {
			return prefix + "…"
		}
	}
	return prefix + "…" + last
}

func isBase62(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

// encodeBody writes the 256-bit big-endian number in raw as exactly BodyLen
// base62 digits into dst. Long division with fixed loop bounds: the running
// time does not depend on the secret value. raw is consumed (zeroed).
func encodeBody(dst []byte, raw *[bodyBytes]byte) {
	for i := BodyLen - 1; i >= 0; i-- {
		var rem uint32
		for j := range raw {
			cur := rem<<8 | uint32(raw[j])
			raw[j] = byte(cur / 62)
			rem = cur % 62
		}
		dst[i] = base62Alphabet[rem]
	}
}

// encodeChecksum writes sum as exactly ChecksumLen base62 digits into dst.
func encodeChecksum(dst []byte, sum uint32) {
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = base62Alphabet[sum%62]
		sum /= 62
	}
}

// crc32IEEEString is crc32.ChecksumIEEE over a string, byte-wise with the
// standard table: keys are short, and this avoids copying the key to the
// heap on every request.
func crc32IEEEString(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}
