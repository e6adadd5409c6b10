package apikey_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
)

// stallingStore passes every call to the real store, except that lookups
// wait for release (or their context) first: a store that stopped
// answering. The network version of this is in internal/gateway, through a
// blackholing proxy in front of PostgreSQL.
type stallingStore struct {
	*countingStore
	release chan struct{}
	started chan struct{}
}

func (s *stallingStore) LookupKey(ctx context.Context, hash []byte) (*apikey.Key, *apikey.Consumer, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	return s.countingStore.LookupKey(ctx, hash)
}

func unavailable(t *testing.T, err error) *authn.UnavailableError {
	t.Helper()
	var u *authn.UnavailableError
	if !errors.As(err, &u) || u.Reason != authnapikey.ReasonStoreUnavailable {
		t.Fatalf("got %v, want an UnavailableError (store_unavailable)", err)
	}
	return u
}

// TestLookupHasADeadline: a store that does not answer fails the request
// with 503 after LookupTimeout, never holds it longer.
func TestLookupHasADeadline(t *testing.T) {
	e := newEnv(t)
	key, _ := e.key(e.consumer("c", nil, nil), nil)
	st := &stallingStore{countingStore: e.store, release: make(chan struct{}), started: make(chan struct{}, 100)}
	a := e.auth(func(c *authnapikey.Config) { c.Store, c.LookupTimeout = st, 100*time.Millisecond })
	start := time.Now()
	_, err := a.Authenticate(withKey(key))
	unavailable(t, err)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s, want about the 100ms lookup timeout", took)
	}
	// A timeout is not remembered: once the store answers, the key works.
	close(st.release)
	if _, err := a.Authenticate(withKey(key)); err != nil {
		t.Fatal(err)
	}
}

// TestLookupsInFlightAreBounded: with every slot taken by a stalled lookup,
// a request for another uncached key is refused at once (503), not queued;
// requests for a key already being looked up share its lookup and take no
// slot; a cached key keeps working.
func TestLookupsInFlightAreBounded(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("c", nil, nil)
	cached, _ := e.key(c, nil)
	stalled, _ := e.key(c, nil)
	other, _ := e.key(c, nil)
	st := &stallingStore{countingStore: e.store, release: make(chan struct{}), started: make(chan struct{}, 100)}
	a := e.auth(func(c *authnapikey.Config) { c.Store, c.MaxLookups, c.LookupTimeout = st, 1, time.Minute })

	go func() { <-st.started; st.release <- struct{}{} }() // let the first lookup through
	if _, err := a.Authenticate(withKey(cached)); err != nil {
		t.Fatal(err)
	}

	const waiters = 20
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Authenticate(withKey(stalled))
			errs <- err
		}()
	}
	<-st.started // the one slot is taken
	start := time.Now()
	_, err := a.Authenticate(withKey(other))
	unavailable(t, err)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("an over-the-bound lookup waited %s; it must be refused at once", took)
	}
	if _, err := a.Authenticate(withKey(cached)); err != nil {
		t.Fatalf("cached key while the store is stalled: %v", err)
	}
	close(st.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request sharing the stalled lookup: %v", err)
		}
	}
	select {
	case <-st.started:
		t.Fatal("concurrent requests for one key made more than one store call")
	default:
	}
	if _, err := a.Authenticate(withKey(other)); err != nil {
		t.Fatalf("after the stall: %v", err)
	}
}

// TestSharedCache: authenticators of several routes built on one Cache
// share what it learnt, and one Invalidate reaches all of them.
func TestSharedCache(t *testing.T) {
	e := newEnv(t)
	key, k := e.key(e.consumer("c", nil, nil), nil)
	shared, err := authnapikey.NewCache(authnapikey.CacheConfig{Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	a1 := e.auth(func(c *authnapikey.Config) { c.Cache, c.Store = shared, nil })
	a2 := e.auth(func(c *authnapikey.Config) { c.Cache, c.Store = shared, nil })
	for _, a := range []*authnapikey.Authenticator{a1, a2, a1} {
		if _, err := a.Authenticate(withKey(key)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1: the cache is shared", n)
	}
	now := e.clock.Now()
	k.Status, k.RevokedAt = apikey.StatusRevoked, &now
	if err := e.bolt.UpdateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	a1.Invalidate(k.ID)
	if _, err := a2.Authenticate(withKey(key)); failure(t, err).Reason != authnapikey.ReasonKeyRevoked {
		t.Fatalf("revoked key through the other authenticator: %v", err)
	}
}
