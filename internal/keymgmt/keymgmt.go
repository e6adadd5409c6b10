// Package keymgmt is the API-key lifecycle: creating and deleting
// consumers, issuing, rotating and revoking keys, and reporting expiries.
// It is the one place that validates lifecycle requests, generates key
// material and emits lifecycle audit events; the admin API (and, through
// it, the CLI) are thin layers over Service.
//
// A key's plaintext leaves this package exactly once, as the return value
// of CreateKey or RotateKey. It never appears in errors, audit events or
// logs.
package keymgmt

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// Audit event types of the key lifecycle. Every event has Outcome "allow",
// Reason naming the action (the type without the "apikey." prefix),
// Subject the consumer id, ClientID the consumer name and, for key events,
// CredentialID the key id.
const (
	TypeConsumerCreated = "apikey.consumer_created"
	TypeConsumerDeleted = "apikey.consumer_deleted"
	TypeKeyCreated      = "apikey.key_created"
	TypeKeyRotated      = "apikey.key_rotated"
	TypeKeyRevoked      = "apikey.key_revoked"
	TypeKeyExpired      = "apikey.key_expired"
)

// Errors for lifecycle transitions a key's state forbids. The admin API
// maps them to 409 Conflict.
var (
	// ErrKeyRevoked: a revoked key cannot be rotated.
	ErrKeyRevoked = errors.New("keymgmt: key is revoked")
	// ErrKeyRotated: a key that already has a successor cannot be rotated
	// again (rotate the successor instead).
	ErrKeyRotated = errors.New("keymgmt: key was already rotated")
	// ErrKeyExpired: an expired key cannot be rotated.
	ErrKeyExpired = errors.New("keymgmt: key has expired")
)

// Bounds on request sizes, so a single consumer or key cannot bloat the
// store or the identity headers derived from it.
const (
	MaxMetadataEntries  = 32
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
	// MaxListLen bounds groups, tags, scopes and routes.
	MaxListLen = 64
)

// Service runs the key lifecycle against a Store. Fields are set once
// before use; methods are safe for concurrent use.
type Service struct {
	// Store persists consumers and key hashes. Required.
	Store apikey.Store
	// Format generates keys. The zero value uses apikey.DefaultPrefix.
	Format apikey.Format
	// Hasher computes the stored lookup hash. It must be the gateway's
	// hasher (same pepper), or issued keys will never authenticate. nil
	// hashes with plain SHA-256, like a nil *apikey.Hasher.
	Hasher *apikey.Hasher
	// Audit receives lifecycle events. nil drops them.
	Audit audit.Logger
	// Invalidate drops a key from this instance's key cache at once, so a
	// revoked or rotated key stops being served from cache before its TTL.
	// May be nil (no cache, or a store that notifies caches itself).
	Invalidate func(keyID string)
	// RotationGrace is how long a rotated key keeps working when RotateKey
	// is given no grace. Default (zero): the old key stops at once.
	RotationGrace time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// mu serialises rotations and revocations on this instance, so two
	// concurrent rotations of one key cannot both issue a successor.
	mu sync.Mutex
}

// FieldError is one invalid field of a request.
type FieldError struct {
	// Field is named as in the JSON admin API: "name", "scopes[1]",
	// "metadata.team", "expires_at".
	Field string `json:"field"`
	// Message says what is wrong; it never echoes a secret.
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request. It matches
// apikey.ErrInvalid with errors.Is.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "keymgmt: invalid request: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, apikey.ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return apikey.ErrInvalid }

// validator collects field errors.
type validator struct{ fields []FieldError }

func (v *validator) add(field, msg string) { v.fields = append(v.fields, FieldError{field, msg}) }

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

const nameRule = "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

var scopeRule = fmt.Sprintf("must be 1 to %d printable ASCII characters without space, '\"' or '\\'", apikey.MaxScopeLen)

func (v *validator) names(field string, list []string, check func(string) error, rule string) {
	if len(list) > MaxListLen {
		v.add(field, fmt.Sprintf("must have at most %d entries", MaxListLen))
		return
	}
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case check(s) != nil:
			v.add(f, rule)
		case seen[s]:
			v.add(f, "duplicate entry")
		}
		seen[s] = true
	}
}

func (s *Service) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	// Stores keep microseconds (PostgreSQL does); truncating here makes
	// the returned objects equal to what a later read returns.
	return now().UTC().Truncate(time.Microsecond)
}

func (s *Service) log(typ string, c *apikey.Consumer, consumerID, keyID string) {
	if s.Audit == nil {
		return
	}
	e := &audit.Event{
		SchemaVersion: audit.SchemaVersion,
		Time:          s.now(),
		Type:          typ,
		Outcome:       audit.OutcomeAllow,
		Reason:        strings.TrimPrefix(typ, "apikey."),
		Subject:       consumerID,
		CredentialID:  keyID,
	}
	if c != nil {
		e.ClientID = c.Name
	}
	s.Audit.Log(e)
}

func (s *Service) invalidate(keyID string) {
	if s.Invalidate != nil {
		s.Invalidate(keyID)
	}
}

func notFound(what, id string) error {
	return fmt.Errorf("keymgmt: %s %q: %w", what, id, apikey.ErrNotFound)
}
