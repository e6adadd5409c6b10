package basic

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxEncodedLen bounds the base64 credentials of a Basic header: a
// longer value is refused before it is decoded (a 256-byte name and a
// 1024-byte password fit).
const MaxEncodedLen = 4 * ((MaxNameLen + 1 + MaxPasswordLen + 2) / 3)

// Errors of ParseBasic.
var (
	ErrHeaderTooLarge  = errors.New("basic: credentials too large")
	ErrHeaderMalformed = errors.New("basic: malformed credentials")
)

// ParseBasic decodes the credentials of an `Authorization: Basic …`
// header (RFC 7617): padded standard base64 of "user-id:password", in
// UTF-8 (the charset the challenge announces). The user-id ends at the
// first colon; it must be a valid user name (CheckName), and neither part
// may contain a control character. Nothing is allocated beyond the
// decoded bytes; the password is returned as a slice of them so that the
// caller never turns it into a string that could be logged.
func ParseBasic(credentials string) (user string, password []byte, err error) {
	if len(credentials) > MaxEncodedLen {
		return "", nil, ErrHeaderTooLarge
	}
	if credentials == "" {
		return "", nil, ErrHeaderMalformed
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(credentials)
	if err != nil {
		return "", nil, ErrHeaderMalformed
	}
	if !utf8.Valid(raw) {
		return "", nil, ErrHeaderMalformed
	}
	i := strings.IndexByte(string(raw), ':') // no allocation: the compiler sees the conversion is read-only
	if i < 0 {
		return "", nil, ErrHeaderMalformed
	}
	user, password = string(raw[:i]), raw[i+1:]
	if CheckName(user) != nil || len(password) > MaxPasswordLen {
		return "", nil, ErrHeaderMalformed
	}
	for _, r := range string(password) {
		if unicode.IsControl(r) {
			return "", nil, ErrHeaderMalformed
		}
	}
	return user, password, nil
}
