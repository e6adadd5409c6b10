package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// validJSONText reports whether b, a JOSE header or a JWT claims set, is
// text in the sense of RFC 7519 section 7.2 (steps 5 and 10): valid UTF-8,
// and no \u escape that encodes a lone UTF-16 surrogate. encoding/json
// replaces both kinds of garbage with U+FFFD, so without this check two
// different byte strings (two different subjects) would decode to one
// identity. It must run on the raw bytes, before JSON decoding.
//
// b is not otherwise checked for JSON syntax (the decoder does that); a
// backslash is only legal inside a JSON string, so every backslash starts
// an escape and the scan needs no string state.
func validJSONText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return true
		}
		b = b[i+1:]
		if b[0] != 'u' {
			b = b[1:] // a one-character escape, \\ included
			continue
		}
		r, ok := hex4(b[1:])
		if !ok {
			return true // invalid JSON: the decoder refuses it
		}
		b = b[5:]
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			// A high surrogate must be followed at once by an escaped
			// low surrogate.
			if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
				return false
			}
			lo, ok := hex4(b[2:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			b = b[6:]
		case utf16.IsSurrogate(r):
			return false // a low surrogate on its own
		}
	}
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// headerIsText decodes the protected header of raw (whose parts are known
// to be canonical base64url) and checks it with validJSONText and
// hasDuplicateKeys: go-jose decodes the header itself, replacing invalid
// UTF-8 in kid or typ and keeping the last of two alg or kid members.
// It runs on the cache-miss path only.
func headerIsText(raw string) bool {
	enc, _, _ := strings.Cut(raw, ".")
	// Headers are small: decode on the stack. Decode only reads its
	// source, so the string's bytes are used in place.
	var buf [512]byte
	dst := buf[:]
	if n := base64.RawURLEncoding.DecodedLen(len(enc)); n > len(buf) {
		dst = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(dst, unsafe.Slice(unsafe.StringData(enc), len(enc)))
	if err != nil {
		return true // not base64: the parser refuses it
	}
	return validJSONText(dst[:n]) && !hasDuplicateKeys(dst[:n])
}

// hasDuplicateKeys reports whether a JSON object in b, at any depth, names
// a member twice. RFC 7519 section 4 lets a parser either refuse such a
// claims set or keep the last member, as encoding/json does; Gatehouse
// refuses it, because a backend that reads the first member (when the
// token is forwarded) would see another subject, issuer or role than the
// one Gatehouse checked.
//
// Like validJSONText it runs on the raw bytes and assumes nothing about
// their validity (invalid JSON is refused by the decoder anyway): it must
// only terminate and not panic. A string is a member name when the next
// non-space byte after it is ':'.
func hasDuplicateKeys(b []byte) bool {
	type member struct{ start, end int } // the raw name, quotes excluded
	var (
		stackBuf [16]int // per open container: index into names where its members start; -1 for arrays
		namesBuf [32]member
		stack    = stackBuf[:0]
		names    = namesBuf[:0]
	)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, len(names))
		case '[':
			stack = append(stack, -1)
		case '}', ']':
			if len(stack) > 0 {
				if from := stack[len(stack)-1]; from >= 0 {
					names = names[:from]
				}
				stack = stack[:len(stack)-1]
			}
		case '"':
			start := i + 1
			j := start
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return false // unterminated: the decoder refuses it
			}
			i = j
			k := j + 1
			for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
				k++
			}
			if k >= len(b) || b[k] != ':' || len(stack) == 0 || stack[len(stack)-1] < 0 {
				continue // a value, not a member name
			}
			m := member{start, j}
			for _, prev := range names[stack[len(stack)-1]:] {
				if sameName(b[prev.start:prev.end], b[m.start:m.end]) {
					return true
				}
			}
			names = append(names, m)
		}
	}
	return false
}

// sameName compares two raw JSON member names by their decoded text, so
// that "sub" and "\u0073ub" are the same name.
func sameName(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Equal(a, b)
	}
	var sa, sb string
	if json.Unmarshal(append(append([]byte{'"'}, a...), '"'), &sa) != nil ||
		json.Unmarshal(append(append([]byte{'"'}, b...), '"'), &sb) != nil {
		return false // malformed escape: the decoder refuses the token
	}
	return sa == sb
}

var errNotText = errors.New("authn/jwt: header or claims are not valid UTF-8 text (invalid bytes or a lone surrogate escape), or name a member twice")
