package login

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMergeUserInfo: UserInfo adds the claims the ID token lacks (OIDC
// Core 5.4: a provider may return profile and email claims there only),
// never replaces a signed ID-token claim or a protocol claim, and is not
// used at all when its sub is another (5.3.2).
func TestMergeUserInfo(t *testing.T) {
	id := map[string]any{"iss": "https://op/", "sub": "u1", "aud": "web", "nonce": "n", "email": "id@example.test"}
	for _, tc := range []struct {
		name string
		info string
		want map[string]any // the claims that must differ from id or be added; nil: refused
	}{
		{"adds what the ID token lacks", `{"sub":"u1","name":"Test User","groups":["a"]}`,
			map[string]any{"name": "Test User", "groups": []any{"a"}}},
		{"the ID token wins", `{"sub":"u1","email":"other@example.test"}`, map[string]any{}},
		{"protocol claims are not taken", `{"sub":"u1","iss":"https://evil/","aud":"x","exp":9999999999,"nonce":"m","sid":"s","auth_time":1,"acr":"2","amr":["mfa"],"azp":"x","cnf":{}}`,
			map[string]any{}},
		{"another subject", `{"sub":"u2","name":"Mallory"}`, nil},
		{"no subject", `{"name":"Nobody"}`, nil},
		{"subject not a string", `{"sub":1}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := decodeClaims([]byte(tc.info))
			if err != nil {
				t.Fatal(err)
			}
			got, err := mergeUserInfo(id, info)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("merged %v, want a refusal", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{}
			for k, v := range id {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Fatalf("merged %s, want %s", gb, wb)
			}
		})
	}
	if _, has := id["name"]; has {
		t.Fatal("mergeUserInfo modified the ID-token claims")
	}
}

// TestFetchUserInfo: the access token goes as a Bearer header; a JSON
// object comes back; a server error or an unreachable endpoint is the
// provider being unavailable (503), anything else wrong is a refusal.
func TestFetchUserInfo(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		ctype, body string
		ok          bool
		unavailable bool
	}{
		{"json", 200, "application/json", `{"sub":"u1","email":"e@example.test"}`, true, false},
		{"json with charset", 200, "application/json; charset=utf-8", `{"sub":"u1"}`, true, false},
		{"token refused", 401, "application/json", `{"error":"invalid_token"}`, false, false},
		{"forbidden", 403, "application/json", `{}`, false, false},
		{"server error", 503, "text/plain", "down", false, true},
		{"signed response", 200, "application/jwt", "a.b.c", false, false},
		{"not json", 200, "text/html", "<html>", false, false},
		{"not an object", 200, "application/json", `["sub"]`, false, false},
		{"too large", 200, "application/json", `{"sub":"u1","x":"` + strings.Repeat("a", maxUserInfo) + `"}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer at-1" || r.Method != http.MethodGet {
					http.Error(w, "no token", http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s := &service{http: &http.Client{Timeout: 5 * time.Second}}
			info, err := s.fetchUserInfo(t.Context(), srv.URL+"/userinfo", "at-1")
			if (err == nil) != tc.ok {
				t.Fatalf("info %v, err %v; want ok %v", info, err, tc.ok)
			}
			if got := errors.Is(err, errUserInfoUnavailable); got != tc.unavailable {
				t.Fatalf("err %v: unavailable %v, want %v", err, got, tc.unavailable)
			}
			if tc.ok && info["sub"] != "u1" {
				t.Fatalf("info %v", info)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		s := &service{http: &http.Client{Timeout: 5 * time.Second}}
		if _, err := s.fetchUserInfo(t.Context(), u, "at-1"); !errors.Is(err, errUserInfoUnavailable) {
			t.Fatalf("err %v, want errUserInfoUnavailable", err)
		}
	})
}

// TestWithUserInfo: the endpoint is read only when the client reads it
// (userinfo, default true), the provider has one, and there is an access
// token.
func TestWithUserInfo(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"sub":"u1","email":"e@example.test"}`))
	}))
	defer srv.Close()
	s := &service{http: &http.Client{Timeout: 5 * time.Second}}
	off := false
	id := map[string]any{"sub": "u1"}
	for _, tc := range []struct {
		name     string
		cfg      Client
		endpoint string
		token    string
		email    bool
	}{
		{"default on", Client{}, srv.URL, "at", true},
		{"userinfo: false", Client{UserInfo: &off}, srv.URL, "at", false},
		{"no endpoint", Client{}, "", "at", false},
		{"no access token", Client{}, srv.URL, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls
			got, err := s.withUserInfo(t.Context(), &client{cfg: tc.cfg}, endpoints{UserInfo: tc.endpoint}, tc.token, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, has := got["email"]; has != tc.email || (calls > before) != tc.email {
				t.Fatalf("claims %v after %d calls; want email %v", got, calls-before, tc.email)
			}
		})
	}
}
