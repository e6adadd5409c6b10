// Package basic is the basic credential method: HTTP Basic authentication
// (RFC 7617) for legacy clients that can send nothing else, against users
// whose passwords are stored as argon2id hashes (bcrypt accepted for
// imported ones; plaintext never). See docs/basic-auth.md.
//
// What keeps a password method from hurting the gateway:
//   - every hash's parameters are bounded when it is read (phc.go), so a
//     hostile users file cannot make one verification cost seconds;
//   - verifications run under a concurrency limit: a flood gets 503, not
//     an exhausted CPU or memory;
//   - a verified (user, password) pair is cached for a short time under
//     an HMAC with a per-process key (never the password), so a client
//     sending the same password on every request pays argon2id once;
//   - an unknown user costs a verification against a dummy hash at the
//     default parameters, like a wrong password, and gets the same answer;
//   - failures feed brute-force protection per address and per user name,
//     and a locked-out user name is refused before any hashing
//     (authn.LockoutKeyer), so a lockout is no password oracle.
package basic

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Name is the method's name.
const Name identity.Method = "basic"

// Issuer is the issuer of basic identities: the gateway itself.
const Issuer = "gatehouse"

// Reasons of the basic method (docs/audit.md). The client gets one answer
// for user_unknown and password_mismatch (same status, body, challenge
// and, through the dummy hash, cost); the audit trail tells them apart.
const (
	ReasonUserUnknown      authn.Reason = "user_unknown"
	ReasonPasswordMismatch authn.Reason = "password_mismatch"
	ReasonPlainHTTP        authn.Reason = "basic_plain_http"
	ReasonBusy             authn.Reason = "verification_busy"
)

const invalidDescription = "The user name or password is not valid."

// source is where users come from: a file (FileSource) or the key store.
type source interface {
	table() *table
}

// Limiter bounds concurrent password verifications (argon2id holds its
// memory, 19 MiB by default, for the whole verification).
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewLimiter allows n verifications at once; a request waits at most wait
// for a slot.
func NewLimiter(n int, wait time.Duration) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

func (l *Limiter) acquire(r *http.Request) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	if l.wait <= 0 {
		return false
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

func (l *Limiter) release() { <-l.slots }

// Authenticator is the basic method of one route.
type Authenticator struct {
	src       source
	limit     *Limiter
	allowHTTP bool
	origin    func(r *http.Request) (scheme, host string)
	now       func() time.Time
}

var (
	_ authn.Authenticator = (*Authenticator)(nil)
	_ authn.LockoutKeyer  = (*Authenticator)(nil)
)

// Method is basic.
func (a *Authenticator) Method() identity.Method { return Name }

// dummy is the hash an unknown user's password is verified against, so
// that an unknown user costs what a wrong password costs.
var dummy = sync.OnceValue(func() *Hash {
	s, err := HashPassword([]byte("gatehouse-dummy-password"), DefaultParams)
	if err != nil {
		panic(err)
	}
	h, err := ParseHash(s)
	if err != nil {
		panic(err)
	}
	return h
})

// credentials finds the request's Basic credentials: ok false when the
// request carries none (no Authorization header, or another scheme). A
// Basic credential among several Authorization headers is malformed.
func credentials(r *http.Request) (creds string, ok bool, fail *authn.Failure) {
	vals := r.Header["Authorization"]
	for _, v := range vals {
		scheme, c, good := authn.SplitAuthorization(v)
		if !strings.EqualFold(scheme, "Basic") {
			continue
		}
		if !good || len(vals) > 1 {
			return "", true, malformed(nil)
		}
		return c, true, nil
	}
	return "", false, nil
}

func malformed(err error) *authn.Failure {
	if errors.Is(err, ErrHeaderTooLarge) {
		return &authn.Failure{Method: Name, Reason: authn.ReasonTooLarge, Description: "The Basic credentials are too large.", Err: err}
	}
	return &authn.Failure{Method: Name, Reason: authn.ReasonMalformed,
		Description: "The Basic credentials are malformed (base64 of UTF-8 user-id:password).", Err: err}
}

// LockoutKey is the credential id of the user the request names, read
// without verifying anything: brute-force protection checks it before the
// chain runs, so a locked-out user name gets 429 whatever the password
// (a right one included) and costs no hashing.
func (a *Authenticator) LockoutKey(r *http.Request) string {
	c, ok, fail := credentials(r)
	if !ok || fail != nil {
		return ""
	}
	user, _, err := ParseBasic(c)
	if err != nil {
		return ""
	}
	return CredentialID(user)
}

// Authenticate checks the request's Basic credentials.
func (a *Authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	c, ok, fail := credentials(r)
	if !ok {
		return nil, authn.ErrNoCredential
	}
	if fail != nil {
		return nil, fail
	}
	if !a.secure(r) {
		return nil, &authn.Failure{Method: Name, Reason: ReasonPlainHTTP,
			Description: "Basic credentials are not accepted over plain HTTP on this route; use HTTPS (and change the password: it crossed the network in clear)."}
	}
	user, password, err := ParseBasic(c)
	if err != nil {
		return nil, malformed(err)
	}
	t := a.src.table()
	now := a.now()
	k := keyOf(user, password)
	if e := t.cache.get(k, now); e != nil {
		return e.id, nil
	}
	v, err, _ := t.flight.Do(string(k[:]), func() (any, error) {
		if !a.limit.acquire(r) {
			return nil, &authn.UnavailableError{Method: Name, Reason: ReasonBusy,
				Err: errors.New("authn/basic: too many password verifications in progress")}
		}
		defer a.limit.release()
		e := t.users[user]
		var good bool
		if e == nil {
			dummy().Verify(password) // the same cost as a wrong password
		} else {
			good = e.user.Hash.Verify(password)
		}
		if good {
			t.cache.put(k, e, now)
		}
		return verdict{e: e, good: good}, nil
	})
	if err != nil {
		return nil, err
	}
	e, good := v.(verdict).e, v.(verdict).good
	switch {
	case e == nil:
		return nil, &authn.Failure{Method: Name, Reason: ReasonUserUnknown, Description: invalidDescription,
			CredentialID: CredentialID(user), Err: errors.New("authn/basic: no such user")}
	case !good:
		return nil, &authn.Failure{Method: Name, Reason: ReasonPasswordMismatch, Description: invalidDescription,
			Subject: user, CredentialID: CredentialID(user), Err: errors.New("authn/basic: wrong password")}
	}
	return e.id, nil
}

// verdict is the outcome of one verification, shared by the requests that
// waited for it.
type verdict struct {
	e    *entry
	good bool
}

// secure reports whether r reached the gateway over TLS (or, behind a
// trusted proxy, says it did), or the route allows plain HTTP.
func (a *Authenticator) secure(r *http.Request) bool {
	if a.allowHTTP || r.TLS != nil {
		return true
	}
	if a.origin != nil {
		scheme, _ := a.origin(r)
		return scheme == "https"
	}
	return false
}
