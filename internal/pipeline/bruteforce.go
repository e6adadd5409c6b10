package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// Brute-force protection (rate_limits.brute_force, docs/rate-limits.md):
// failed authentications are counted per client address and per
// credential id; past the threshold the key is locked out. The address is
// checked before the chain runs, so a locked-out address costs a lookup in
// the counter, never a store query or a signature check. A credential id
// is only known once the chain found the credential (an API key's id comes
// from the store): it is checked after the chain, and a locked-out
// credential is refused even when it is right. A locked-out request gets
// the same 429 whatever it presented: the answer never tells whether a
// credential exists.

// Audit reasons of brute-force protection.
const (
	// reasonLockedOut: the request was refused because its address or
	// credential is locked out (authn.decision, deny).
	reasonLockedOut authn.Reason = "locked_out"
	// reasonLockoutIP and reasonLockoutCredential: a lockout started
	// (authn.lockout).
	reasonLockoutIP         authn.Reason = "lockout_ip"
	reasonLockoutCredential authn.Reason = "lockout_credential"
)

// bruteForce is the compiled brute_force block.
type bruteForce struct {
	// ip and credential count per client address and per credential id;
	// nil: not counted. Two counters, so that a key needs no prefix
	// (no allocation) to keep an address and an id apart.
	ip, credential ratelimit.FailureCounter
	now            func() time.Time
}

func (p *Plan) buildBruteForce(client *redisconn.Client, bf *config.BruteForce, maxKeys int) (*bruteForce, error) {
	pol := ratelimit.FailurePolicy{Threshold: bf.Threshold, Window: bf.Window.Std(), Lockout: bf.Lockout.Std()}
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	out := &bruteForce{now: time.Now}
	for _, k := range bf.Keys {
		// One counter per kind and settings, kept across reloads; in
		// Redis, the kind is the namespace (bf:authn-ip:{…}).
		c, _, err := resource.Get(p.scope, resource.Key("bruteforce", struct {
			Kind   string
			Policy ratelimit.FailurePolicy
			Max    int
			Client string
		}{k, pol, maxKeys, fmt.Sprintf("%p", client)}), func() (ratelimit.FailureCounter, func(), error) {
			if client == nil {
				l, err := ratelimit.NewLocalFailures(pol, maxKeys)
				return l, func() {}, err
			}
			r, err := ratelimit.NewRedisFailures(client, pol, "authn-"+k)
			if err != nil {
				return nil, nil, err
			}
			f, err := ratelimit.NewFallbackFailures(r, pol, maxKeys)
			return f, func() {}, err
		})
		if err != nil {
			return nil, err
		}
		switch k {
		case "ip":
			out.ip = c
		case "credential":
			out.credential = c
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
	}
	return out, nil
}

// lockedOut is the refusal of a locked-out request.
func lockedOut(retry time.Duration) error {
	return &reply.TooManyRequestsError{RetryAfter: max(retry, time.Second)}
}

// blocked reports whether key is locked out; an error of the store
// (a FallbackFailures never returns one) counts as not blocked here: the
// credential is still checked in full, so this never opens anything.
func (b *bruteForce) blocked(ctx context.Context, c ratelimit.FailureCounter, key string) (bool, time.Duration) {
	blocked, left, err := c.Blocked(ctx, key, b.now())
	return err == nil && blocked, left
}

// beforeChain refuses a locked-out address.
func (b *bruteForce) beforeChain(x *Exchange) error {
	if b.ip == nil {
		return nil
	}
	ip := x.clientIPText()
	if ip == "" {
		return nil
	}
	if locked, left := b.blocked(x.Request.Context(), b.ip, ip); locked {
		return lockedOut(left)
	}
	return nil
}

// beforeVerify refuses a locked-out credential whose id k reads from the
// request before verifying it (a basic user name): whatever the password,
// the answer is the same 429, so a lockout never confirms a guess.
func (b *bruteForce) beforeVerify(x *Exchange, k authn.LockoutKeyer) error {
	if b.credential == nil {
		return nil
	}
	id := k.LockoutKey(x.Request)
	if id == "" {
		return nil
	}
	if locked, left := b.blocked(x.Request.Context(), b.credential, id); locked {
		return lockedOut(left)
	}
	return nil
}

// afterSuccess refuses a locked-out credential, and ends the credential's
// run of failures. The address's count is not reset by a success: an
// attacker holding one valid credential must not clear his address's
// count by interleaving it.
func (b *bruteForce) afterSuccess(x *Exchange, id *identity.Identity) error {
	if b.credential == nil || id.IsAnonymous() || id.CredentialID == "" {
		return nil
	}
	ctx := x.Request.Context()
	if locked, left := b.blocked(ctx, b.credential, id.CredentialID); locked {
		return lockedOut(left)
	}
	_ = b.credential.Reset(ctx, id.CredentialID)
	return nil
}

// failed counts a failed authentication (a refused credential, never an
// outage or a missing credential) and audits each lockout it starts.
// Only a credential id the authenticator found (an API key's id from the
// store) is counted: a subject read from a token whose signature did not
// verify is the attacker's choice, and counting it would let anyone lock
// anyone out.
func (b *bruteForce) failed(x *Exchange, fail *authn.Failure, log audit.Logger) {
	if fail.IsMissing() {
		return
	}
	ctx := x.Request.Context()
	if b.ip != nil {
		if ip := x.clientIPText(); ip != "" {
			if locked, _, _ := b.ip.Fail(ctx, ip, b.now()); locked {
				auditLockout(x, log, reasonLockoutIP, fail)
				observeLockout(x, "ip")
			}
		}
	}
	if b.credential != nil && fail.CredentialID != "" {
		if locked, _, _ := b.credential.Fail(ctx, fail.CredentialID, b.now()); locked {
			auditLockout(x, log, reasonLockoutCredential, fail)
			observeLockout(x, "credential")
		}
	}
}

func auditLockout(x *Exchange, log audit.Logger, reason authn.Reason, fail *authn.Failure) {
	ev := x.auditEvent(audit.TypeLockout)
	ev.Outcome, ev.Reason, ev.AuthMethod = audit.OutcomeDeny, string(reason), string(fail.Method)
	if reason == reasonLockoutCredential {
		ev.CredentialID, ev.Subject, ev.Issuer, ev.Provider = fail.CredentialID, fail.Subject, fail.Issuer, fail.Provider
	}
	log.Log(ev)
}

func observeLockout(x *Exchange, key string) {
	if o, ok := x.Route.observer.(RateLimitObserver); ok {
		o.Lockout(key)
	}
}

// degraded counts the decisions a fallback made while Redis could not.
func (b *bruteForce) degraded() uint64 {
	var n uint64
	for _, c := range []ratelimit.FailureCounter{b.ip, b.credential} {
		if f, ok := c.(*ratelimit.FallbackFailures); ok {
			n += f.Degraded()
		}
	}
	return n
}
