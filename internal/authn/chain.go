package authn

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Chain is a route's authentication requirement: an ordered list of
// accepted methods (a slice, never a map, so the order is the one written
// in the configuration) combined with OR (the default) or AND.
type Chain struct {
	// Authenticators in the order they are tried.
	Authenticators []Authenticator
	// RequireAll makes the chain an AND: every authenticator must succeed
	// (e.g. mTLS and a JWT). The identity is a composite (identity.Compose):
	// the Primary authenticator's subject, scopes, roles, groups and
	// claims, with the evidence of every credential and the earliest
	// expiry.
	RequireAll bool
	// Primary is the method whose identity an AND chain answers with;
	// empty means the last one (the default). Ignored without RequireAll.
	Primary identity.Method
	// AllowAnonymous lets a request with no credential at all through as
	// identity.Anonymous. A request with a bad credential is still refused,
	// and so is one with a credential that no method claimed (a
	// *NotMineError from every method that saw it).
	AllowAnonymous bool
}

// Authenticate applies the chain to r. It returns the identity, or an error
// that is ErrNoCredential-free: a *Failure (401) or an *UnavailableError (503).
func (c *Chain) Authenticate(r *http.Request) (*identity.Identity, error) {
	if c.RequireAll {
		return c.all(r)
	}
	// unclaimed is the first credential presented that its method declared
	// another method's: if nobody claims it, it is refused with the first
	// method's failure (the client meant to authenticate; anonymous or
	// "credential missing" would be a lie, and the former a bypass).
	var (
		unclaimed *NotMineError
		by        identity.Method
	)
	for _, a := range c.Authenticators {
		id, err := a.Authenticate(r)
		switch {
		case err == nil && id != nil:
			return id, nil
		case errors.Is(err, ErrNoCredential):
			if unclaimed == nil {
				if nm, ok := errors.AsType[*NotMineError](err); ok {
					unclaimed, by = nm, a.Method()
				}
			}
			continue
		case err == nil:
			// An authenticator returning neither identity nor error is a
			// bug; deny rather than guess.
			return nil, &UnavailableError{Method: a.Method(), Reason: ReasonAuthenticatorError, Err: errors.New("authn: no identity and no error")}
		default:
			// A presented credential that failed stops the chain: no
			// fall-through to another method or to anonymous.
			return nil, err
		}
	}
	if unclaimed != nil {
		return nil, unclaimed.failure(by)
	}
	if c.AllowAnonymous {
		return identity.Anonymous, nil
	}
	return nil, c.missing()
}

func (c *Chain) all(r *http.Request) (*identity.Identity, error) {
	var buf [4]*identity.Identity // the usual chain fits: no allocation
	ids := buf[:0]
	for _, a := range c.Authenticators {
		id, err := a.Authenticate(r)
		switch {
		case errors.Is(err, ErrNoCredential):
			if nm, ok := errors.AsType[*NotMineError](err); ok {
				// Presented, but not of this method's kind: its own
				// failure says more than "missing".
				return nil, nm.failure(a.Method())
			}
			reason := ReasonMissing
			if mr, ok := a.(MissingReasoner); ok {
				reason = mr.MissingReason()
			}
			return nil, &Failure{Method: a.Method(), Reason: reason, Missing: true, Description: "This route requires " + string(a.Method()) + " credentials as well."}
		case err != nil:
			return nil, err
		case id == nil:
			return nil, &UnavailableError{Method: a.Method(), Reason: ReasonAuthenticatorError, Err: errors.New("authn: no identity and no error")}
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, c.missing()
	}
	primary := len(ids) - 1
	if c.Primary != "" {
		for i, a := range c.Authenticators {
			if a.Method() == c.Primary {
				primary = i
				break
			}
		}
	}
	return identity.Compose(ids, primary), nil
}

func (c *Chain) missing() *Failure {
	var m identity.Method
	reason := ReasonMissing
	if len(c.Authenticators) > 0 {
		m = c.Authenticators[0].Method()
		if mr, ok := c.Authenticators[0].(MissingReasoner); ok {
			reason = mr.MissingReason()
		}
	}
	return &Failure{Method: m, Reason: reason, Missing: true, Description: "Authentication is required."}
}

// MissingReasoner is implemented by an authenticator whose credential has
// a more specific "missing" reason than credential_missing (mtls:
// cert_missing). The chain uses the first method's when nothing at all
// was presented.
type MissingReasoner interface {
	MissingReason() Reason
}
