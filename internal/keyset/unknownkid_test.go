package keyset_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestRateLimitedKIDNotRemembered: a kid whose refetch the rate limit
// refused was never checked, so it must not be remembered as unknown.
// Before the fix, one forged token just before a rotation made the new
// kid "known unknown" for a minute after the rate limit had reopened.
func TestRateLimitedKIDNotRemembered(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	clock := newFakeClock()
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		RefreshInterval:    time.Hour,
		UnknownKIDInterval: 30 * time.Second,
		Now:                clock.Now,
	})
	waitReady(t, s)

	// The attacker's forged kid uses up the permitted refetch...
	if _, err := s.Lookup(context.Background(), "forged-kid"); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("forged kid: %v", err)
	}
	// ...right before the provider rotates.
	clock.Advance(time.Second)
	p.RotateKey(t)
	newKID, _, _ := p.SigningKey()
	fresh := p.ClientCredentialsToken(t)

	hits := p.JWKSHits()
	err := verifyToken(s, fresh)
	if !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("fresh token inside the rate-limit window: %v, want ErrUnknownKID", err)
	}
	if p.JWKSHits() != hits {
		t.Fatal("a rate-limited lookup fetched")
	}

	// As soon as the interval allows, the new kid is fetched and found.
	clock.Advance(29 * time.Second)
	if err := verifyToken(s, fresh); err != nil {
		t.Fatalf("fresh token with kid %s once the interval has passed: %v", newKID, err)
	}
	if got := p.JWKSHits() - hits; got != 1 {
		t.Fatalf("%d fetches to find the new kid, want 1", got)
	}

	// A kid absent from a set that was really fetched is refused, and
	// after the interval it may be asked for again (one fetch).
	if _, err := s.Lookup(context.Background(), "forged-2"); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("forged-2 (rate-limited): %v", err)
	}
	clock.Advance(31 * time.Second)
	hits = p.JWKSHits()
	if _, err := s.Lookup(context.Background(), "forged-2"); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("forged-2: %v", err)
	}
	if got := p.JWKSHits() - hits; got != 1 {
		t.Fatalf("forged-2 after the interval: %d fetches, want 1", got)
	}
}

// TestRefusedRefetchIsScheduled: a lookup refused by the rate limit
// schedules the refetch it could not make, for the moment the interval
// ends; a flood of refused lookups schedules exactly one.
func TestRefusedRefetchIsScheduled(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	const interval = 400 * time.Millisecond
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		RefreshInterval:    time.Hour,
		UnknownKIDInterval: interval,
	})
	waitReady(t, s)
	if _, err := s.Lookup(context.Background(), "forged-kid"); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("forged kid: %v", err)
	}
	start := time.Now()
	hits := p.JWKSHits()
	p.RotateKey(t)
	newKID, _, _ := p.SigningKey()

	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Lookup(context.Background(), fmt.Sprintf("bogus-%d", i))
		}()
	}
	wg.Wait()
	if time.Since(start) < interval && p.JWKSHits() != hits {
		t.Fatal("refused lookups fetched inside the interval")
	}
	// No lookup after the flood: the scheduled refetch alone finds the key.
	eventually(t, 5*time.Second, "the scheduled refetch", func() bool {
		for _, id := range s.Health().KeyIDs {
			if id == newKID {
				return true
			}
		}
		return false
	})
	if el := time.Since(start); el < interval-50*time.Millisecond {
		t.Fatalf("scheduled refetch after %s, before the %s interval", el, interval)
	}
	time.Sleep(interval + 200*time.Millisecond)
	if got := p.JWKSHits() - hits; got != 1 {
		t.Fatalf("500 refused lookups caused %d fetches, want exactly 1 (scheduled)", got)
	}
}

