package apikey

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// Toucher defaults and bounds.
const (
	// DefaultTouchInterval is how often a Toucher writes by default.
	DefaultTouchInterval = 10 * time.Second
	// MaxPendingTouches bounds the keys a Toucher remembers between
	// writes. When it is reached the Toucher writes early; touches of
	// further keys are dropped until then (last-used times are
	// best-effort).
	MaxPendingTouches = 100_000
	// touchTimeout bounds one TouchKeys call.
	touchTimeout = 10 * time.Second
)

// Toucher records when keys were last used. It keeps the latest time per
// key in memory and writes them in one Store.TouchKeys call every
// interval and on Close: never a store write per request. Write errors are
// logged and the batch is dropped (the keys still in use are touched again
// in the next one); they never fail a request.
type Toucher struct {
	store    apikey.Store
	interval time.Duration
	log      *slog.Logger
	max      int

	mu      sync.Mutex
	pending map[string]time.Time
	closed  bool

	full      chan struct{} // wakes the writer early when pending is full
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewToucher starts a Toucher writing to store every interval (default
// DefaultTouchInterval when interval <= 0). log receives write errors
// (default slog.Default()). Close stops it.
func NewToucher(store apikey.Store, interval time.Duration, log *slog.Logger) *Toucher {
	if interval <= 0 {
		interval = DefaultTouchInterval
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Toucher{
		store:    store,
		interval: interval,
		log:      log,
		max:      MaxPendingTouches,
		pending:  make(map[string]time.Time),
		full:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go t.run()
	return t
}

// Touch records that key keyID was used at at. It never blocks on the
// store. Touches after Close are ignored.
func (t *Toucher) Touch(keyID string, at time.Time) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	if prev, ok := t.pending[keyID]; ok {
		if at.After(prev) {
			t.pending[keyID] = at
		}
	} else if len(t.pending) < t.max {
		t.pending[keyID] = at
	}
	full := len(t.pending) >= t.max
	t.mu.Unlock()
	if full {
		select {
		case t.full <- struct{}{}:
		default:
		}
	}
}

// Close stops the Toucher and writes what it still holds. It returns that
// last write's error; later calls return the same.
func (t *Toucher) Close() error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.stop)
		<-t.done
		t.closeErr = t.flush()
	})
	return t.closeErr
}

func (t *Toucher) run() {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_ = t.flush()
		case <-t.full:
			_ = t.flush()
		case <-t.stop:
			return
		}
	}
}

// flush writes the pending times in one call. Only run and, after run has
// returned, Close call it, so writes never overlap.
func (t *Toucher) flush() error {
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return nil
	}
	batch := t.pending
	t.pending = make(map[string]time.Time, len(batch))
	t.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
	defer cancel()
	if err := t.store.TouchKeys(ctx, batch); err != nil {
		t.log.Warn("authn/apikey: recording last-used times failed; batch dropped", "keys", len(batch), "err", err)
		return err
	}
	return nil
}
