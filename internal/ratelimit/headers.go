package ratelimit

import (
	"strconv"
	"time"
)

// The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers
// (revisions 10 and 11): two Structured Field lists (RFC 9651) with one
// item per limit, named by the limit's name:
//
//	RateLimit-Policy: "burst";q=20;w=1, "daily";q=10000;w=86400
//	RateLimit: "burst";r=19;t=1, "daily";r=9876;t=3600
//
// q is the quota (Rate), w the window in seconds (Period, rounded up),
// r the remaining quota and t the seconds until it is fully restored.
// The policy value is fixed per set of limits: build it once (PolicyHeader)
// and reuse it; AppendRateLimit appends into a caller's buffer, so a
// response costs no allocation beyond the header value itself.

// HeaderPolicy and HeaderRateLimit are the field names.
const (
	HeaderPolicy    = "RateLimit-Policy"
	HeaderRateLimit = "RateLimit"
)

// PolicyHeader returns the RateLimit-Policy value for limits.
func PolicyHeader(limits []Limit) string {
	var b []byte
	for i, l := range limits {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendSFString(b, l.Name)
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, int64(max(l.Rate, 0)), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, ceilSeconds(l.Period), 10)
	}
	return string(b)
}

// AppendRateLimit appends the RateLimit value for the decisions of
// limits (ds[i] is limits[i]'s decision).
func AppendRateLimit(dst []byte, limits []Limit, ds []Decision) []byte {
	for i, l := range limits {
		if i >= len(ds) {
			break
		}
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendSFString(dst, l.Name)
		dst = append(dst, ";r="...)
		dst = strconv.AppendInt(dst, int64(max(ds[i].Remaining, 0)), 10)
		dst = append(dst, ";t="...)
		dst = strconv.AppendInt(dst, ceilSeconds(ds[i].ResetAfter), 10)
	}
	return dst
}

// RetryAfter is the Retry-After value (whole seconds, at least 1) for
// a denial: the longest wait among the limits that denied.
func RetryAfter(ds []Decision) int64 {
	var longest time.Duration
	for _, d := range ds {
		if !d.Allowed && d.RetryAfter > longest {
			longest = d.RetryAfter
		}
	}
	return max(ceilSeconds(longest), 1)
}

// ceilSeconds rounds up to whole seconds: a client told to wait less
// than needed would be refused again. Structured Field integers have at
// most 15 digits.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64((d + time.Second - 1) / time.Second)
	return min(s, 999_999_999_999_999)
}

// appendSFString appends s as a Structured Field string: printable
// ASCII in quotes, with '"' and '\' escaped; other bytes (which a
// validated Limit name never holds) become '?'.
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
