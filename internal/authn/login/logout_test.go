package login

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/session"
)

const event = `"events":{"http://schemas.openid.net/event/backchannel-logout":{}}`

// TestParseLogoutToken: the claims a logout token must (and must not)
// carry, OIDC Back-Channel Logout 1.0 §2.4.
func TestParseLogoutToken(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		ok            bool
		sid, sub      string
	}{
		{"sid", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"s1"}`, true, "s1", ""},
		{"sub", `{"iss":"i","jti":"j","iat":1,` + event + `,"sub":"u"}`, true, "", "u"},
		{"both", `{"iss":"i","jti":"j","iat":1,` + event + `,"sub":"u","sid":"s"}`, true, "s", "u"},
		{"neither", `{"iss":"i","jti":"j","iat":1,` + event + `}`, false, "", ""},
		{"empty sid and sub", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"","sub":""}`, false, "", ""},
		{"nonce", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"s","nonce":"n"}`, false, "", ""},
		{"null nonce is still a nonce", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"s","nonce":null}`, false, "", ""},
		{"no events", `{"iss":"i","jti":"j","iat":1,"sid":"s"}`, false, "", ""},
		{"other event", `{"iss":"i","jti":"j","iat":1,"events":{"x":{}},"sid":"s"}`, false, "", ""},
		{"event not an object", `{"iss":"i","jti":"j","iat":1,"events":{"http://schemas.openid.net/event/backchannel-logout":[]},"sid":"s"}`, false, "", ""},
		{"event null", `{"iss":"i","jti":"j","iat":1,"events":{"http://schemas.openid.net/event/backchannel-logout":null},"sid":"s"}`, false, "", ""},
		{"no jti", `{"iss":"i","iat":1,` + event + `,"sid":"s"}`, false, "", ""},
		{"no iat", `{"iss":"i","jti":"j",` + event + `,"sid":"s"}`, false, "", ""},
		{"no iss", `{"jti":"j","iat":1,` + event + `,"sid":"s"}`, false, "", ""},
		{"sid not a string", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":5}`, false, "", ""},
		{"not an object", `[1,2]`, false, "", ""},
		{"too large", `{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"` + strings.Repeat("a", maxLogoutToken) + `"}`, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc, err := ParseLogoutToken([]byte(tc.payload))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (lc.SID != tc.sid || lc.Subject != tc.sub || lc.JTI != "j" || lc.Issuer != "i") {
				t.Fatalf("claims %+v", lc)
			}
		})
	}
}

