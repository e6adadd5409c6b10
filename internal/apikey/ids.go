package apikey

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalid reports a name, label, scope or id that fails validation.
// Errors wrap it with the field and the rule.
var ErrInvalid = errors.New("apikey: invalid value")

// idEncoding is lowercase base32 without padding: ids stay readable, case
// insensitive and free of characters that need escaping in URLs or paths.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idRandomBytes gives 16 base32 characters (80 random bits): collisions are
// negligible for any realistic number of consumers or keys, and stores
// reject a duplicate with ErrConflict anyway.
const idRandomBytes = 10

// Id prefixes.
const (
	ConsumerIDPrefix = "c_"
	KeyIDPrefix      = "k_"
)

// NewConsumerID returns a fresh consumer id: "c_" and 16 random lowercase
// base32 characters.
func NewConsumerID() string { return newID(ConsumerIDPrefix) }

// NewKeyID returns a fresh key id: "k_" and 16 random lowercase base32
// characters. Key ids are not secret; they name keys in listings and audit
// events.
func NewKeyID() string { return newID(KeyIDPrefix) }

func newID(prefix string) string {
	var b [idRandomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	return prefix + idEncoding.EncodeToString(b[:])
}

var (
	consumerIDPattern = regexp.MustCompile(`^c_[a-z2-7]{16}$`)
	keyIDPattern      = regexp.MustCompile(`^k_[a-z2-7]{16}$`)
	namePattern       = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)
)

// ValidateConsumerID checks that id has the shape NewConsumerID produces.
func ValidateConsumerID(id string) error {
	if !consumerIDPattern.MatchString(id) {
		return fmt.Errorf("%w: consumer id %q does not match %s", ErrInvalid, id, consumerIDPattern)
	}
	return nil
}

// ValidateKeyID checks that id has the shape NewKeyID produces.
func ValidateKeyID(id string) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("%w: key id %q does not match %s", ErrInvalid, id, keyIDPattern)
	}
	return nil
}

// ValidateConsumerName checks a consumer name: 1 to 64 characters of
// letters, digits, '.', '_' and '-', starting with a letter or digit
// (^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$). Names end up in identity headers
// and logs, so nothing that needs quoting is allowed.
func ValidateConsumerName(name string) error { return validateName("consumer name", name) }

// ValidateGroup checks a consumer group with the same rule as
// ValidateConsumerName.
func ValidateGroup(group string) error { return validateName("group", group) }

// ValidateTag checks a consumer tag with the same rule as
// ValidateConsumerName.
func ValidateTag(tag string) error { return validateName("tag", tag) }

func validateName(what, s string) error {
	if !namePattern.MatchString(s) {
		return fmt.Errorf("%w: %s %q must match %s", ErrInvalid, what, s, namePattern)
	}
	return nil
}

// MaxScopeLen is the longest scope ValidateScope accepts.
const MaxScopeLen = 128

// ValidateScope checks a scope: 1 to MaxScopeLen printable ASCII characters
// without spaces. It follows the scope-token grammar of RFC 6749 section
// 3.3 (%x21 / %x23-5B / %x5D-7E), so '"' and '\' are refused too, and key
// scopes compare cleanly with OAuth scopes.
func ValidateScope(scope string) error {
	if len(scope) == 0 || len(scope) > MaxScopeLen {
		return fmt.Errorf("%w: scope must be 1 to %d characters, got %d", ErrInvalid, MaxScopeLen, len(scope))
	}
	for i := 0; i < len(scope); i++ {
		c := scope[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("%w: scope %q has a character outside printable ASCII without space, '\"' and '\\'", ErrInvalid, scope)
		}
	}
	return nil
}
