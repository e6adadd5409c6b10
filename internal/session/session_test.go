package session_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/session"
)

// typicalSession is a session as an IdP login leaves it: three JWTs,
// a few identity claims. Marshalled it is about 2.5 KB.
func typicalSession(t testing.TB) *session.Session {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	jwt := func(n int) string {
		return "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("eyJzdWIiOiJhbGljZSJ9", n/20) + ".sig" + strings.Repeat("x", 340)
	}
	now := time.Unix(1_790_000_000, 0)
	return &session.Session{
		ID: id, Provider: "corp", Issuer: "https://idp.example.com", Subject: "248289761001", SID: "08a5019c-17e1-4977-8f42-65a12843ea02",
		Claims: map[string]any{
			"name": "Alice Example", "email": "alice@example.com", "email_verified": true,
			"groups": []any{"engineering", "on-call"}, "roles": []any{"admin"}, "n": 3.5,
		},
		AccessToken: jwt(600), RefreshToken: "rt-" + strings.Repeat("r", 60), IDToken: jwt(500),
		TokenExpiry: now.Add(5 * time.Minute), AuthTime: now.Add(-time.Minute), Created: now, LastSeen: now.Add(30 * time.Second),
	}
}

func TestSessionRoundTrip(t *testing.T) {
	full := typicalSession(t)
	minimal := &session.Session{ID: full.ID}
	for _, tc := range []struct {
		name string
		s    *session.Session
	}{{"typical", full}, {"minimal", minimal}} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := session.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.s) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.s)
			}
		})
	}
	b, _ := full.Marshal()
	if len(b) < 2000 || len(b) > 3200 {
		t.Fatalf("typical session marshals to %d bytes; the benchmarks assume 2-3 KB", len(b))
	}
}

func TestSessionTimesToTheSecond(t *testing.T) {
	s := typicalSession(t)
	s.LastSeen = time.Unix(1_790_000_000, 999_000_000)
	b, _ := s.Marshal()
	got, _ := session.Unmarshal(b)
	if !got.LastSeen.Equal(time.Unix(1_790_000_000, 0)) {
		t.Fatalf("LastSeen %v", got.LastSeen)
	}
}

func TestMarshalRefusesBadID(t *testing.T) {
	for _, id := range []string{"", "short", strings.Repeat("A", 23), "AAAAAAAAAAAAAAAAAAAAA!", "AAAAAAAAAAAAAAAAAAAAAB"} {
		if _, err := (&session.Session{ID: id}).Marshal(); err == nil {
			t.Errorf("Marshal accepted id %q", id)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	id, _ := session.NewID()
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"null", `null`},
		{"array", `[]`},
		{"no version", `{"id":"` + id + `"}`},
		{"version 2", `{"v":2,"id":"` + id + `"}`},
		{"unknown field", `{"v":1,"id":"` + id + `","admin":true}`},
		{"no id", `{"v":1}`},
		{"bad id", `{"v":1,"id":"../../etc"}`},
		{"trailing object", `{"v":1,"id":"` + id + `"}{}`},
		{"trailing garbage", `{"v":1,"id":"` + id + `"} x`},
		{"wrong type", `{"v":1,"id":"` + id + `","exp":"soon"}`},
		{"claims not object", `{"v":1,"id":"` + id + `","c":[]}`},
		{"oversize", `{"v":1,"id":"` + id + `","at":"` + strings.Repeat("a", session.MaxMarshaled) + `"}`},
		{"deep", `{"v":1,"id":"` + id + `","c":{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := session.Unmarshal([]byte(tc.in))
			if !errors.Is(err, session.ErrInvalid) || s != nil {
				t.Fatalf("Unmarshal = %v, %v; want ErrInvalid", s, err)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != session.IDLen || !session.ValidID(id) {
			t.Fatalf("NewID %q not valid", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}
