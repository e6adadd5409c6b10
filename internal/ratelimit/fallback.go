package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// OnError is what a limit does when its shared store (Redis) cannot
// decide: the policy a limit documents.
type OnError int

const (
	// OnErrorLocal counts the limit in this replica alone, with its rate
	// and burst divided by the expected number of replicas: the fleet as
	// a whole keeps roughly the shared limit. The default.
	OnErrorLocal OnError = iota
	// OnErrorDeny refuses the request (fail closed): for limits that
	// protect something that must not be overrun, such as a paid quota.
	OnErrorDeny
	// OnErrorAllow ignores the limit while Redis is down. Dangerous: a
	// Redis outage then removes the limit entirely, which is exactly
	// when an attacker who can take Redis down wants it gone. Only for
	// limits that are a courtesy, never a protection.
	OnErrorAllow
)

func (p OnError) String() string {
	switch p {
	case OnErrorLocal:
		return "local"
	case OnErrorDeny:
		return "deny"
	case OnErrorAllow:
		return "allow"
	}
	return fmt.Sprintf("OnError(%d)", int(p))
}

// ParseOnError reads the configuration spelling of a policy.
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "", "local":
		return OnErrorLocal, nil
	case "deny":
		return OnErrorDeny, nil
	case "allow":
		return OnErrorAllow, nil
	}
	return 0, fmt.Errorf("ratelimit: on_redis_error %q: use local, deny or allow", s)
}

// FallbackOptions configure a Fallback.
type FallbackOptions struct {
	// OnError is the policy of each limit, in the limits' order. Missing
	// entries are OnErrorLocal.
	OnError []OnError
	// Replicas is the expected number of replicas sharing the limits:
	// OnErrorLocal limits are divided by it. Default 1.
	Replicas int
	// DenyRetryAfter is the Retry-After of a request refused by an
	// OnErrorDeny limit. Default 1s.
	DenyRetryAfter time.Duration
	// GCRA tunes the local limiters.
	GCRA GCRAOptions
}

// Fallback is a Limiter that asks its primary (Redis) and, when the
// primary fails, applies each limit's OnError policy instead. It never
// returns an error: every request gets a decision.
type Fallback struct {
	primary  Limiter
	policies []OnError
	local    []*GCRA // nil for limits that are not OnErrorLocal
	deny     time.Duration
	degraded atomic.Uint64
}

var _ Limiter = (*Fallback)(nil)

// NewFallback wraps primary with the per-limit policies.
func NewFallback(primary Limiter, o FallbackOptions) (*Fallback, error) {
	limits := primary.Limits()
	if len(o.OnError) > len(limits) {
		return nil, fmt.Errorf("ratelimit: %d policies for %d limits", len(o.OnError), len(limits))
	}
	f := &Fallback{primary: primary, deny: o.DenyRetryAfter, local: make([]*GCRA, len(limits))}
	if f.deny <= 0 {
		f.deny = time.Second
	}
	for i, l := range limits {
		p := OnErrorLocal
		if i < len(o.OnError) {
			p = o.OnError[i]
		}
		f.policies = append(f.policies, p)
		if p == OnErrorLocal {
			g, err := NewGCRA(l.Divide(max(o.Replicas, 1)), o.GCRA)
			if err != nil {
				return nil, err
			}
			f.local[i] = g
		}
	}
	return f, nil
}

// Limits are the primary's limits.
func (f *Fallback) Limits() []Limit { return f.primary.Limits() }

// Degraded counts the decisions made by the policies instead of the
// primary (a metric).
func (f *Fallback) Degraded() uint64 { return f.degraded.Load() }

// Allow implements Limiter: the primary's decision, or, when it fails,
// the policies' — all or nothing, like the primary. The error is always
// nil; Degraded counts the fallbacks.
func (f *Fallback) Allow(ctx context.Context, keys []string, now time.Time, cost int, out []Decision) (bool, error) {
	allowed, err := f.primary.Allow(ctx, keys, now, cost, out)
	if err == nil {
		return allowed, nil
	}
	if len(keys) != len(f.policies) || len(out) < len(f.policies) {
		return false, err // a caller bug, not an outage
	}
	f.degraded.Add(1)
	allowed = true
	for i, p := range f.policies {
		switch p {
		case OnErrorLocal:
			out[i] = f.local[i].Allow(keys[i], now, cost)
		case OnErrorDeny:
			out[i] = Decision{RetryAfter: f.deny, ResetAfter: f.deny}
		case OnErrorAllow:
			l := f.Limits()[i]
			out[i] = Decision{Allowed: true, Remaining: l.burst()}
		}
		if !out[i].Allowed {
			allowed = false
		}
	}
	if !allowed {
		for i, g := range f.local {
			if g != nil && out[i].Allowed {
				g.Refund(keys[i], now, cost)
			}
			out[i].Allowed = false
		}
	}
	return allowed, nil
}