// TestRotationUnderBogusKIDFlood is the attack of issue #10 against a real
// OpenID Provider: made-up kids flood the key set right before the
// provider rotates its key (a burst that stops, as in the report, or a
// flood that goes on). Fresh tokens from the provider's token endpoint may
// be refused only until the first refetch the rate limit permits; from
// then on, none is. Before the fix, the burst made the new kid "known
// unknown" for negative_cache_ttl (a minute) after the first refusal.
func TestRotationUnderBogusKIDFlood(t *testing.T) {
	for _, tc := range []struct {
		name       string
		continuous bool
	}{
		{"burst right before the rotation", false},
		{"flood through the rotation", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
			const interval = 500 * time.Millisecond
			s := newSet(t, keyset.Config{
				Issuer: p.Issuer, Discovery: true,
				RefreshInterval:    time.Hour,
				UnknownKIDInterval: interval,
			})
			waitReady(t, s)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var floodLookups atomic.Int64
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						_, _ = s.Lookup(context.Background(), fmt.Sprintf("forged-%d-%d", w, i))
						floodLookups.Add(1)
						if !tc.continuous && i == 250 {
							return
						}
					}
				}()
			}
			stopFlood := sync.OnceFunc(func() { close(stop); wg.Wait() })
			defer stopFlood()

			// Rotate right after a flood-triggered refetch: the worst moment.
			before := p.JWKSHits()
			eventually(t, 5*time.Second, "a flood-triggered refetch", func() bool { return p.JWKSHits() > before })
			if !tc.continuous {
				wg.Wait()
			}
			p.RotateKey(t)
			rotated := time.Now()
			hitsAtRotation := p.JWKSHits()

			var (
				refused, accepted int
				firstOK           time.Time
				lateRefusals      []string
			)
			for time.Since(rotated) < 4*interval {
				fresh := p.ClientCredentialsToken(t)
				err := verifyToken(s, fresh)
				switch {
				case err == nil:
					accepted++
					if firstOK.IsZero() {
						firstOK = time.Now()
					}
				case !firstOK.IsZero():
					lateRefusals = append(lateRefusals, err.Error())
				default:
					refused++
					if !errors.Is(err, keyset.ErrUnknownKID) {
						t.Fatalf("fresh token before the refetch: %v, want ErrUnknownKID", err)
					}
				}
			}
			stopFlood()
			if firstOK.IsZero() {
				t.Fatalf("no fresh token accepted in %s (%d refused)", 4*interval, refused)
			}
			if len(lateRefusals) > 0 {
				t.Fatalf("%d fresh tokens refused after the first permitted refetch; first: %s", len(lateRefusals), lateRefusals[0])
			}
			if wait := firstOK.Sub(rotated); wait > interval+300*time.Millisecond {
				t.Fatalf("new key accepted %s after the rotation, want within the %s interval", wait, interval)
			}
			fetches := p.JWKSHits() - hitsAtRotation
			if limit := int64(time.Since(rotated)/interval) + 2; fetches > limit {
				t.Fatalf("%d JWKS fetches in %s under the flood, want at most %d", fetches, time.Since(rotated), limit)
			}
			t.Logf("%d flood lookups; after rotation: %d fresh tokens refused for %s, then %d accepted, none refused; %d JWKS fetches",
				floodLookups.Load(), refused, firstOK.Sub(rotated).Round(time.Millisecond), accepted, fetches)
		})
	}
}

