// Package reply holds the typed errors with which a stage, an
// authenticator or a gateway-owned endpoint asks the pipeline for a
// particular answer instead of a plain refusal: a redirect (a login
// flow), or 429 with Retry-After (a rate limit). The pipeline's respond
// (internal/pipeline) is still the only place that turns them into a
// response, so they are logged, audited and observed like every other
// answer. The package depends on nothing of the gateway, so credential
// methods can return these errors without importing the pipeline.
package reply

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RedirectError answers 302 Found or 303 See Other with Location, the
// given cookies (one Set-Cookie field each), Cache-Control: no-store and
// no body. Build it with NewRedirect, which checks it; the pipeline checks
// it again and answers 500 for one that is not valid.
type RedirectError struct {
	// Status is http.StatusFound or http.StatusSeeOther.
	Status int
	// Location is an absolute http(s) URL or an absolute path ("/done"),
	// never a scheme-relative "//host" or a path with a backslash, and
	// without control characters (no header splitting).
	Location string
	// Cookies are set on the answer (a session, or one cleared).
	Cookies []*http.Cookie
}

func (e *RedirectError) Error() string {
	return "reply: redirect (" + http.StatusText(e.Status) + ")"
}

// NewRedirect returns a checked redirect.
func NewRedirect(status int, location string, cookies ...*http.Cookie) (*RedirectError, error) {
	e := &RedirectError{Status: status, Location: location, Cookies: cookies}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return e, nil
}

// Errors of Check.
var (
	ErrRedirectStatus   = errors.New("reply: a redirect is 302 or 303")
	ErrRedirectLocation = errors.New("reply: Location must be an absolute http(s) URL or an absolute path, without control characters")
	ErrCookie           = errors.New("reply: invalid cookie")
)

// Check reports whether e can be sent as it is.
func (e *RedirectError) Check() error {
	if e.Status != http.StatusFound && e.Status != http.StatusSeeOther {
		return ErrRedirectStatus
	}
	if !ValidLocation(e.Location) {
		return ErrRedirectLocation
	}
	for _, c := range e.Cookies {
		if err := CheckCookie(c); err != nil {
			return err
		}
	}
	return nil
}

// ValidLocation reports whether loc may be sent as a Location: an
// absolute http or https URL with a host, or a path that starts with one
// "/" (browsers read "//evil.example" and "/\evil.example" as another
// host). Control characters (CR, LF: header splitting), spaces and
// backslashes are refused anywhere.
func ValidLocation(loc string) bool {
	if loc == "" || len(loc) > 8<<10 {
		return false
	}
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; c <= 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(loc)
	if err != nil {
		return false
	}
	if u.Scheme == "" {
		return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && u.Host == "" && u.User == nil
	}
	return (u.Scheme == "https" || u.Scheme == "http") && strings.HasPrefix(loc, u.Scheme+"://") &&
		u.Host != "" && u.User == nil && u.Opaque == ""
}

// CheckCookie refuses a cookie that net/http would drop or mangle: nil, a
// name that is not a token, a value or attribute it cannot send.
func CheckCookie(c *http.Cookie) error {
	if c == nil {
		return ErrCookie
	}
	if err := c.Valid(); err != nil {
		return errors.Join(ErrCookie, err)
	}
	// Valid accepts what String later sanitizes away (a path or domain
	// with ';' or a control character); refuse instead of sending a
	// cookie other than the one asked for.
	for _, s := range []string{c.Path, c.Domain, c.Value} {
		if strings.ContainsAny(s, ";\r\n\x00") {
			return ErrCookie
		}
	}
	return nil
}

// TooManyRequestsError answers 429 with Retry-After (whole seconds,
// rounded up) and a problem+json body (urn:gatehouse:problem:too-many-requests).
type TooManyRequestsError struct {
	// RetryAfter is when the client may try again; 0 or less: no
	// Retry-After header.
	RetryAfter time.Duration
	// Header holds extra response headers (RateLimit, RateLimit-Policy),
	// canonical names. A field with a control character in its value is
	// not sent.
	Header http.Header
	// QuotaExceeded marks a caller's day or month quota as used up: the
	// body's type is then urn:gatehouse:problem:quota-exceeded.
	QuotaExceeded bool
}

func (e *TooManyRequestsError) Error() string { return "reply: too many requests" }

// RetryAfterSeconds is RetryAfter as the Retry-After value: whole seconds,
// rounded up, "" for none.
func (e *TooManyRequestsError) RetryAfterSeconds() int64 {
	if e.RetryAfter <= 0 {
		return 0
	}
	return int64((e.RetryAfter + time.Second - 1) / time.Second)
}

// ForbiddenError answers 403 with a problem+json body
// (urn:gatehouse:problem:forbidden) whose detail is Detail: a request the
// gateway refuses whoever the caller is (a cross-site request with a
// session cookie). Detail is sent to the client: never a secret.
type ForbiddenError struct{ Detail string }

func (e *ForbiddenError) Error() string { return "reply: forbidden: " + e.Detail }

// RefusedError refuses a request to a gateway-owned endpoint that
// authenticates its callers itself: 401 with WWW-Authenticate Challenge
// (Unauthenticated), else 400, with a problem+json body whose detail is
// Detail. Detail is sent to the client: it must never carry a secret.
type RefusedError struct {
	Unauthenticated bool
	// Challenge is the WWW-Authenticate value of a 401 (default
	// `Bearer realm="gatehouse"`); a value with a control character is
	// not sent.
	Challenge string
	Detail    string
}

func (e *RefusedError) Error() string {
	if e.Unauthenticated {
		return "reply: unauthenticated: " + e.Detail
	}
	return "reply: bad request: " + e.Detail
}
