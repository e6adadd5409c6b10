package keyset_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

func TestCacheControlHonouredAndClamped(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cacheControl string
		cfg          keyset.Config
		window       time.Duration
		min, max     int64 // JWKS fetches within the window, first one included
	}{
		{
			// max-age=1 lies within [50ms, 10s]: one refresh per second.
			name: "max-age within bounds", cacheControl: "public, max-age=1",
			cfg:    keyset.Config{MinRefreshInterval: 50 * time.Millisecond, MaxRefreshInterval: 10 * time.Second, RefreshInterval: time.Hour},
			window: 1500 * time.Millisecond, min: 2, max: 2,
		},
		{
			// max-age=0 is raised to the 200ms minimum.
			name: "clamped to min", cacheControl: "max-age=0",
			cfg:    keyset.Config{MinRefreshInterval: 200 * time.Millisecond, MaxRefreshInterval: time.Hour, RefreshInterval: time.Hour},
			window: time.Second, min: 3, max: 6,
		},
		{
			// no-store counts as max-age=0.
			name: "no-store clamped to min", cacheControl: "no-store",
			cfg:    keyset.Config{MinRefreshInterval: 200 * time.Millisecond, MaxRefreshInterval: time.Hour, RefreshInterval: time.Hour},
			window: time.Second, min: 3, max: 6,
		},
		{
			// max-age=1h is lowered to the 200ms maximum.
			name: "clamped to max", cacheControl: "max-age=3600",
			cfg:    keyset.Config{MinRefreshInterval: 10 * time.Millisecond, MaxRefreshInterval: 200 * time.Millisecond, RefreshInterval: time.Hour},
			window: time.Second, min: 3, max: 6,
		},
		{
			// Without max-age, RefreshInterval applies.
			name: "no max-age", cacheControl: "",
			cfg:    keyset.Config{MinRefreshInterval: 10 * time.Millisecond, MaxRefreshInterval: time.Hour, RefreshInterval: 200 * time.Millisecond},
			window: time.Second, min: 3, max: 6,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
			p.SetJWKSCacheControl(tc.cacheControl)
			cfg := tc.cfg
			cfg.JWKSURI = p.JWKSURI
			s := newSet(t, cfg)
			waitReady(t, s)
			time.Sleep(tc.window)
			s.Close()
			if hits := p.JWKSHits(); hits < tc.min || hits > tc.max {
				t.Fatalf("%d JWKS fetches in %s, want %d..%d", hits, tc.window, tc.min, tc.max)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	s := newSet(t, keyset.Config{
		Issuer: p.Issuer, Discovery: true,
		RefreshInterval:    time.Hour, // only lookups refresh, until the provider says otherwise
		MinRefreshInterval: 100 * time.Millisecond,
		UnknownKIDInterval: 50 * time.Millisecond,
	})
	waitReady(t, s)
	oldKID, _, _ := p.SigningKey()
	oldToken := p.Mint(t, nil)

	// Verifiers hammer the set with valid tokens throughout the rotation:
	// not one lookup may fail.
	var (
		tokens   atomic.Value // []string of currently valid tokens
		failures atomic.Int64
		firstErr atomic.Value
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	tokens.Store([]string{oldToken})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, tok := range tokens.Load().([]string) {
					if err := verifyToken(s, tok); err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}
		}()
	}

	time.Sleep(20 * time.Millisecond)
	p.SetJWKSCacheControl("max-age=0") // from the next fetch on: refresh every 100ms
	p.RotateKey(t)
	newKID, _, _ := p.SigningKey()
	newToken := p.ClientCredentialsToken(t)
	hits := p.JWKSHits()
	if err := verifyToken(s, newToken); err != nil {
		t.Fatalf("token with the new kid %s: %v", newKID, err)
	}
	if p.JWKSHits() != hits+1 {
		t.Errorf("new kid caused %d fetches, want 1", p.JWKSHits()-hits)
	}
	tokens.Store([]string{oldToken, newToken})
	time.Sleep(150 * time.Millisecond) // background refreshes now run every ~100ms

	// The old key is retired: verifiers stop presenting it first.
	tokens.Store([]string{newToken})
	time.Sleep(20 * time.Millisecond)
	p.RetireOldKeys()
	eventually(t, 5*time.Second, "the retired kid to be unknown", func() bool {
		_, err := s.Lookup(context.Background(), oldKID)
		return errors.Is(err, keyset.ErrUnknownKID)
	})
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d lookups of valid kids failed during rotation; first: %v", n, firstErr.Load())
	}
	if err := verifyToken(s, oldToken); !errors.Is(err, keyset.ErrUnknownKID) {
		t.Fatalf("token with the retired kid: %v, want ErrUnknownKID", err)
	}
}