// TestRefresh: a forced refetch (what a reload does) replaces the keys at
// once, so a key removed at the provider stops verifying; when the
// provider is unreachable it fails and the previous keys stay.
func TestRefresh(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		RefreshInterval:    time.Hour,
		UnknownKIDInterval: time.Hour,
		FetchTimeout:       time.Second,
	})
	waitReady(t, s)
	old := p.Mint(t, nil)
	p.RotateKey(t)
	p.RetireOldKeys() // the emergency: the old key is removed at the provider
	if err := verifyToken(s, old); err != nil {
		t.Fatalf("before Refresh the cached key still verifies: %v", err)
	}
	hits := p.JWKSHits()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if p.JWKSHits() != hits+1 {
		t.Fatalf("Refresh made %d fetches, want 1", p.JWKSHits()-hits)
	}
	if err := verifyToken(s, old); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("removed key after Refresh: %v, want ErrUnknownKID", err)
	}
	if err := verifyToken(s, p.Mint(t, nil)); err != nil {
		t.Fatalf("current key after Refresh: %v", err)
	}

	// Provider down: Refresh fails, the keys fetched last keep serving.
	current := p.Mint(t, nil)
	p.Stop()
	if err := s.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded with the provider down")
	}
	if err := verifyToken(s, current); err != nil {
		t.Fatalf("last good keys after a failed Refresh: %v", err)
	}
	if h := s.Health(); !h.Stale || !h.Ready {
		t.Fatalf("Health after a failed Refresh = %+v", h)
	}
}

// TestRefreshWaitsForAFetchStartedAfterIt: a fetch already in flight may
// have read the document before the provider changed it; Refresh must not
// settle for its result.
func TestRefreshWaitsForAFetchStartedAfterIt(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	release := make(chan struct{})
	var first atomic.Bool
	slow := newSlowJWKS(t, p.JWKSURI, func() {
		if first.CompareAndSwap(false, true) {
			<-release // hold the initial fetch until the test says so
		}
	})
	s := newSet(t, keyset.Config{JWKSURI: slow, RefreshInterval: time.Hour, UnknownKIDInterval: time.Hour})
	eventually(t, 5*time.Second, "the first fetch to start", first.Load)
	// The provider changes its keys while the first fetch is in flight,
	// after that fetch has read the old document.
	p.RotateKey(t)
	p.RetireOldKeys()
	newKID, _, _ := p.SigningKey()
	done := make(chan error, 1)
	go func() { done <- s.Refresh(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if ids := s.Health().KeyIDs; len(ids) != 1 || ids[0] != newKID {
		t.Fatalf("after Refresh: %v, want [%s]", ids, newKID)
	}
}

// TestRefreshIntervalCappedByMaxStale: a provider announcing a long
// max-age must not make its keys go stale between two refreshes.
func TestRefreshIntervalCappedByMaxStale(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	p.SetJWKSCacheControl("max-age=86400")
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		MinRefreshInterval: 10 * time.Millisecond,
		MaxRefreshInterval: 24 * time.Hour,
		RefreshInterval:    100 * time.Millisecond,
		MaxStale:           400 * time.Millisecond,
	})
	waitReady(t, s)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := s.Ready(); err != nil {
			t.Fatalf("keys went stale although the provider is up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hits := p.JWKSHits(); hits < 4 {
		t.Fatalf("%d JWKS fetches in 1.5s with max_stale 400ms, want a refresh at least every 200ms", hits)
	}
}

// TestRefreshRediscovers: with discovery, Refresh reads the discovery
// document again (the provider may have moved its keys), and a bad
// document fails the Refresh without losing the keys.
func TestRefreshRediscovers(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	var (
		mu        sync.Mutex
		discovery int
		issuer    string
		badIssuer bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			mu.Lock()
			discovery++
			iss := issuer
			if badIssuer {
				iss = "https://elsewhere.example"
			}
			mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, iss, p.JWKSURI)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	s := newSet(t, keyset.Config{Issuer: issuer, Discovery: true, RefreshInterval: time.Hour})
	waitReady(t, s)
	count := func() int { mu.Lock(); defer mu.Unlock(); return discovery }
	before := count()
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := count() - before; got != 1 {
		t.Fatalf("Refresh read the discovery document %d times, want 1", got)
	}
	mu.Lock()
	badIssuer = true
	mu.Unlock()
	if err := s.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "issuer mismatch") {
		t.Fatalf("Refresh with a wrong issuer in discovery: %v", err)
	}
	if err := verifyToken(s, p.Mint(t, nil)); err != nil {
		t.Fatalf("keys lost after a failed Refresh: %v", err)
	}
}
