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

func TestNegativeCache(t *testing.T) {
	e := newEnv(t)
	a := e.auth(func(c *authnapikey.Config) { c.NegativeTTL = 10 * time.Second })
	unknown := e.unknownKey()
	for i := range 1000 {
		_, err := a.Authenticate(withKey(unknown))
		if f := failure(t, err); f.Reason != authnapikey.ReasonKeyUnknown {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("1000 requests with one unknown key made %d store lookups, want 1", n)
	}
	e.clock.Advance(10 * time.Second)
	_, _ = a.Authenticate(withKey(unknown))
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("after NegativeTTL: %d lookups, want 2", n)
	}
}

func TestPositiveCache(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("cached", nil, nil)
	key, _ := e.key(c, nil)
	a := e.auth(func(c *authnapikey.Config) { c.CacheTTL = 30 * time.Second })
	for range 100 {
		if _, err := a.Authenticate(withKey(key)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(100 * time.Millisecond)
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
	e.clock.Advance(30 * time.Second)
	if _, err := a.Authenticate(withKey(key)); err != nil {
		t.Fatal(err)
	}
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("after CacheTTL: %d lookups, want 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("uncached", nil, nil)
	key, _ := e.key(c, nil)
	unknown := e.unknownKey()
	a := e.auth(func(c *authnapikey.Config) { c.CacheTTL = -1; c.NegativeTTL = -1 })
	for range 5 {
		if _, err := a.Authenticate(withKey(key)); err != nil {
			t.Fatal(err)
		}
		_, _ = a.Authenticate(withKey(unknown))
	}
	if n := e.store.lookups.Load(); n != 10 {
		t.Fatalf("%d lookups, want 10", n)
	}
}

func TestCachedKeyExpiresOnTime(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("rotating", nil, nil)
	exp := e.clock.Now().Add(5 * time.Second)
	key, k := e.key(c, func(k *apikey.Key) { k.ExpiresAt = &exp })
	a := e.auth(func(c *authnapikey.Config) { c.CacheTTL = time.Hour })
	if _, err := a.Authenticate(withKey(key)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5*time.Second - time.Nanosecond)
	if _, err := a.Authenticate(withKey(key)); err != nil {
		t.Fatalf("a nanosecond before expiry: %v", err)
	}
	e.clock.Advance(time.Nanosecond)
	_, err := a.Authenticate(withKey(key))
	if f := failure(t, err); f.Reason != authnapikey.ReasonKeyExpired || f.CredentialID != k.ID {
		t.Fatalf("at expiry: %+v", f)
	}
	if n := e.store.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1: expiry is checked on the cached key", n)
	}
}

func TestInvalidate(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("leaky", nil, nil)
	key, k := e.key(c, nil)
	other, _ := e.key(c, nil)
	a := e.auth(func(c *authnapikey.Config) { c.CacheTTL = time.Hour })
	for _, p := range []string{key, other} {
		if _, err := a.Authenticate(withKey(p)); err != nil {
			t.Fatal(err)
		}
	}
	now := e.clock.Now()
	k.Status, k.RevokedAt = apikey.StatusRevoked, &now
	if err := e.bolt.UpdateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	// Without notification the cache serves the old state for up to CacheTTL.
	if _, err := a.Authenticate(withKey(key)); err != nil {
		t.Fatalf("before Invalidate: %v", err)
	}
	a.Invalidate(k.ID)
	_, err := a.Authenticate(withKey(key))
	if f := failure(t, err); f.Reason != authnapikey.ReasonKeyRevoked {
		t.Fatalf("after Invalidate: %v", err)
	}
	if _, err := a.Authenticate(withKey(other)); err != nil {
		t.Fatal(err)
	}
	if n := e.store.lookups.Load(); n != 3 {
		t.Fatalf("%d lookups, want 3: Invalidate must drop only the named key", n)
	}
	a.Invalidate("k_doesnotexist")

	// "*" flushes everything, unknown keys included.
	unknown := e.unknownKey()
	_, _ = a.Authenticate(withKey(unknown))
	before := e.store.lookups.Load()
	a.Invalidate("*")
	_, _ = a.Authenticate(withKey(unknown))
	_, _ = a.Authenticate(withKey(other))
	if n := e.store.lookups.Load() - before; n != 2 {
		t.Fatalf("after flush: %d lookups, want 2", n)
	}
}

func TestConcurrentMissesShareOneLookup(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("herd", nil, nil)
	key, _ := e.key(c, nil)
	unknown := e.unknownKey()
	a := e.auth(nil)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			p := key
			if i%2 == 1 {
				p = unknown
			}
			id, err := a.Authenticate(withKey(p))
			if (i%2 == 0) != (err == nil && id != nil) {
				t.Errorf("request %d: %v, %v", i, id, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := e.store.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups for two distinct keys, want 2", n)
	}
}

// TestConcurrency mixes every outcome with invalidations and clock moves,
// for the race detector.
func TestConcurrency(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("busy", nil, nil)
	touch := authnapikey.NewToucher(e.store, time.Millisecond, nil)
	defer touch.Close()
	a := e.auth(func(c *authnapikey.Config) {
		c.CacheTTL, c.NegativeTTL, c.MaxEntries = time.Second, time.Second, 8
		c.Touch = touch
	})
	type kind int
	const (
		good kind = iota
		bad
	)
	var keys []string
	var kinds []kind
	ids := []string{}
	for range 8 {
		p, k := e.key(c, nil)
		keys, kinds, ids = append(keys, p), append(kinds, good), append(ids, k.ID)
	}
	for range 4 {
		keys, kinds = append(keys, e.unknownKey()), append(kinds, bad)
		p, _ := e.key(c, func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
		keys, kinds = append(keys, p), append(kinds, bad)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 200 {
				j := (w*7 + i) % len(keys)
				id, err := a.Authenticate(withKey(keys[j]))
				var f *authn.Failure
				switch kinds[j] {
				case good:
					if err != nil || id == nil {
						t.Errorf("good key: %v", err)
						return
					}
				case bad:
					if id != nil || !errors.As(err, &f) {
						t.Errorf("bad key: %v %v", id, err)
						return
					}
				}
				switch i % 50 {
				case 0:
					a.Invalidate(ids[i%len(ids)])
				case 25:
					a.Invalidate("*")
				case 10:
					e.clock.Advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}