func TestProviderOutageStaleAndRecovery(t *testing.T) {
	p := testidp.Start(t)
	clock := newFakeClock()
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		RefreshInterval:    50 * time.Millisecond,
		MinRefreshInterval: 10 * time.Millisecond,
		UnknownKIDInterval: 10 * time.Millisecond,
		MaxStale:           time.Hour,
		Now:                clock.Now,
	})
	waitReady(t, s)
	token := p.Mint(t, nil)
	kid, _, _ := p.SigningKey()
	if err := verifyToken(s, token); err != nil {
		t.Fatal(err)
	}

	// Provider down: refreshes fail, cached keys keep working.
	p.Stop()
	eventually(t, 5*time.Second, "a failed refresh", func() bool { return s.Health().LastError != "" })
	clock.Advance(30 * time.Minute)
	if err := verifyToken(s, token); err != nil {
		t.Fatalf("cached key during outage: %v", err)
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready during outage within max_stale: %v", err)
	}
	if h := s.Health(); !h.Stale || !h.Ready || h.Keys != 1 {
		t.Errorf("Health during outage = %+v, want stale, ready, 1 key", h)
	}
	// An unknown kid cannot be checked while the provider is down: that is
	// unavailability, not a bad token.
	clock.Advance(time.Second)
	if _, err := s.Lookup(context.Background(), "rotated-during-outage"); !errors.Is(err, keyset.ErrUnavailable) {
		t.Errorf("unknown kid during outage: %v, want ErrUnavailable", err)
	}

	// Past max_stale: fail closed.
	clock.Advance(31 * time.Minute)
	for _, k := range []string{kid, ""} {
		if _, err := s.Lookup(context.Background(), k); !errors.Is(err, keyset.ErrUnavailable) {
			t.Fatalf("Lookup(%q) past max_stale = %v, want ErrUnavailable", k, err)
		}
	}
	if err := s.Ready(); !errors.Is(err, keyset.ErrUnavailable) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("Ready past max_stale = %v", err)
	}
	if h := s.Health(); h.Ready || !h.Stale {
		t.Errorf("Health past max_stale = %+v", h)
	}

	// Provider back: the background retry recovers.
	p.Restart(t)
	waitReady(t, s)
	if err := verifyToken(s, token); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if h := s.Health(); h.Stale || h.LastError != "" {
		t.Errorf("Health after recovery = %+v", h)
	}
}

func TestUnknownKIDFloodRateLimited(t *testing.T) {
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	clock := newFakeClock()
	s := newSet(t, keyset.Config{
		JWKSURI:            p.JWKSURI,
		RefreshInterval:    time.Hour,
		UnknownKIDInterval: 30 * time.Second,
		Now:                clock.Now,
	})
	waitReady(t, s)
	token := p.Mint(t, nil)

	flood := func() (unknown, other int64) {
		var wg sync.WaitGroup
		var nUnknown, nOther atomic.Int64
		for range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				_, err := s.Lookup(context.Background(), hex.EncodeToString(b))
				if errors.Is(err, keyset.ErrUnknownKID) {
					nUnknown.Add(1)
				} else {
					nOther.Add(1)
				}
			}()
		}
		// Valid tokens keep verifying in the middle of the flood.
		for range 20 {
			if err := verifyToken(s, token); err != nil {
				t.Errorf("valid token during flood: %v", err)
			}
		}
		wg.Wait()
		return nUnknown.Load(), nOther.Load()
	}

	before := p.JWKSHits()
	if unknown, other := flood(); unknown != 1000 || other != 0 {
		t.Fatalf("flood: %d ErrUnknownKID, %d other; want 1000, 0", unknown, other)
	}
	if n := p.JWKSHits() - before; n > 1 {
		t.Fatalf("1000 unknown kids caused %d JWKS fetches, want at most 1", n)
	}
	mid := p.JWKSHits()
	if unknown, _ := flood(); unknown != 1000 {
		t.Fatalf("second flood: %d ErrUnknownKID, want 1000", unknown)
	}
	if n := p.JWKSHits() - mid; n != 0 {
		t.Fatalf("second flood within the interval caused %d fetches, want 0", n)
	}

	// Once the interval has passed, one new flood earns exactly one fetch.
	clock.Advance(31 * time.Second)
	mid = p.JWKSHits()
	unknown, _ := flood()
	if unknown != 1000 {
		t.Fatalf("third flood: %d ErrUnknownKID", unknown)
	}
	if n := p.JWKSHits() - mid; n != 1 {
		t.Fatalf("flood after the interval caused %d fetches, want 1", n)
	}
}

