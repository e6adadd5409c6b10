package keyset_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/keyset"
)

var allAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA, jose.HS256}

// quietLog keeps expected refresh failures out of test output.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// newSet builds and starts a Set that is closed at the end of the test.
func newSet(t *testing.T, cfg keyset.Config) *keyset.Set {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = quietLog
	}
	s, err := keyset.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	s.Start()
	return s
}

func waitReady(t *testing.T, s *keyset.Set) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

// verifyToken checks a token the way a verifier would: the kid from its
// header selects keys through Lookup, one of which must verify it.
func verifyToken(s *keyset.Set, token string) error {
	tok, err := jwt.ParseSigned(token, allAlgs)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := s.Lookup(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		var claims map[string]any
		if tok.Claims(k.Key, &claims) == nil {
			return nil
		}
	}
	return errors.New("no key verified the signature")
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeClock is an injectable clock that only moves when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newSlowJWKS serves the JWKS at upstream through a test server that reads
// the document, then calls hold, then answers with what it read: a fetch
// that saw the document as it was when it started.
func newSlowJWKS(t *testing.T, upstream string, hold func()) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(upstream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hold()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
