package revocation_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// outage makes a real store's reads fail while down is set: a store that
// cannot be reached.
type outage struct {
	revocation.Store
	down atomic.Bool
}

func (o *outage) ListRevocations(ctx context.Context, now time.Time) ([]*revocation.Entry, error) {
	if o.down.Load() {
		return nil, apikey.ErrUnavailable
	}
	return o.Store.ListRevocations(ctx, now)
}

// feed is a revocation.Feed whose state the test sets.
type feed struct {
	mu      sync.Mutex
	changed []func()
	up      atomic.Bool
}

func (f *feed) Subscribe(fn func()) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, fn)
	return func() {}
}

func (f *feed) Listening() bool { return f.up.Load() }

func (f *feed) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.changed {
		fn()
	}
}

func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newEntry(value string) *revocation.Entry {
	now := time.Now().UTC()
	return &revocation.Entry{ID: revocation.NewID(), Kind: revocation.KindJTI, Value: value, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

func TestReplica(t *testing.T) {
	ctx := context.Background()
	store := &outage{Store: openStore(t)}
	f := &feed{}
	f.up.Store(true)
	store.down.Store(true)
	r, err := revocation.NewReplica(revocation.ReplicaConfig{Store: store, Feed: f, PollInterval: 20 * time.Millisecond,
		ResyncInterval: time.Hour, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := jwtID("s", "j1", "", t0, "x")
	id.Issuer = ""

	// A store that cannot be read at start: not ready, and every check
	// says the list is not loaded (the pipeline answers 503).
	if err := r.Start(); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Start = %v, want the store's error", err)
	}
	if r.Ready() == nil {
		t.Fatal("ready without a loaded list")
	}
	if _, loaded := r.List.Check(id); loaded {
		t.Fatal("check on a list never loaded")
	}
	if err := store.AddRevocations(ctx, []*revocation.Entry{newEntry("j1")}); err != nil {
		t.Fatal(err)
	}
	store.down.Store(false)
	waitUntil(t, "the first load, by polling after a failure", func() bool { return r.Ready() == nil })
	if e, _ := r.List.Check(id); e == nil {
		t.Fatal("loaded list does not revoke j1")
	}

	// Feed up: a change arrives by notification only.
	if err := store.AddRevocations(ctx, []*revocation.Entry{newEntry("j2")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several poll intervals: nothing reloads while the feed is up
	if r.List.Len() != 1 {
		t.Fatalf("reloaded without a notification while the feed is up: %d entries", r.List.Len())
	}
	f.notify()
	waitUntil(t, "the notified change", func() bool { return r.List.Len() == 2 })

	// Feed down and store down: the last list keeps applying.
	f.up.Store(false)
	store.down.Store(true)
	time.Sleep(60 * time.Millisecond)
	if e, _ := r.List.Check(id); e == nil || !r.Polling() {
		t.Fatalf("the known revocation was forgotten during an outage (polling %v)", r.Polling())
	}
	// Store back, feed still down: changes arrive by polling.
	store.down.Store(false)
	if err := store.AddRevocations(ctx, []*revocation.Entry{newEntry("j3")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a change picked up by polling", func() bool { return r.List.Len() == 3 })
}

// Service writes reach the local list before the call returns.
func TestServiceAppliesLocally(t *testing.T) {
	store := openStore(t)
	r, err := revocation.NewReplica(revocation.ReplicaConfig{Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	svc := &revocation.Service{Store: store, Replica: r}
	id := jwtID("s", "local", "", t0, "x")
	es, err := svc.Revoke(context.Background(), revocation.Request{Kind: revocation.KindJTI, Issuer: iss, Values: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := r.List.Check(id); e == nil {
		t.Fatal("not applied when Revoke returned")
	}
	if err := svc.Unrevoke(context.Background(), es[0].ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := r.List.Check(id); e != nil {
		t.Fatal("still applied when Unrevoke returned")
	}
	if err := svc.Unrevoke(context.Background(), es[0].ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("second Unrevoke = %v", err)
	}
}
