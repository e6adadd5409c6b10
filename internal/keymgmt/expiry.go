package keymgmt

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// maxTrackedExpiries bounds the set of keys WatchExpiry remembers having
// reported. Entries leave the set once their expiry is behind the last
// sweep; the bound only matters for a burst of expiries in one interval.
const maxTrackedExpiries = 100_000

// expiryLookback is the least overlap between consecutive sweep windows.
const expiryLookback = time.Minute

// WatchExpiry reports expiring keys until ctx ends. Every interval
// (default one minute when interval ≤ 0) it lists all keys and emits one
// TypeKeyExpired event for each active key whose ExpiresAt passed since
// the previous sweep. The first window starts when WatchExpiry is called,
// so keys that expired while no watcher ran are not reported after a
// restart. Revoked keys are not reported (their revocation was). A sweep
// the store cannot answer is retried over the same window at the next
// tick.
//
// Each window reaches back a little before the previous sweep (at least
// expiryLookback), so an expiry written just as a sweep listed the keys
// (a rotation with zero grace) is still seen; the ids already reported
// are remembered, in a bounded set, so nothing is reported twice.
//
// It blocks; run it in a goroutine. It starts none of its own.
func (s *Service) WatchExpiry(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	start := s.now()
	w := &expiryWatcher{s: s, since: start, start: start, lookback: max(interval, expiryLookback), emitted: make(map[string]time.Time)}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.sweep(ctx)
		}
	}
}

// expiryWatcher is the state of one WatchExpiry loop.
type expiryWatcher struct {
	s        *Service
	since    time.Time            // end of the last successful sweep's window
	lookback time.Duration        // overlap of consecutive windows
	start    time.Time            // never report expiries before this
	emitted  map[string]time.Time // key id → the expiry reported
}

// sweep emits events for keys with since-lookback < ExpiresAt ≤ now (and
// after the watcher started) that were not reported yet, and advances the
// window.
func (w *expiryWatcher) sweep(ctx context.Context) {
	now := w.s.now()
	keys, err := w.s.Store.ListKeys(ctx, "")
	if err != nil {
		return // retry this window next time
	}
	var consumers map[string]*apikey.Consumer
	for _, k := range keys {
		if k.Status != apikey.StatusActive || k.ExpiresAt == nil {
			continue
		}
		exp := *k.ExpiresAt
		if !exp.After(w.since.Add(-w.lookback)) || !exp.After(w.start) || exp.After(now) {
			continue
		}
		if prev, ok := w.emitted[k.ID]; ok && prev.Equal(exp) {
			continue
		}
		if consumers == nil {
			consumers = w.consumers(ctx)
		}
		w.s.log(TypeKeyExpired, consumers[k.ConsumerID], k.ConsumerID, k.ID)
		if len(w.emitted) < maxTrackedExpiries {
			w.emitted[k.ID] = exp
		}
	}
	w.since = now
	for id, exp := range w.emitted {
		if !exp.After(w.since.Add(-w.lookback)) {
			delete(w.emitted, id)
		}
	}
}

// consumers maps ids to consumers for event names; best effort.
func (w *expiryWatcher) consumers(ctx context.Context) map[string]*apikey.Consumer {
	m := make(map[string]*apikey.Consumer)
	cs, err := w.s.Store.ListConsumers(ctx)
	if err != nil {
		return m
	}
	for _, c := range cs {
		m[c.ID] = c
	}
	return m
}
