package basic

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id's cost parameters (RFC 9106): memory in KiB,
// iterations (time) and lanes (parallelism).
type Params struct {
	MemoryKiB  uint32
	Iterations uint32
	Lanes      uint8
}

// DefaultParams are the parameters of new hashes: OWASP's first argon2id
// recommendation (19 MiB, 2 iterations, 1 lane). docs/basic-auth.md has
// their measured cost; the verified-credential cache keeps a client that
// sends the same password on every request from paying it each time.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Iterations: 2, Lanes: 1}

// Floors and ceilings of the parameters a hash may carry. Below the
// floors a hash is too cheap to slow down an offline attack; above the
// ceilings one verification costs enough memory or time that a users
// file (or a store row) written by someone hostile could stall the
// gateway: both are refused when the file or row is read, never at
// request time.
const (
	MinMemoryKiB  = 19 * 1024
	MaxMemoryKiB  = 256 * 1024
	MinIterations = 1
	MaxIterations = 10
	MinLanes      = 1
	MaxLanes      = 16
	// minWorkKiB: memory × iterations at least OWASP's weakest
	// recommendation (m=19 MiB with t=2, or m=46 MiB with t=1 are both
	// above it), so m=19 MiB with t=1 is refused.
	minWorkKiB = 2 * 19 * 1024
	// maxWorkKiB bounds memory × iterations (a 256 MiB, 10-pass hash
	// costs seconds).
	maxWorkKiB = 1024 * 1024

	MinSaltLen = 8
	MaxSaltLen = 64
	MinKeyLen  = 16
	MaxKeyLen  = 64

	// MinBcryptCost and MaxBcryptCost bound imported bcrypt hashes
	// (cost 10 is OWASP's floor; cost 15 takes seconds).
	MinBcryptCost = 10
	MaxBcryptCost = 14

	// MaxHashLen bounds the text of a hash before it is parsed.
	MaxHashLen = 256
	// MaxPasswordLen bounds a password: longer ones are refused before
	// any hashing (argon2id hashes its whole input first; bcrypt reads
	// at most 72 bytes).
	MaxPasswordLen = 1024
)

// Algorithm names a hash's algorithm.
type Algorithm string

const (
	Argon2id Algorithm = "argon2id"
	Bcrypt   Algorithm = "bcrypt"
)

// Hash is a parsed password hash: argon2id in the PHC string format, or
// an imported bcrypt hash. The zero value verifies nothing.
type Hash struct {
	Alg    Algorithm
	Params Params // argon2id
	Cost   int    // bcrypt
	salt   []byte
	key    []byte
	bcrypt []byte
}

// Errors of ParseHash.
var (
	// ErrPlaintext: the value is not a hash at all (a plaintext password,
	// or a scheme this gateway does not accept such as MD5-crypt $apr1$,
	// {SHA} or DES crypt).
	ErrPlaintext = errors.New("basic: not an argon2id or bcrypt hash (plaintext passwords and other schemes are refused)")
	// ErrParams: the hash's parameters are outside the accepted bounds.
	ErrParams = errors.New("basic: hash parameters outside the accepted bounds")
	// ErrMalformed: a hash of a known scheme that does not parse.
	ErrMalformed = errors.New("basic: malformed hash")
)

var b64 = base64.RawStdEncoding

// ParseHash parses a PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash`
// (salt and hash in unpadded standard base64) or a bcrypt hash
// ($2a$, $2b$, $2y$), checking every parameter against the floors and
// ceilings above. Anything else is ErrPlaintext.
func ParseHash(s string) (*Hash, error) {
	if len(s) > MaxHashLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxHashLen)
	}
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2i$") || strings.HasPrefix(s, "$argon2d$"):
		return nil, fmt.Errorf("%w: argon2i and argon2d are not accepted; use argon2id", ErrMalformed)
	}
	return nil, ErrPlaintext
}

