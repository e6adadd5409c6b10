package session

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Session is one browser login: who the user is, per the IdP that
// logged them in, and the tokens the gateway holds for them. Its
// serialised form (Marshal) is only ever stored sealed by a Codec: in
// the cookie itself, or in the server-side store.
type Session struct {
	ID           string         // random 128-bit, base64url (NewID); the store key and handle
	Provider     string         // configured provider name
	Issuer       string         // the IdP's issuer
	Subject      string         // the user at that issuer
	SID          string         // the IdP's session id (ID token "sid"), for back-channel logout
	Claims       map[string]any // ID-token/userinfo claims kept for identity (name, email, groups, roles...)
	AccessToken  string
	RefreshToken string
	IDToken      string    // kept for id_token_hint at RP-initiated logout
	TokenExpiry  time.Time // access token expiry (zero: unknown)
	AuthTime     time.Time // when the user authenticated at the IdP
	Created      time.Time // absolute timeout counts from here
	LastSeen     time.Time // idle timeout counts from here
}

// IDLen is the length of a session ID: 16 random bytes in base64url.
const IDLen = 22

// MaxMarshaled bounds what Unmarshal reads.
const MaxMarshaled = MaxPlaintext

// NewID returns a fresh random session ID (128 bits from crypto/rand,
// base64url without padding).
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidID reports whether id has the form NewID produces.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// 22 characters carry 132 bits; the last one holds 2 bits of the 16th byte.
	_, err := b64.DecodeString(id)
	return err == nil
}

// wire is the serialised form: short names (cookies are small), times
// as Unix seconds, a version to refuse what a later release may write.
type wire struct {
	V            int            `json:"v"`
	ID           string         `json:"id"`
	Provider     string         `json:"p,omitempty"`
	Issuer       string         `json:"iss,omitempty"`
	Subject      string         `json:"sub,omitempty"`
	SID          string         `json:"sid,omitempty"`
	Claims       map[string]any `json:"c,omitempty"`
	AccessToken  string         `json:"at,omitempty"`
	RefreshToken string         `json:"rt,omitempty"`
	IDToken      string         `json:"it,omitempty"`
	TokenExpiry  int64          `json:"exp,omitempty"`
	AuthTime     int64          `json:"auth,omitempty"`
	Created      int64          `json:"cr,omitempty"`
	LastSeen     int64          `json:"ls,omitempty"`
}

const wireVersion = 1

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// Marshal serialises s (times to the second). The result is plaintext
// holding tokens: seal it before it leaves the process.
func (s *Session) Marshal() ([]byte, error) {
	if !ValidID(s.ID) {
		return nil, errors.New("session: marshal: malformed session id")
	}
	b, err := json.Marshal(wire{
		V: wireVersion, ID: s.ID, Provider: s.Provider, Issuer: s.Issuer, Subject: s.Subject, SID: s.SID,
		Claims: s.Claims, AccessToken: s.AccessToken, RefreshToken: s.RefreshToken, IDToken: s.IDToken,
		TokenExpiry: unix(s.TokenExpiry), AuthTime: unix(s.AuthTime), Created: unix(s.Created), LastSeen: unix(s.LastSeen),
	})
	if err != nil {
		return nil, fmt.Errorf("session: marshal: %w", err)
	}
	if len(b) > MaxMarshaled {
		return nil, fmt.Errorf("%w: session is %d bytes, at most %d", ErrTooLarge, len(b), MaxMarshaled)
	}
	return b, nil
}

// Unmarshal parses what Marshal wrote: strictly (unknown fields, a
// different version, trailing data or a malformed ID are refused) and
// bounded (at most MaxMarshaled bytes). Any failure is ErrInvalid.
func Unmarshal(b []byte) (*Session, error) {
	if len(b) > MaxMarshaled {
		return nil, fmt.Errorf("%w: session data too long", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: session data: not the expected JSON", ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: session data: trailing data", ErrInvalid)
	}
	if w.V != wireVersion {
		return nil, fmt.Errorf("%w: session data: version %d", ErrInvalid, w.V)
	}
	if !ValidID(w.ID) {
		return nil, fmt.Errorf("%w: session data: malformed id", ErrInvalid)
	}
	return &Session{
		ID: w.ID, Provider: w.Provider, Issuer: w.Issuer, Subject: w.Subject, SID: w.SID,
		Claims: w.Claims, AccessToken: w.AccessToken, RefreshToken: w.RefreshToken, IDToken: w.IDToken,
		TokenExpiry: fromUnix(w.TokenExpiry), AuthTime: fromUnix(w.AuthTime), Created: fromUnix(w.Created), LastSeen: fromUnix(w.LastSeen),
	}, nil
}
