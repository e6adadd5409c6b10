package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/authntest"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/session"
)

type noKeys struct{}

func (noKeys) Lookup(context.Context, string) ([]jose.JSONWebKey, error) { return nil, nil }

// testService is a cookie-mode service for the provider "idp", with a
// fixed clock.
func testService(t *testing.T, now time.Time, keys ...string) *service {
	t.Helper()
	cfg := &config.Config{IdentityProviders: []config.IdentityProvider{{Name: "idp", Issuer: "https://idp.test", Audiences: []string{"api"}}}}
	v, err := jwt.NewVerifier([]jwt.Provider{{Name: "idp", Issuer: "https://idp.test", Audiences: []string{"api"}, Keys: noKeys{}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{}
	o.SetDefaults()
	o.Keys = keys
	o.Clients = []Client{{Provider: "idp", ClientID: "gw", ClientSecret: "s", AuthorizationEndpoint: "https://idp.test/a", TokenEndpoint: "https://idp.test/t"}}
	s, err := newService(o, cfg, v, serviceDeps{now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler), origin: jwt.DefaultOrigin})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cookieFor seals sess with s and returns the request header value.
func cookieFor(t *testing.T, s *service, sess *session.Session) string {
	t.Helper()
	b, err := sess.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.codec.Seal(purposeSession, b)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for i, c := range session.WriteCookies(httptest.NewRequest("GET", "/", nil), s.cookie, v) {
		if i > 0 {
			out += "; "
		}
		out += c.Name + "=" + c.Value
	}
	return out
}

// TestConformance: the authenticator passes the suite every method must.
func TestConformance(t *testing.T) {
	k1, _ := session.NewKey()
	k2, _ := session.NewKey()
	now := time.Now().Truncate(time.Second)
	s := testService(t, now, k1)
	other := testService(t, now, k2)
	a := authenticator{s: s, single: "idp"}
	sess := func(created, seen time.Time) *session.Session {
		return &session.Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", Provider: "idp", Issuer: "https://idp.test", Subject: "alice", SID: "sid",
			Claims: map[string]any{"sub": "alice", "aud": "gw", "iss": "https://idp.test"}, Created: created, LastSeen: seen}
	}
	req := func(cookie string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", "application/json")
			if cookie != "" {
				r.Header.Set("Cookie", cookie)
			}
			return r
		}
	}
	authntest.Run(t, a, authntest.Cases{
		None: req(""),
		Good: req(cookieFor(t, s, sess(now, now))),
		Bad: []func() *http.Request{
			req("__Host-gatehouse=garbage"),
			req(cookieFor(t, other, sess(now, now))),                                 // another key
			req(cookieFor(t, s, sess(now.Add(-13*time.Hour), now))),                  // absolute timeout
			req(cookieFor(t, s, sess(now.Add(-2*time.Hour), now.Add(-2*time.Hour)))), // idle timeout
		},
	})

	// Key rotation: a cookie sealed with the old key opens once the new
	// key is first.
	rotated := testService(t, now, k2, k1)
	if id, err := (authenticator{s: rotated, single: "idp"}).Authenticate(req(cookieFor(t, s, sess(now, now)))()); err != nil || id.Subject != "alice" {
		t.Fatalf("after rotation: %v %v", id, err)
	}
}

// TestPersistTooLargeForCookies: a session that does not fit in the
// cookies is refused with a clear problem, not written as cleared cookies
// (which would send the browser to log in again, forever); one that fits
// is written.
func TestPersistTooLargeForCookies(t *testing.T) {
	k, _ := session.NewKey()
	now := time.Now().Truncate(time.Second)
	s := testService(t, now, k)
	for _, tc := range []struct {
		name   string
		groups int
		fits   bool
	}{{"small", 3, true}, {"chunked", 400, true}, {"too large for the cookies", 2400, false}, {"too large to seal", 5000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			groups := make([]any, tc.groups)
			for i := range groups {
				groups[i] = fmt.Sprintf("group-%06d", i)
			}
			sess := &session.Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", Provider: "idp", Issuer: "https://idp.test", Subject: "alice",
				Claims: map[string]any{"sub": "alice", "groups": groups}, Created: now, LastSeen: now}
			cookies, err := s.persist(httptest.NewRequest("GET", "/", nil), sess)
			if tc.fits {
				if err != nil || len(cookies) == 0 || cookies[0].MaxAge < 0 {
					t.Fatalf("persist = %d cookies, %v; want session cookies", len(cookies), err)
				}
				return
			}
			var refused *reply.RefusedError
			if !errors.As(err, &refused) || cookies != nil {
				t.Fatalf("persist = %d cookies, %v; want a RefusedError", len(cookies), err)
			}
		})
	}
}
