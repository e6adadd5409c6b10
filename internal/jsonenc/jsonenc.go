// Package jsonenc appends JSON values to byte slices without reflection,
// for the log lines written on every request (access log, audit events).
// Its output reproduces, byte for byte, what encoding/json.Marshal or
// log/slog's JSONHandler would write for the same values, so replacing
// either with it changes no log line; the tests hold it to that.
package jsonenc

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Style selects whose string escaping AppendString reproduces. Both write
// valid JSON; they differ only in which characters they escape and how.
type Style uint8

const (
	// Marshal is encoding/json.Marshal: '<', '>' and '&' are escaped as
	// \u003c, \u003e and \u0026; \b and \f use their short forms.
	Marshal Style = iota
	// Slog is log/slog's JSONHandler: HTML characters are left alone; \b
	// and \f are written as \u0008 and \u000c.
	Slog
)

// plain[style][b] reports whether the ASCII byte b is written as itself.
var plain = func() (t [2][utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		ok := b != '"' && b != '\\'
		t[Slog][b] = ok
		t[Marshal][b] = ok && b != '<' && b != '>' && b != '&'
	}
	return t
}()

const hex = "0123456789abcdef"

// AppendString appends s as a quoted JSON string. Control characters,
// '"' and '\' are escaped, invalid UTF-8 becomes U+FFFD (\ufffd), and
// U+2028 and U+2029 are escaped, as both encoders do.
func AppendString[S ~string | ~[]byte](dst []byte, s S, style Style) []byte {
	safe := &plain[style]
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case b == '\\' || b == '"':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case b == '\b' && style == Marshal:
				dst = append(dst, '\\', 'b')
			case b == '\f' && style == Marshal:
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := decodeRune(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	// Only the first UTFMax bytes matter; converting just those keeps the
	// []byte case free of allocations.
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s)
	return utf8.DecodeRune(buf[:n])
}

// AppendFloat appends f as encoding/json (and so log/slog) writes a
// float64: like strconv 'f' formatting, switching to an exponent below
// 1e-6 and from 1e21 on, with a minimal exponent ("1e-7", not "1e-07").
// NaN and infinities have no JSON form; the caller must not pass them.
func AppendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
