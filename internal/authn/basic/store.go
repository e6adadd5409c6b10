package basic

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// StoreSource is the users of the key store (apikey.UserStore: the
// embedded and PostgreSQL stores), read when a plan is built and re-read
// every interval; a change of any user replaces the table (and empties
// the verified-credential cache). A row whose hash is refused (plaintext,
// parameters out of bounds: only a hand-written row can be) is left out,
// with an error logged: that user cannot log in, nobody else is affected.
// A store that cannot be read keeps the users read before.
type StoreSource struct {
	store      apikey.UserStore
	ttl        time.Duration
	maxEntries int
	log        *slog.Logger
	timeout    time.Duration

	mu   sync.Mutex
	last []*apikey.User
	cur  atomic.Pointer[table]

	stop chan struct{}
	done chan struct{}
}

// OpenStore reads the users of store and, when interval > 0, re-reads them
// until Close.
func OpenStore(ctx context.Context, store apikey.UserStore, ttl time.Duration, maxEntries int, interval time.Duration, log *slog.Logger) (*StoreSource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &StoreSource{store: store, ttl: ttl, maxEntries: maxEntries, log: log, timeout: 5 * time.Second,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	if interval <= 0 {
		close(s.done)
		return s, nil
	}
	go s.watch(interval)
	return s, nil
}

func (s *StoreSource) table() *table { return s.cur.Load() }

// Reload re-reads the users; unchanged users keep the current table.
func (s *StoreSource) Reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("basic: users store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != nil && slices.EqualFunc(rows, s.last, sameUser) {
		return nil
	}
	users := make([]*User, 0, len(rows))
	for _, r := range rows {
		u, err := userOf(r)
		if err != nil {
			s.log.Error("basic: users store: a user is refused and cannot log in", "user", r.Name, "error", err)
			continue
		}
		users = append(users, u)
	}
	s.cur.Store(newTable(users, s.ttl, s.maxEntries))
	s.last = rows
	return nil
}

// UserOf checks a store row as a user (exported for the CLI).
func UserOf(r *apikey.User) (*User, error) { return userOf(r) }

func userOf(r *apikey.User) (*User, error) {
	h, err := ParseHash(r.Hash)
	if err != nil {
		return nil, err
	}
	u := &User{Name: r.Name, Hash: h, Roles: r.Roles, Groups: r.Groups, Scopes: r.Scopes}
	return u, u.Check()
}

func sameUser(a, b *apikey.User) bool {
	return a.Name == b.Name && a.Hash == b.Hash && a.UpdatedAt.Equal(b.UpdatedAt) &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Scopes, b.Scopes)
}

func (s *StoreSource) watch(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := s.Reload(ctx)
		cancel()
		switch {
		case err != nil && err.Error() != lastErr:
			lastErr = err.Error()
			s.log.Error("basic: users store not readable; keeping the users read before", "error", err)
		case err == nil:
			lastErr = ""
		}
	}
}

// Close stops re-reading the store.
func (s *StoreSource) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
