// Package quota counts requests per caller over days and months: a
// Quota says how many requests a caller may make in a period (a calendar
// day or month in a time zone, or a rolling day or month), Window tells
// which counting window a moment falls in, and a Store keeps the counts
// durably (Redis, or the API-key store: bbolt or PostgreSQL).
//
// A rolling quota is a sliding-window counter: the count of the current
// fixed window plus the previous window's count weighted by the share of
// the previous window still inside the sliding one. It never admits more
// than the limit within one window's length, and it needs two counters per
// caller instead of a log of every request.
package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Period is the length of a quota's window.
type Period uint8

// Periods.
const (
	Day Period = iota + 1
	Month
)

// ParsePeriod reads "day" or "month".
func ParsePeriod(s string) (Period, error) {
	switch s {
	case "day":
		return Day, nil
	case "month":
		return Month, nil
	}
	return 0, fmt.Errorf("quota: period %q: use day or month", s)
}

func (p Period) String() string {
	switch p {
	case Day:
		return "day"
	case Month:
		return "month"
	}
	return "?"
}

// Length is the period's nominal length: a day is 24 h, a month 30 days
// (the length of a rolling window, and the w of the RateLimit-Policy
// header).
func (p Period) Length() time.Duration {
	if p == Month {
		return 30 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// Quota is at most Limit requests per Period.
type Quota struct {
	// Name names the quota in headers, the admin API and audit events.
	Name string
	// Limit is the number of requests admitted per window (at least 1).
	Limit  int64
	Period Period
	// Rolling selects a sliding window instead of the calendar one.
	Rolling bool
	// Location is the time zone of calendar windows; nil: UTC.
	Location *time.Location
}

// Window is the counting window of a moment.
type Window struct {
	// ID identifies the window within its quota: the Unix time of its
	// start (calendar), or its index since the epoch (rolling).
	ID int64
	// Start and End bound the window; End is a calendar quota's reset.
	Start, End time.Time
	// Prev is the previous window's ID and PrevWeight the share of its
	// count that still counts (rolling only; 0 for calendar quotas).
	Prev       int64
	PrevWeight float64
}

// Window returns the counting window now falls in.
func (q Quota) Window(now time.Time) Window {
	if q.Rolling {
		l := int64(q.Period.Length() / time.Second)
		sec := now.Unix()
		idx := sec / l
		start := time.Unix(idx*l, 0)
		elapsed := now.Sub(start)
		return Window{
			ID: idx, Start: start, End: start.Add(q.Period.Length()),
			Prev: idx - 1, PrevWeight: 1 - float64(elapsed)/float64(q.Period.Length()),
		}
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	var start, end time.Time
	if q.Period == Month {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		end = start.AddDate(0, 1, 0)
	} else {
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		end = start.AddDate(0, 0, 1)
	}
	return Window{ID: start.Unix(), Start: start, End: end, Prev: -1}
}

// ExpireAt is when a window's counter is no longer needed: its end, or
// for a rolling quota the end of the next window (which weighs it).
func (q Quota) ExpireAt(w Window) time.Time {
	if q.Rolling {
		return w.End.Add(q.Period.Length())
	}
	return w.End
}

// prevPart is the weighted count of the previous window.
func prevPart(prev int64, weight float64) int64 {
	if weight <= 0 || prev <= 0 {
		return 0
	}
	return int64(math.Floor(float64(prev) * weight))
}

// RetryAfter is how long a caller refused at now must wait, with the
// counts cur (this window) and prev (the previous one), until one more
// request fits, assuming nobody else counts meanwhile.
func (q Quota) RetryAfter(w Window, now time.Time, cur, prev int64) time.Duration {
	if !q.Rolling {
		return max(w.End.Sub(now), time.Second)
	}
	l := float64(q.Period.Length())
	room := float64(q.Limit - 1 - cur)
	var at time.Time
	if room >= 0 && prev > 0 {
		// The previous window drains: prev·(1−x) ≤ room.
		x := 1 - room/float64(prev)
		at = w.Start.Add(time.Duration(math.Ceil(x * l)))
	} else {
		// This window must drain after it ends: cur·(1−y) ≤ limit−1.
		y := 1 - float64(q.Limit-1)/float64(max(cur, 1))
		at = w.End.Add(time.Duration(math.Ceil(y * l)))
	}
	return max(at.Sub(now), time.Second)
}

// ResetAfter is the RateLimit header's t: how long until the quota is
// whole again (calendar: the end of the window; rolling: until the
// counts weigh nothing, given cur).
func (q Quota) ResetAfter(w Window, now time.Time, cur int64) time.Duration {
	if q.Rolling && cur > 0 {
		return q.ExpireAt(w).Sub(now)
	}
	return w.End.Sub(now)
}

// Usage is one quota's use by one caller (the admin API's usage).
type Usage struct {
	// Policy is the rate-limit policy holding the quota.
	Policy string `json:"policy"`
	// Name is the quota's name.
	Name string `json:"name"`
	// Period is day or month; Calendar is false for a rolling window.
	Period   string `json:"period"`
	Calendar bool   `json:"calendar"`
	// Limit and Used: requests admitted per period, and used so far
	// (rolling: with the previous window's weighted share).
	Limit int64 `json:"limit"`
	Used  int64 `json:"used"`
	// Reset is when the quota is whole again (UTC, whole seconds).
	Reset time.Time `json:"reset"`
}

// Take asks a Store to count one request.
type Take struct {
	// Key is the caller's counter (namespaced by policy and quota).
	Key string
	// Window is the counting window; Prev and PrevWeight weigh the
	// previous one in (rolling quotas; PrevWeight 0: none).
	Window, Prev int64
	PrevWeight   float64
	// Limit is the quota's limit.
	Limit int64
	// ExpireAt is when the window's counter may be dropped.
	ExpireAt time.Time
}

// Result is a Store's answer to a Take.
type Result struct {
	// OK reports that the request was counted (it fits the quota).
	OK bool
	// Cur is this window's count (after counting), Prev the previous
	// window's (rolling quotas).
	Cur, Prev int64
}

// Used is the count the caller has used: the window's count plus the
// previous window's weighted count.
func (r Result) Used(weight float64) int64 { return r.Cur + prevPart(r.Prev, weight) }

// Store keeps the counts. Take is atomic: two replicas counting the same
// caller at once never both take the last request, and a Take that
// returned OK is durable (committed) before it returns.
type Store interface {
	// Take counts one request if Cur + floor(Prev·PrevWeight) < Limit.
	Take(ctx context.Context, t Take) (Result, error)
	// Counts returns the counts of a key's windows (0 for none).
	Counts(ctx context.Context, key string, window, prev int64) (cur, prevN int64, err error)
	// MarkExceeded records that the key's window was exceeded; first is
	// true for the first call per key and window, across replicas (the
	// quota.exceeded audit event goes out once per period).
	MarkExceeded(ctx context.Context, key string, window int64, expireAt time.Time) (first bool, err error)
}

// ErrUnavailable wraps a store failure: no decision was made.
var ErrUnavailable = errors.New("quota: store unavailable")

// Capacity is the most the window's own count may reach given the
// previous window's count: Limit − floor(prev·weight).
func Capacity(limit, prev int64, weight float64) int64 {
	return limit - prevPart(prev, weight)
}
