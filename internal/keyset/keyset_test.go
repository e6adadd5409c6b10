package keyset_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

func TestSources(t *testing.T) {
	for _, tc := range []struct {
		name       string
		alg        jose.SignatureAlgorithm
		cfg        func(p *testidp.Provider) keyset.Config
		wantSource func(p *testidp.Provider) string
	}{
		{
			name: "discovery",
			alg:  jose.RS256,
			cfg: func(p *testidp.Provider) keyset.Config {
				return keyset.Config{Name: "idp", Issuer: p.Issuer, Discovery: true}
			},
			wantSource: func(p *testidp.Provider) string { return p.Issuer + "/.well-known/openid-configuration" },
		},
		{
			name: "jwks_uri",
			alg:  jose.ES256,
			cfg: func(p *testidp.Provider) keyset.Config {
				return keyset.Config{Name: "idp", JWKSURI: p.JWKSURI}
			},
			wantSource: func(p *testidp.Provider) string { return p.JWKSURI },
		},
		{
			name: "discovery EdDSA",
			alg:  jose.EdDSA,
			cfg: func(p *testidp.Provider) keyset.Config {
				return keyset.Config{Name: "idp", Issuer: p.Issuer, Discovery: true}
			},
			wantSource: func(p *testidp.Provider) string { return p.Issuer + "/.well-known/openid-configuration" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testidp.Start(t, testidp.WithAlgorithm(tc.alg))
			s := newSet(t, tc.cfg(p))
			waitReady(t, s)
			if err := verifyToken(s, p.ClientCredentialsToken(t, "read")); err != nil {
				t.Fatalf("client_credentials token: %v", err)
			}
			if err := verifyToken(s, p.Mint(t, nil)); err != nil {
				t.Fatalf("minted token: %v", err)
			}
			all, err := s.Lookup(context.Background(), "")
			if err != nil || len(all) != 1 {
				t.Fatalf("Lookup(\"\") = %d keys, %v; want 1", len(all), err)
			}
			kid, _, _ := p.SigningKey()
			h := s.Health()
			if h.Provider != "idp" || h.Source != tc.wantSource(p) || h.Keys != 1 ||
				!slices.Equal(h.KeyIDs, []string{kid}) || !h.Ready || h.Stale || h.LastError != "" ||
				h.LastRefresh.IsZero() || h.LastAttempt.IsZero() {
				t.Errorf("Health = %+v", h)
			}
		})
	}
}

