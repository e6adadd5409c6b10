package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Store keeps entries durably. The embedded (bbolt) and PostgreSQL key
// stores implement it. Errors wrap apikey.ErrNotFound (DeleteRevocation of
// an unknown id) and apikey.ErrUnavailable (the store cannot be reached),
// so callers fail closed.
type Store interface {
	// AddRevocations stores entries (validated with Entry.Validate) in one
	// transaction and announces the change to every replica of the store.
	AddRevocations(ctx context.Context, entries []*Entry) error
	// ListRevocations returns every entry still active at now, ordered by
	// CreatedAt then ID.
	ListRevocations(ctx context.Context, now time.Time) ([]*Entry, error)
	// DeleteRevocation removes an entry and announces the change.
	DeleteRevocation(ctx context.Context, id string) error
	// PruneRevocations deletes entries that expired before now and
	// returns how many; expired entries are ignored anyway.
	PruneRevocations(ctx context.Context, now time.Time) (int, error)
}

// Feed pushes changes of a store's list to a replica: PostgreSQL
// LISTEN/NOTIFY, Redis pub/sub (package redisfeed), or both (JoinFeeds). The feed calls the function
// given to Subscribe after every change it hears of, and after it
// reconnects (changes may have been missed meanwhile); the replica then
// reloads the whole list.
type Feed interface {
	// Subscribe registers changed; the returned function unregisters it.
	// changed must be quick and must not block.
	Subscribe(changed func()) (cancel func())
	// Listening reports whether changes are being pushed now. While it
	// is false the replica polls the store every poll interval.
	Listening() bool
}

// Default timing of ReplicaConfig.
const (
	DefaultPollInterval   = time.Second
	DefaultResyncInterval = time.Minute
	DefaultLoadTimeout    = 5 * time.Second
)

// ReplicaConfig configures NewReplica.
type ReplicaConfig struct {
	// Store holds the list. Required.
	Store Store
	// Feed pushes changes; nil when this process is the store's only
	// writer (the embedded store): the replica then reloads after its own
	// writes (Sync) and every ResyncInterval.
	Feed Feed
	// PollInterval is how often the store is read while the feed is down
	// or the last load failed: the bound on propagation then. Default
	// DefaultPollInterval (1s).
	PollInterval time.Duration
	// ResyncInterval is how often the whole list is reloaded even while
	// the feed is up (a safety net for a lost notification), and expired
	// entries pruned from the store. Default DefaultResyncInterval (1m).
	ResyncInterval time.Duration
	// LoadTimeout bounds one load. Default DefaultLoadTimeout (5s).
	LoadTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives load failures and recoveries (one line each, not one
	// per attempt). Default slog.Default().
	Log *slog.Logger
}

// Replica keeps a List equal to its store's list.
type Replica struct {
	List List

	cfg    ReplicaConfig
	kick   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
	unsub  func()
	start  sync.Once
	closeO sync.Once

	failing  atomic.Bool
	lastLoad atomic.Int64 // unix nanoseconds of the last good load
	loadMu   sync.Mutex   // one load at a time; Sync and the loop share it
}

// NewReplica returns a replica over cfg.Store; Start loads it.
func NewReplica(cfg ReplicaConfig) (*Replica, error) {
	if cfg.Store == nil {
		return nil, errors.New("revocation: a replica needs a store")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = DefaultLoadTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Replica{cfg: cfg, kick: make(chan struct{}, 1), done: make(chan struct{})}
	r.List.Now = cfg.Now
	return r, nil
}

// Start subscribes to the feed, makes a first load (bounded by
// LoadTimeout; its failure is returned, and the replica keeps trying every
// poll interval) and starts the goroutine that keeps the list current
// until Close. Until a load succeeds, Ready fails and Check reports the
// list as not loaded. Later calls do nothing.
func (r *Replica) Start() error {
	var err error
	r.start.Do(func() {
		if r.cfg.Feed != nil {
			r.unsub = r.cfg.Feed.Subscribe(r.Changed)
		}
		err = r.Sync(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		go r.run(ctx)
	})
	return err
}

// Changed asks for a reload soon (a notification, a local write). It
// never blocks.
func (r *Replica) Changed() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Sync reloads the list now, and returns once the new snapshot serves (or
// the load failed: the previous snapshot keeps serving).
func (r *Replica) Sync(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	defer cancel()
	entries, err := r.cfg.Store.ListRevocations(ctx, r.cfg.Now())
	if err != nil {
		if !r.failing.Swap(true) {
			r.cfg.Log.Warn("revocation: cannot load the revocation list; the last loaded list keeps applying and the store is polled until it answers",
				"error", err.Error(), "poll_interval", r.cfg.PollInterval.String())
		}
		return fmt.Errorf("revocation: load: %w", err)
	}
	r.List.Replace(entries)
	r.lastLoad.Store(r.cfg.Now().UnixNano())
	if r.failing.Swap(false) {
		r.cfg.Log.Info("revocation: revocation list loaded again", "entries", len(entries))
	}
	return nil
}

// run reloads on every change, every poll interval while the feed is down
// or loads fail, and every resync interval regardless.
func (r *Replica) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	lastPrune := r.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-tick.C:
			since := r.cfg.Now().Sub(time.Unix(0, r.lastLoad.Load()))
			polling := r.failing.Load() || !r.List.Loaded() || (r.cfg.Feed != nil && !r.cfg.Feed.Listening())
			if !polling && since < r.cfg.ResyncInterval {
				continue
			}
		}
		_ = r.Sync(ctx)
		if now := r.cfg.Now(); now.Sub(lastPrune) >= r.cfg.ResyncInterval {
			lastPrune = now
			pctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
			_, _ = r.cfg.Store.PruneRevocations(pctx, now)
			cancel()
		}
	}
}

// Ready reports whether the list has been loaded: a process must not
// serve before (readiness).
func (r *Replica) Ready() error {
	if !r.List.Loaded() {
		return errors.New("revocation: the revocation list is not loaded yet")
	}
	return nil
}

// Polling reports whether the replica is polling now (its feed is down,
// or loads fail): propagation is then bounded by the poll interval.
func (r *Replica) Polling() bool {
	return r.failing.Load() || (r.cfg.Feed != nil && !r.cfg.Feed.Listening())
}

// Close stops the replica and waits for its goroutine. Later calls do
// nothing.
func (r *Replica) Close() {
	r.closeO.Do(func() {
		if r.unsub != nil {
			r.unsub()
		}
		if r.stop != nil {
			r.stop()
			<-r.done
		}
	})
}