func parseArgon2id(s string) (*Hash, error) {
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrMalformed)
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("%w: version %q (only v=19 is accepted)", ErrMalformed, parts[2])
	}
	var p Params
	var seen [3]bool
	kvs := strings.Split(parts[3], ",")
	if len(kvs) != 3 {
		return nil, fmt.Errorf("%w: parameters %q: want m=…,t=…,p=…", ErrMalformed, parts[3])
	}
	for i, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		// PHC: decimal without sign or leading zeros.
		if !ok || v == "" || len(v) > 10 || (len(v) > 1 && v[0] == '0') || strings.TrimLeft(v, "0123456789") != "" {
			return nil, fmt.Errorf("%w: parameter %q", ErrMalformed, kv)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %q", ErrMalformed, kv)
		}
		want := [3]string{"m", "t", "p"}[i]
		if k != want || seen[i] {
			return nil, fmt.Errorf("%w: parameters %q: want m=…,t=…,p=… in that order", ErrMalformed, parts[3])
		}
		seen[i] = true
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Iterations = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("%w: p=%d above %d", ErrParams, n, MaxLanes)
			}
			p.Lanes = uint8(n)
		}
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < MinSaltLen || len(salt) > MaxSaltLen {
		return nil, fmt.Errorf("%w: salt must be %d to %d bytes of unpadded base64", ErrMalformed, MinSaltLen, MaxSaltLen)
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("%w: hash must be %d to %d bytes of unpadded base64", ErrMalformed, MinKeyLen, MaxKeyLen)
	}
	return &Hash{Alg: Argon2id, Params: p, salt: salt, key: key}, nil
}

// Check reports whether p is within the accepted floors and ceilings.
func (p Params) Check() error {
	switch {
	case p.MemoryKiB < MinMemoryKiB || p.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("%w: m=%d KiB outside %d..%d", ErrParams, p.MemoryKiB, MinMemoryKiB, MaxMemoryKiB)
	case p.Iterations < MinIterations || p.Iterations > MaxIterations:
		return fmt.Errorf("%w: t=%d outside %d..%d", ErrParams, p.Iterations, MinIterations, MaxIterations)
	case p.Lanes < MinLanes || p.Lanes > MaxLanes:
		return fmt.Errorf("%w: p=%d outside %d..%d", ErrParams, p.Lanes, MinLanes, MaxLanes)
	case uint64(p.MemoryKiB)*uint64(p.Iterations) < minWorkKiB:
		return fmt.Errorf("%w: m×t = %d KiB below %d (use t=2 at 19 MiB, or more memory)", ErrParams, uint64(p.MemoryKiB)*uint64(p.Iterations), minWorkKiB)
	case uint64(p.MemoryKiB)*uint64(p.Iterations) > maxWorkKiB:
		return fmt.Errorf("%w: m×t = %d KiB above %d", ErrParams, uint64(p.MemoryKiB)*uint64(p.Iterations), maxWorkKiB)
	case uint32(p.Lanes)*8 > p.MemoryKiB:
		return fmt.Errorf("%w: m must be at least 8×p", ErrParams)
	}
	return nil
}

func parseBcrypt(s string) (*Hash, error) {
	if len(s) != 60 {
		return nil, fmt.Errorf("%w: a bcrypt hash is 60 characters", ErrMalformed)
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if cost < MinBcryptCost || cost > MaxBcryptCost {
		return nil, fmt.Errorf("%w: bcrypt cost %d outside %d..%d", ErrParams, cost, MinBcryptCost, MaxBcryptCost)
	}
	return &Hash{Alg: Bcrypt, Cost: cost, bcrypt: []byte(s)}, nil
}

// Verify reports whether password matches h, comparing in constant time.
// Its cost is the hash's, whatever the password: a wrong password costs
// as much as a right one.
func (h *Hash) Verify(password []byte) bool {
	if h == nil || len(password) > MaxPasswordLen {
		return false
	}
	switch h.Alg {
	case Argon2id:
		got := argon2.IDKey(password, h.salt, h.Params.Iterations, h.Params.MemoryKiB, h.Params.Lanes, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(got, h.key) == 1
	case Bcrypt:
		// bcrypt reads only 72 bytes: a longer password is refused, never
		// truncated into a match (x/crypto's Compare would truncate).
		if len(password) > 72 {
			return false
		}
		// CompareHashAndPassword compares in constant time.
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	}
	return false
}

// String is the hash in its text form (PHC or bcrypt).
func (h *Hash) String() string {
	switch h.Alg {
	case Argon2id:
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.Params.MemoryKiB, h.Params.Iterations, h.Params.Lanes,
			b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
	case Bcrypt:
		return string(h.bcrypt)
	}
	return ""
}

// HashPassword hashes password with argon2id at p (a 16-byte random salt,
// a 32-byte key) and returns the PHC string.
func HashPassword(password []byte, p Params) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	if len(password) == 0 {
		return "", errors.New("basic: empty password")
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("basic: password longer than %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Lanes, 32)
	return (&Hash{Alg: Argon2id, Params: p, salt: salt, key: key}).String(), nil
}