func TestBadRefreshKeepsPreviousKeys(t *testing.T) {
	p := testidp.Start(t)
	// A proxy in front of the provider's JWKS that can be made to answer
	// garbage, as a broken deployment or a misbehaving CDN would.
	var mode atomic.Value
	mode.Store("pass")
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "empty":
			_, _ = io.WriteString(w, `{"keys":[]}`)
		case "garbage":
			_, _ = io.WriteString(w, `<html>maintenance</html>`)
		case "huge":
			_, _ = io.WriteString(w, `{"keys":[`+strings.Repeat(" ", keyset.MaxBodyBytes)+`]}`)
		case "500":
			http.Error(w, "oops", http.StatusInternalServerError)
		default:
			resp, err := http.Get(p.JWKSURI)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.Copy(w, resp.Body)
		}
	}))
	defer front.Close()

	s := newSet(t, keyset.Config{
		JWKSURI:            front.URL,
		RefreshInterval:    30 * time.Millisecond,
		MinRefreshInterval: 10 * time.Millisecond,
	})
	waitReady(t, s)
	token := p.Mint(t, nil)
	for _, m := range []string{"empty", "garbage", "huge", "500"} {
		t.Run(m, func(t *testing.T) {
			mode.Store(m)
			eventually(t, 5*time.Second, "a failed refresh", func() bool { return s.Health().LastError != "" })
			if err := verifyToken(s, token); err != nil {
				t.Fatalf("previous keys lost: %v", err)
			}
			if h := s.Health(); h.Keys != 1 || !h.Stale || !h.Ready {
				t.Errorf("Health = %+v", h)
			}
			mode.Store("pass")
			eventually(t, 5*time.Second, "a good refresh", func() bool { return s.Health().LastError == "" })
		})
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	p := testidp.Start(t)
	// A JWKS endpoint that never answers, to close a Set mid-fetch.
	hang := make(chan struct{})
	blackhole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer blackhole.Close()
	defer close(hang)

	// Let the provider's and test server's own goroutines settle first.
	p.ClientCredentialsToken(t)
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	var sets []*keyset.Set
	for i := range 6 {
		cfg := keyset.Config{
			JWKSURI:            p.JWKSURI,
			RefreshInterval:    20 * time.Millisecond,
			MinRefreshInterval: 10 * time.Millisecond,
			FetchTimeout:       time.Minute,
			Log:                quietLog,
		}
		if i%2 == 1 {
			cfg.JWKSURI = blackhole.URL
		}
		s, err := keyset.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		s.Start() // a second Start launches nothing
		sets = append(sets, s)
		// A lookup waiting on the hanging fetch must be released by Close.
		go func() { _, _ = s.Lookup(context.Background(), "") }()
	}
	time.Sleep(100 * time.Millisecond)
	if runtime.NumGoroutine() <= before {
		t.Fatal("sets started no goroutines; the test proves nothing")
	}
	start := time.Now()
	for _, s := range sets {
		s.Close()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s with a hanging fetch", d)
	}
	eventually(t, 5*time.Second, "goroutines to end", func() bool {
		return runtime.NumGoroutine() <= before
	})
}
