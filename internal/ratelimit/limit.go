// Package ratelimit holds the gateway's limiters: GCRA rate limits in
// memory (GCRA) and in Redis (Redis), the same semantics in both; a
// Fallback that applies each limit's documented policy when Redis cannot
// answer; failure counters for brute-force protection (FailureCounter);
// per-key concurrency limits (Concurrency); and the IETF RateLimit header
// fields.
//
// GCRA (the generic cell rate algorithm) keeps one number per key, the
// theoretical arrival time (TAT): the time at which the key would be
// fully replenished. A request of cost c is admitted when
//
//	max(TAT, now) + c·T − now ≤ τ
//
// where T = Period/Rate is the emission interval and τ = Burst·T the
// burst tolerance; admitting it moves TAT to max(TAT, now) + c·T. A key
// whose TAT is in the past is fully replenished and carries no state, so
// it can be dropped: that is what keeps memory bounded.
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Limit is Rate events per Period, with bursts of up to Burst events.
type Limit struct {
	// Name identifies the limit in the RateLimit header fields and in
	// logs ("burst", "daily"). Letters, digits, '-', '_' and '.'.
	Name string
	// Rate is the number of events admitted per Period, sustained.
	Rate int
	// Period is the window Rate is counted over.
	Period time.Duration
	// Burst is how many events may pass at once after a quiet time.
	// Default (0): Rate, so that Rate events fit in any window of Period.
	Burst int
}

// Interval is the emission interval T = Period/Rate.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// burst is Burst with its default.
func (l Limit) burst() int {
	if l.Burst <= 0 {
		return l.Rate
	}
	return l.Burst
}

// clampCost is cost between 1 and burst+1: any cost above the burst
// never fits, and clamping keeps c·T from overflowing.
func (l Limit) clampCost(cost int) int {
	return min(max(cost, 1), l.burst()+1)
}

// Validate reports a limit that cannot work.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 1:
		return fmt.Errorf("ratelimit: limit %q: rate must be at least 1", l.Name)
	case l.Period <= 0:
		return fmt.Errorf("ratelimit: limit %q: period must be greater than 0", l.Name)
	case l.Burst < 0:
		return fmt.Errorf("ratelimit: limit %q: burst must not be negative", l.Name)
	case l.Period/time.Duration(l.Rate) < time.Microsecond:
		// Redis counts in microseconds; finer limits are a
		// configuration mistake anyway (a million events a second).
		return fmt.Errorf("ratelimit: limit %q: more than one event per microsecond", l.Name)
	case l.Period > 366*24*time.Hour:
		return fmt.Errorf("ratelimit: limit %q: period longer than a year", l.Name)
	case !validName(l.Name):
		return fmt.Errorf("ratelimit: limit name %q: use 1 to 64 letters, digits, '-', '_' or '.'", l.Name)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Divide returns the limit a replica keeps on its own when it cannot
// share the count with n replicas: Rate and Burst divided by n, at least
// one event.
func (l Limit) Divide(n int) Limit {
	if n <= 1 {
		return l
	}
	d := l
	d.Rate = max(l.Rate/n, 1)
	d.Burst = max(l.burst()/n, 1)
	// Keep the emission interval a whole number of events per period.
	return d
}

// Decision is the outcome of one limit for one request.
type Decision struct {
	// Allowed reports that the request fits the limit (and was counted).
	Allowed bool
	// Remaining is the number of cost-1 events that would still be
	// admitted now.
	Remaining int
	// RetryAfter is, when denied, how long until a request of the same
	// cost would be admitted. Zero when allowed. A request costing more
	// than the burst is never admitted: RetryAfter is then the time to a
	// full replenishment, and retrying will not help.
	RetryAfter time.Duration
	// ResetAfter is how long until the limit is fully replenished (the
	// RateLimit field's t parameter).
	ResetAfter time.Duration
}

// ErrCost is returned for a cost below 1.
var ErrCost = errors.New("ratelimit: cost must be at least 1")
