// Package authn is the authentication stage's contract: the Authenticator
// interface that every credential type implements (one sub-package each),
// the typed results they return, and Chain, which combines a route's
// accepted methods with OR or AND semantics.
//
// The three outcomes of an authenticator are kept apart on purpose:
//
//   - ErrNoCredential: the request carries no credential of this kind; the
//     authenticator is "not responsible" and the chain asks the next one.
//     A *NotMineError is a variant of it: a credential WAS presented in a
//     place this method reads (a Bearer value that is not a JWS, say), but
//     its form says it belongs to another method. The chain asks the next
//     one too, and if none claims it, answers with the failure the
//     NotMineError carries: never "missing", never anonymous.
//   - *Failure: a credential was presented and is not valid. The chain stops
//     here: a bad credential never falls through to another method or to
//     anonymous access. The pipeline answers 401.
//   - *UnavailableError: the credential could not be checked (identity
//     provider unreachable and no usable cached key, store down). The chain
//     stops and the pipeline answers 503: it fails closed, never open.
package authn

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Authenticator verifies one kind of credential. Implementations must be
// safe for concurrent use and must never write the response.
type Authenticator interface {
	// Method names the credential type.
	Method() identity.Method
	// Authenticate returns the caller's identity, ErrNoCredential, a
	// *Failure or an *UnavailableError (see the package documentation).
	Authenticate(r *http.Request) (*identity.Identity, error)
}

// ErrNoCredential means the request carries no credential of the
// authenticator's kind.
var ErrNoCredential = errors.New("authn: no credential of this kind")

// NotMineError is returned by an authenticator for a credential that was
// presented where it looks (the Authorization header's Bearer scheme, say)
// but whose form marks it as another method's: an opaque bearer token is
// not the JWT method's, but may be introspection's. It matches
// ErrNoCredential under errors.Is, so that the chain tries the next
// method; the chain remembers it and, when no method claims the
// credential, returns Failure instead of credential_missing or anonymous.
//
// It deliberately does not unwrap to Failure: errors.As(err, **Failure)
// is false, so code that handles failures never mistakes a credential
// still open to another method for a refused one.
type NotMineError struct {
	// Failure is the answer if no method of the chain claims the
	// credential. Never nil.
	Failure *Failure
}

// NotMine wraps the failure to use if no other method claims the
// credential.
func NotMine(f *Failure) *NotMineError { return &NotMineError{Failure: f} }

func (e *NotMineError) Error() string {
	if e.Failure == nil {
		return "authn: presented credential is not of this kind"
	}
	return "authn: presented credential is not of this kind (" + e.Failure.Error() + ")"
}

// failure is the failure to answer with; a NotMineError built without one
// (a bug) still refuses.
func (e *NotMineError) failure(m identity.Method) *Failure {
	if e.Failure != nil {
		return e.Failure
	}
	return &Failure{Method: m, Reason: ReasonUnsupported, Description: "The credential is not accepted on this route."}
}

// Is makes a NotMineError match ErrNoCredential.
func (e *NotMineError) Is(target error) bool { return target == ErrNoCredential }

// Reason is a stable, machine-readable code for an authentication outcome.
// Reasons appear in audit events and never change meaning once released;
// docs/audit.md lists them.
type Reason string

// Reasons shared by credential types. Sub-packages may add their own.
const (
	ReasonOK        Reason = "ok"
	ReasonAnonymous Reason = "anonymous"
	ReasonMissing   Reason = "credential_missing"
	ReasonMalformed Reason = "token_malformed"
	ReasonTooLarge  Reason = "token_too_large"
	ReasonEncrypted Reason = "token_encrypted"
	// ReasonUnsupported: a bearer value that is not a JWS at all (an
	// opaque token), so no JWT check could even start.
	ReasonUnsupported     Reason = "token_unsupported"
	ReasonNested          Reason = "token_nested"
	ReasonAlgorithm       Reason = "algorithm_not_allowed"
	ReasonKeyHeader       Reason = "forbidden_key_header"
	ReasonCrit            Reason = "unsupported_crit"
	ReasonTyp             Reason = "token_type_mismatch"
	ReasonUnknownIssuer   Reason = "unknown_issuer"
	ReasonUnknownKID      Reason = "unknown_kid"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonExpired         Reason = "token_expired"
	ReasonNotYetValid     Reason = "token_not_yet_valid"
	ReasonIssuedInFuture  Reason = "token_issued_in_future"
	ReasonLifetime        Reason = "token_lifetime_exceeded"
	ReasonAudience        Reason = "audience_mismatch"
	ReasonMissingClaim    Reason = "missing_claim"
	ReasonClaimValue      Reason = "claim_mismatch"
	ReasonProviderDenied  Reason = "provider_not_allowed"
	ReasonKeysUnavailable Reason = "keys_unavailable"
	// ReasonAuthenticatorError marks an authenticator that returned neither
	// an identity nor an error (a bug): the request is refused.
	ReasonAuthenticatorError Reason = "authenticator_error"
)

// Failure is a presented credential that is not valid.
type Failure struct {
	Method identity.Method
	Reason Reason
	// Description is safe to show the client (RFC 6750 error_description):
	// it helps an honest client fix its request without telling an
	// attacker which check almost passed.
	Description string
	// What the audit event may record about the rejected credential, when
	// it could be read: never the credential itself.
	Issuer, Subject, CredentialID, Provider string
	// Err is the internal cause, for debug logs only.
	Err error
	// Missing marks the chain's "no credential at all" failure, whatever
	// its reason (credential_missing, or a method's own such as mtls's
	// cert_missing): the challenge then offers every accepted scheme, with
	// no error code (RFC 6750 §3.1).
	Missing bool
}

// IsMissing reports whether f is the chain's "no credential" failure.
func (f *Failure) IsMissing() bool { return f.Missing || f.Reason == ReasonMissing }

func (f *Failure) Error() string {
	msg := "authn: " + string(f.Method) + ": " + string(f.Reason)
	if f.Err != nil {
		msg += ": " + f.Err.Error()
	}
	return msg
}

func (f *Failure) Unwrap() error { return f.Err }

// UnavailableError means a credential could not be checked at all.
type UnavailableError struct {
	Method   identity.Method
	Reason   Reason
	Provider string
	Err      error
}

func (e *UnavailableError) Error() string {
	msg := "authn: " + string(e.Method) + ": " + string(e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnavailableError) Unwrap() error { return e.Err }
