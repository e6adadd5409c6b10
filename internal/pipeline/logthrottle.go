package pipeline

import (
	"sync"
	"time"
)

// warnEvery is how often a throttled warning may be logged per reason.
const warnEvery = 10 * time.Second

// logThrottle lets one log line per reason through per interval and counts
// the ones it held back, so an outage that fails every request (a store
// or identity provider down) costs a line every few seconds, not one per
// request. Reasons come from code (a bounded set), never from requests.
// The zero value is ready to use.
type logThrottle struct {
	every time.Duration // zero: warnEvery

	mu   sync.Mutex
	last map[string]*throttled
}

type throttled struct {
	at         time.Time
	suppressed int
}

// allow reports whether a line for reason may be logged at now, and how
// many were held back since the last one that was.
func (t *logThrottle) allow(reason string, now time.Time) (ok bool, suppressed int) {
	every := t.every
	if every == 0 {
		every = warnEvery
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = make(map[string]*throttled)
	}
	s, seen := t.last[reason]
	if !seen {
		t.last[reason] = &throttled{at: now}
		return true, 0
	}
	if now.Sub(s.at) < every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.at, s.suppressed = now, 0
	return true, n
}
