package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Limiter checks one request against an ordered set of limits, each with
// its own key, all or nothing: a request denied by one limit is counted
// by none. Implementations: Local (memory), Redis (shared by replicas)
// and Fallback (Redis, with each limit's policy when Redis fails).
type Limiter interface {
	// Allow checks keys[i] against Limits()[i] at now, for an event of
	// the given cost, and writes each limit's decision to out[i] (out
	// and keys have len(Limits()) elements). allowed is true when every
	// limit admitted the request, which is then counted by all of them.
	// An error means no decision was made (Redis unreachable); the
	// caller must not admit the request on an error.
	Allow(ctx context.Context, keys []string, now time.Time, cost int, out []Decision) (allowed bool, err error)
	// Limits are the limits checked, in order.
	Limits() []Limit
}

// Local is a Limiter in memory: one GCRA per limit.
type Local struct {
	limits []Limit
	gcras  []*GCRA
}

var _ Limiter = (*Local)(nil)

// NewLocal returns a Limiter for limits, kept in this process.
func NewLocal(limits []Limit, o GCRAOptions) (*Local, error) {
	if len(limits) == 0 {
		return nil, fmt.Errorf("ratelimit: no limits")
	}
	l := &Local{limits: append([]Limit(nil), limits...)}
	for _, lim := range limits {
		g, err := NewGCRA(lim, o)
		if err != nil {
			return nil, err
		}
		l.gcras = append(l.gcras, g)
	}
	return l, nil
}

// Limits are the limits checked, in order.
func (l *Local) Limits() []Limit { return l.limits }

// GCRA is the i-th limit's store (tests, sweeping).
func (l *Local) GCRA(i int) *GCRA { return l.gcras[i] }

// Allow implements Limiter. It never fails and allocates nothing for
// keys already held.
func (l *Local) Allow(_ context.Context, keys []string, now time.Time, cost int, out []Decision) (bool, error) {
	if len(keys) != len(l.gcras) || len(out) < len(l.gcras) {
		return false, fmt.Errorf("ratelimit: %d keys and %d decisions for %d limits", len(keys), len(out), len(l.gcras))
	}
	allowed := true
	for i, g := range l.gcras {
		out[i] = g.Allow(keys[i], now, cost)
		if !out[i].Allowed {
			allowed = false
		}
	}
	if !allowed {
		// All or nothing: give back what the admitting limits counted.
		for i, g := range l.gcras {
			if out[i].Allowed {
				g.Refund(keys[i], now, cost)
				out[i].Allowed = false
			}
		}
	}
	return allowed, nil
}

// Sweep drops the replenished keys of every limit.
func (l *Local) Sweep(now time.Time) int {
	n := 0
	for _, g := range l.gcras {
		n += g.Sweep(now)
	}
	return n
}
