// Package revocation is the gateway's list of revoked tokens: by jti, by
// token hash, by subject (tokens issued before a time), by client id and by
// issuer and subject. Entries are stored durably in the key store (package
// apikey's embedded and PostgreSQL stores implement Store), held in memory
// by every gateway process as an immutable snapshot (List), and kept in
// step with the store by a Replica: pushed changes (PostgreSQL
// LISTEN/NOTIFY, later Redis pub/sub) through a Feed, polling while the
// feed is down, and a full load before the process serves.
//
// The check on the request path (List.Check) reads one atomic pointer and
// a few maps: no lock and no allocation. It runs after the authentication
// chain, so a verified-token cache hit never skips it.
package revocation

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is what an entry revokes. The values are stable: they appear in the
// admin API, the CLI and the stores.
type Kind string

// Kinds of entries.
const (
	// KindJTI revokes the token with this jti (of Issuer, or of any
	// issuer when Issuer is empty).
	KindJTI Kind = "jti"
	// KindToken revokes the token whose SHA-256 is Value (64 lowercase
	// hex digits): for tokens without a jti, and opaque tokens. The token
	// itself is never sent nor stored.
	KindToken Kind = "token"
	// KindSubject revokes every token of the subject Value (of Issuer, or
	// of any issuer when Issuer is empty) issued before Before: a token
	// whose iat is earlier, or that has no iat. Tokens issued later work.
	KindSubject Kind = "subject"
	// KindClient revokes every token issued to the OAuth client Value (of
	// Issuer, or any issuer when empty); with Before, only those issued
	// before it.
	KindClient Kind = "client"
	// KindIssuerSubject refuses every token of the subject Value of Issuer,
	// including tokens issued later, until the entry expires: the subject
	// is blocked.
	KindIssuerSubject Kind = "issuer_subject"
	// KindSession ends the browser sessions (method session) of the
	// identity provider session Value (an ID token's sid) of Issuer
	// (required): OIDC back-channel logout of cookie sessions.
	KindSession Kind = "session"
)

// Kinds lists every kind, in documentation order.
var Kinds = []Kind{KindJTI, KindToken, KindSubject, KindClient, KindIssuerSubject, KindSession}

// Entry is one revocation.
type Entry struct {
	// ID names the entry ("r_" and 16 base32 characters).
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Issuer restricts the entry to tokens of this issuer (the token's
	// iss, "gatehouse" for API keys); empty: any issuer. Required for
	// issuer_subject.
	Issuer string `json:"issuer,omitempty"`
	// Value is the jti, the token's SHA-256 (hex), the subject or the
	// client id.
	Value string `json:"value"`
	// Before: for subject (required) and client (optional), only tokens
	// issued before it are revoked.
	Before *time.Time `json:"before,omitempty"`
	// Reason is the operator's note (not shown to clients).
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the entry drops out by itself: once every token it
	// can match has expired anyway.
	ExpiresAt time.Time `json:"expires_at"`
}

// Active reports whether the entry still applies at now.
func (e *Entry) Active(now time.Time) bool { return now.Before(e.ExpiresAt) }

// IDPrefix starts every entry id.
const IDPrefix = "r_"

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a fresh entry id: "r_" and 16 random lowercase base32
// characters.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return IDPrefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var idPattern = regexp.MustCompile(`^r_[a-z2-7]{16}$`)

// ValidID reports whether id has the shape NewID produces.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// MaxValueLen bounds issuers, values and reasons.
const MaxValueLen = 1024

// FieldError names an invalid field of a new entry.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "revocation: invalid entry: " + strings.Join(parts, "; ")
}

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("revocation: invalid entry")

func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate checks a complete entry (as stores receive it).
func (e *Entry) Validate() error {
	var fields []FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if !ValidID(e.ID) {
		add("id", "must be r_ and 16 base32 characters")
	}
	text := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			add(field, "is required")
		case len(v) > MaxValueLen:
			add(field, "must be at most %d bytes", MaxValueLen)
		case !utf8.ValidString(v) || strings.ContainsFunc(v, isControl):
			add(field, "must be printable UTF-8")
		}
	}
	text("issuer", e.Issuer, e.Kind == KindIssuerSubject || e.Kind == KindSession)
	text("value", e.Value, true)
	text("reason", e.Reason, false)
	switch e.Kind {
	case KindJTI, KindIssuerSubject, KindSession:
		if e.Before != nil {
			add("before", "is not used by kind %s", e.Kind)
		}
	case KindToken:
		if !isHexSHA256(e.Value) {
			add("value", "must be the token's SHA-256 as 64 lowercase hex digits")
		}
		if e.Before != nil {
			add("before", "is not used by kind token")
		}
	case KindSubject:
		if e.Before == nil {
			add("before", "is required for kind subject")
		}
	case KindClient:
	default:
		add("kind", "must be one of jti, token, subject, client, issuer_subject, session")
	}
	if e.CreatedAt.IsZero() {
		add("created_at", "is required")
	}
	if !e.ExpiresAt.After(e.CreatedAt) {
		add("expires_at", "must be after created_at")
	}
	if len(fields) > 0 {
		return &ValidationError{Fields: fields}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// TokenHash returns the hex SHA-256 of a token's bytes as the token kind's
// Value expects it, from a hash computed elsewhere.
func TokenHash(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