// FuzzParseLogoutToken: any payload is refused or parsed within the
// budget, and whatever is accepted names a session or a subject, has a
// jti and no nonce.
func FuzzParseLogoutToken(f *testing.F) {
	f.Add([]byte(`{"iss":"i","jti":"j","iat":1,` + event + `,"sid":"s1"}`))
	f.Add([]byte(`{"iss":"i","jti":"j","iat":1,` + event + `,"sub":"u","nonce":"n"}`))
	f.Add([]byte(`{"events":{"http://schemas.openid.net/event/backchannel-logout":{"a":1}},"iat":1e3,"iss":"x","jti":"y","sid":"z"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lc, err := ParseLogoutToken(b)
		if err != nil {
			return
		}
		if len(b) > maxLogoutToken {
			t.Fatalf("accepted %d bytes, over the budget", len(b))
		}
		if lc.JTI == "" || lc.Issuer == "" || (lc.SID == "" && lc.Subject == "") || lc.IssuedAt.IsZero() {
			t.Fatalf("accepted incomplete claims %+v", lc)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) == nil {
			if _, has := m["nonce"]; has {
				t.Fatal("accepted a nonce")
			}
		}
	})
}

// TestSafeReturnPath: only paths on this origin.
func TestSafeReturnPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/app?x=1": true, "/a/b#f": true, "/%2F%2Fevil": true,
		"": false, "//evil.example": false, "/\\evil.example": false, "https://evil.example/": false,
		"http:/evil": false, "javascript:alert(1)": false, "evil.example": false, "/a\r\nb": false, "/a b": false,
		"/" + strings.Repeat("a", 3000): false,
	} {
		if got := safeReturnPath(p); got != want {
			t.Errorf("safeReturnPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestCheckAZP: azp is required with several audiences and must be the
// client when present.
func TestCheckAZP(t *testing.T) {
	for _, tc := range []struct {
		claims map[string]any
		ok     bool
	}{
		{map[string]any{"aud": "gw"}, true},
		{map[string]any{"aud": []any{"gw"}}, true},
		{map[string]any{"aud": []any{"gw", "other"}}, false},
		{map[string]any{"aud": []any{"gw", "other"}, "azp": "gw"}, true},
		{map[string]any{"aud": "gw", "azp": "other"}, false},
		{map[string]any{"aud": "gw", "azp": 5}, false},
	} {
		if err := checkAZP(tc.claims, "gw"); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.claims, err)
		}
	}
}

// TestStripSessionCookies: the upstream keeps the application's cookies
// and never gets the session's.
func TestStripSessionCookies(t *testing.T) {
	for in, want := range map[string]string{
		"__Host-gatehouse=a":                                "",
		"__Host-gatehouse=a; theme=dark":                    "theme=dark",
		"x=1; __Host-gatehouse.1=b;__Host-gatehouse=a; y=2": "x=1; y=2",
		"__Host-gatehouse-login-abc=s; app=1":               "app=1",
		"__Host-gatehousex=keep":                            "__Host-gatehousex=keep",
	} {
		h := http.Header{"Cookie": {in}}
		stripSessionCookies(h, "__Host-gatehouse")
		if got := h.Get("Cookie"); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
		if want == "" && h["Cookie"] != nil {
			t.Errorf("%q: empty Cookie header kept", in)
		}
	}
}

// TestPendingLoginsBounded: unfinished logins do not pile up cookies.
func TestPendingLoginsBounded(t *testing.T) {
	k, _ := session.NewKey()
	s := testService(t, time.Now(), k)
	r := httptest.NewRequest(http.MethodGet, "https://gw.test/app", nil)
	for i := range 5 {
		r.AddCookie(&http.Cookie{Name: s.cookie.Name + "-login-" + strings.Repeat(string(rune('a'+i)), 12), Value: "x"})
	}
	rd, err := s.startLogin(r, s.clients[0], "/app")
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, c := range rd.Cookies {
		if c.MaxAge < 0 {
			expired++
		}
	}
	if expired != 5 || len(rd.Cookies) != 6 {
		t.Fatalf("%d cookies, %d expired", len(rd.Cookies), expired)
	}
	// PKCE S256, state and nonce are in the authorization request.
	u, _ := url.Parse(rd.Location)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || len(q.Get("state")) < 40 || len(q.Get("nonce")) < 40 ||
		q.Get("redirect_uri") != "https://gw.test/.gatehouse/callback" || q.Get("client_id") != "gw" || q.Get("response_type") != "code" {
		t.Fatalf("authorization request %v", q)
	}
}

// FuzzSafeReturnPath: whatever the return-to check accepts stays on this
// origin: one leading "/", no host, no scheme, nothing a Location header
// could be split with, within the size budget.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/app?x=1", "//evil", "/\\evil", "https://evil/", "/%2F%2Fevil", "/a\r\nb", "/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !safeReturnPath(p) {
			return
		}
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") ||
			strings.ContainsAny(p, "\r\n\\ \x00") || len(p) > 2048 {
			t.Fatalf("accepted %q", p)
		}
		// What a browser resolves it to is on the same host.
		base, _ := url.Parse("https://gw.test/app/")
		if r := base.ResolveReference(u); r.Host != "gw.test" {
			t.Fatalf("%q resolves to host %q", p, r.Host)
		}
	})
}

// TestLogoutProviderLogout: logout sends the browser on to the provider's
// end_session_endpoint (with id_token_hint and post_logout_redirect_uri)
// unless provider_logout is false; the gateway's session cookie is
// cleared either way.
func TestLogoutProviderLogout(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name   string
		on     *bool
		prefix string
	}{
		{"default", nil, "https://idp.test/logout?"},
		{"provider_logout: false", &off, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := session.NewKey()
			now := time.Now()
			s := testService(t, now, k)
			s.clients[0].cfg.EndSessionEndpoint = "https://idp.test/logout"
			s.clients[0].cfg.ProviderLogout = tc.on
			id, err := session.NewID()
			if err != nil {
				t.Fatal(err)
			}
			sess := &session.Session{ID: id, Provider: "idp", Issuer: "https://idp.test", Subject: "u1", IDToken: "h.p.s",
				Claims: map[string]any{"sub": "u1"}, Created: now, LastSeen: now}
			r := httptest.NewRequest(http.MethodPost, "https://gw.test/.gatehouse/logout", nil)
			r.Header.Set("Origin", "https://gw.test")
			r.Header.Set("Cookie", cookieFor(t, s, sess))
			err = authenticator{s: s}.logout(httptest.NewRecorder(), r)
			var rd *reply.RedirectError
			if !errors.As(err, &rd) {
				t.Fatalf("logout: %v, want a redirect", err)
			}
			if !strings.HasPrefix(rd.Location, tc.prefix) || (tc.on == nil && !strings.Contains(rd.Location, "id_token_hint=h.p.s")) || (tc.on != nil && rd.Location != "/") {
				t.Fatalf("logout went to %q, want %s…", rd.Location, tc.prefix)
			}
			cleared := false
			for _, c := range rd.Cookies {
				cleared = cleared || (c.Name == s.cookie.Name && c.MaxAge < 0)
			}
			if !cleared {
				t.Fatalf("the session cookie was not cleared: %v", rd.Cookies)
			}
		})
	}
}