func TestIssuerMismatchRejected(t *testing.T) {
	p := testidp.Start(t)
	for _, issuer := range []string{
		p.Issuer + "/", // same document, issuer differs by a slash
		strings.Replace(p.Issuer, "127.0.0.1", "localhost", 1), // same server, another name
	} {
		t.Run(issuer, func(t *testing.T) {
			s := newSet(t, keyset.Config{Issuer: issuer, Discovery: true, MinRefreshInterval: 50 * time.Millisecond})
			eventually(t, 5*time.Second, "a failed fetch", func() bool { return s.Health().LastError != "" })
			err := s.Ready()
			if !errors.Is(err, keyset.ErrUnavailable) {
				t.Fatalf("Ready = %v, want ErrUnavailable", err)
			}
			if h := s.Health(); h.Ready || h.Keys != 0 {
				t.Errorf("Health = %+v", h)
			}
			_, err = s.Lookup(context.Background(), "")
			if !errors.Is(err, keyset.ErrUnavailable) {
				t.Fatalf("Lookup = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "issuer mismatch") {
				t.Errorf("error %q does not mention the issuer mismatch", err)
			}
			if !strings.HasPrefix(err.Error(), "keyset: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestReadyAndWaitReady(t *testing.T) {
	p := testidp.Start(t)
	s, err := keyset.New(keyset.Config{JWKSURI: p.JWKSURI, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(); !errors.Is(err, keyset.ErrUnavailable) || !strings.Contains(err.Error(), "no keys fetched yet") {
		t.Fatalf("Ready before Start = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = s.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, keyset.ErrUnavailable) {
		t.Fatalf("WaitReady without Start = %v, want deadline exceeded and ErrUnavailable", err)
	}
	if p.JWKSHits() != 0 {
		t.Fatalf("New or WaitReady fetched (%d hits); only Start and Lookup may", p.JWKSHits())
	}
	s.Start()
	waitReady(t, s)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready after WaitReady = %v", err)
	}

	// Closing wakes WaitReady on a Set that can never become ready.
	p.Stop()
	s2, err := keyset.New(keyset.Config{JWKSURI: p.JWKSURI, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	s2.Start()
	done := make(chan error, 1)
	go func() { done <- s2.WaitReady(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	s2.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("WaitReady after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitReady did not return after Close")
	}
}

func TestHealthJSON(t *testing.T) {
	p := testidp.Start(t)
	s := newSet(t, keyset.Config{Name: "idp", JWKSURI: p.JWKSURI})
	waitReady(t, s)
	b, err := json.Marshal(s.Health())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"provider", "source", "keys", "key_ids", "last_refresh", "last_attempt", "stale", "ready"} {
		if _, ok := m[k]; !ok {
			t.Errorf("health JSON %s lacks %q", b, k)
		}
	}
	if _, ok := m["last_error"]; ok {
		t.Errorf("health JSON %s has last_error after success", b)
	}
}

func TestConfigValidation(t *testing.T) {
	hmac, err := keyset.HMACKey([]byte(strings.Repeat("s", 32)), "h")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  keyset.Config
		want string
	}{
		{"no source", keyset.Config{}, "no key source"},
		{"static and jwks", keyset.Config{Static: []jose.JSONWebKey{hmac}, JWKSURI: "https://idp.example/keys"}, "cannot be combined"},
		{"discovery and jwks", keyset.Config{Issuer: "https://idp.example", Discovery: true, JWKSURI: "https://idp.example/keys"}, "not both"},
		{"discovery without issuer", keyset.Config{Discovery: true}, "needs an issuer"},
		{"bad issuer scheme", keyset.Config{Issuer: "ftp://idp.example", Discovery: true}, "scheme"},
		{"jwks without host", keyset.Config{JWKSURI: "https:///keys"}, "no host"},
		{"negative duration", keyset.Config{JWKSURI: "https://idp.example/keys", MaxStale: -time.Second}, "max_stale"},
		{"min above max", keyset.Config{JWKSURI: "https://idp.example/keys", MinRefreshInterval: time.Hour, MaxRefreshInterval: time.Minute}, "exceeds"},
		{"negative max keys", keyset.Config{JWKSURI: "https://idp.example/keys", MaxKeys: -1}, "max_keys"},
		{"static enc key", keyset.Config{Static: []jose.JSONWebKey{{Key: hmac.Key, Use: "enc"}}}, "use"},
		{"static short secret", keyset.Config{Static: []jose.JSONWebKey{{Key: []byte("short")}}}, "shorter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keyset.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keyset: ") {
				t.Fatalf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCloseIdempotentAndStartAfterClose(t *testing.T) {
	p := testidp.Start(t)
	s, err := keyset.New(keyset.Config{JWKSURI: p.JWKSURI, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	s.Start() // no effect after Close
	if _, err := s.Lookup(context.Background(), "kid"); !errors.Is(err, keyset.ErrUnavailable) {
		t.Fatalf("Lookup after Close = %v, want ErrUnavailable", err)
	}
	if p.JWKSHits() != 0 {
		t.Fatalf("closed Set fetched %d times", p.JWKSHits())
	}
}

// TestUserAgent: discovery and JWKS requests name Gatehouse and its
// version, so a provider's operators can tell its fetches apart.
func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	var issuer string
	p := testidp.Start(t, testidp.WithAlgorithm(jose.ES256))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("User-Agent")
		mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_, _ = fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, issuer+"/jwks")
		case "/jwks":
			resp, err := http.Get(p.JWKSURI)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(w, resp.Body)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	s := newSet(t, keyset.Config{Issuer: issuer, Discovery: true, UserAgent: keyset.UserAgent("v1.2.3 (0123456789ab)")})
	waitReady(t, s)
	mu.Lock()
	defer mu.Unlock()
	for _, path := range []string{"/.well-known/openid-configuration", "/jwks"} {
		if got := seen[path]; got != "Gatehouse/v1.2.3" {
			t.Errorf("User-Agent of %s = %q, want Gatehouse/v1.2.3", path, got)
		}
	}

	for in, want := range map[string]string{
		"v1.2.3":                "Gatehouse/v1.2.3",
		"v0.0.0-2026 (abcdef)":  "Gatehouse/v0.0.0-2026",
		"(devel)":               "Gatehouse/devel",
		"dev":                   "Gatehouse/dev",
		"v1\r\nX-Injected: yes": "Gatehouse/v1X-Injected",
		"  ":                    keyset.UserAgent(""),
	} {
		if got := keyset.UserAgent(in); got != want {
			t.Errorf("UserAgent(%q) = %q, want %q", in, got, want)
		}
	}
	if got := keyset.UserAgent(""); !strings.HasPrefix(got, "Gatehouse/") || len(got) <= len("Gatehouse/") {
		t.Errorf("default UserAgent = %q", got)
	}
}

// TestOnFetch: every fetch is reported with its error, successes and
// failures alike (for the jwks_fetches_total metric).
func TestOnFetch(t *testing.T) {
	p := testidp.Start(t)
	var mu sync.Mutex
	var results []error
	s := newSet(t, keyset.Config{Name: "idp", JWKSURI: p.JWKSURI, OnFetch: func(err error) {
		mu.Lock()
		results = append(results, err)
		mu.Unlock()
	}})
	// OnFetch runs after the fetch has been announced (outside the set's
	// lock), so wait for each call rather than assume it came first.
	seen := func(n int) []error {
		for give := time.Now().Add(10 * time.Second); time.Now().Before(give); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			got := slices.Clone(results)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("OnFetch saw %v, want %d calls", results, n)
		return nil
	}
	waitReady(t, s)
	seen(1)
	p.Stop()
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a stopped provider succeeded")
	}
	if got := seen(2); len(got) != 2 || got[0] != nil || got[1] == nil {
		t.Fatalf("OnFetch saw %v, want a success then a failure", got)
	}
}
