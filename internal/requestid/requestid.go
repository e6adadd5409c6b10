// Package requestid accepts a well-formed X-Request-Id from the client or
// makes a new one, so one id follows a request through the gateway, the
// upstream and every log line.
package requestid

import (
	"crypto/rand"
	"encoding/hex"
)

// Header is the header that carries the id in both directions.
const Header = "X-Request-Id"

// MaxLen bounds an accepted incoming id; longer ones are replaced.
const MaxLen = 128

// Valid reports whether an incoming id may be reused: 1 to MaxLen characters
// from [A-Za-z0-9._:-]. Anything else (spaces, quotes, control characters)
// could forge log lines or break header parsing downstream, so it is replaced.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// New returns a fresh id: 128 random bits as 32 hex characters.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// FromIncoming returns the incoming id when it is valid, or a new one.
func FromIncoming(incoming string) string {
	if Valid(incoming) {
		return incoming
	}
	return New()
}
