package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/session"
	"github.com/gatehouse/gatehouse/internal/ssf"
	"github.com/gatehouse/gatehouse/internal/ssf/ssftest"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// Browser login (method session) through a real listener, with the real
// OpenID Provider of internal/testidp and its login page.

const (
	sessCallback = "/.gatehouse/callback"
	sessLogout   = "/.gatehouse/logout"
	sessBackChan = "/.gatehouse/backchannel-logout"
)

// sessionKey is a fixed test key (32 bytes, base64).
var sessionKey = func() string { k, _ := session.NewKey(); return k }()

// sessionYAML is a gateway with one session route /app on upstream, the
// testidp's web client, plain-http cookies (insecure_cookie: the test
// client's cookie jar sends no Secure cookie over http), and extra
// session options (indented 8) and top-level sections.
func sessionYAML(idp *testidp.Provider, upstream, sessionExtra, top string) string {
	return header + adminTokenYAML() + `audit: {output: stderr}
identity_providers:
  - name: idp
    issuer: ` + idp.Issuer + `
    audiences: [` + idp.Audience + `]
    insecure_allow_http: true
    claims: {roles: roles, groups: groups, extra: {email: email}}
` + top + `routes:
  - name: app
    match: {path_prefix: /app}
    authenticate:
      methods: [session]
      session:
        insecure_cookie: true
        keys: [` + sessionKey + `]
        clients:
          - provider: idp
            client_id: ` + testidp.WebClientID + `
            client_secret: ` + idp.ClientSecret + `
            scopes: [openid, email, offline_access]
` + sessionExtra + `    upstream: {targets: [` + upstream + `]}
`
}

// browser is an HTTP client with a cookie jar that sends Accept:
// text/html, as a browser navigating does.
type browser struct {
	t      *testing.T
	c      *http.Client
	accept string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}, accept: "text/html,application/xhtml+xml"}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	if req.Header.Get("Accept") == "" && b.accept != "" {
		req.Header.Set("Accept", b.accept)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// noFollow makes the browser stop at redirects for one call.
func (b *browser) noFollow(fn func()) {
	prev := b.c.CheckRedirect
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { b.c.CheckRedirect = prev }()
	fn()
}

// login follows the gateway's redirect to the IdP's login page, posts
// the form as user, and returns the final answer (the page first asked
// for, after the callback).
func (b *browser) login(idp *testidp.Provider, page, user, password string) (*http.Response, string) {
	b.t.Helper()
	res, body := b.get(page)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="username"`) {
		b.t.Fatalf("GET %s did not end at the login page: %d %s", page, res.StatusCode, body)
	}
	id := res.Request.URL.Query().Get("id")
	req, _ := http.NewRequest(http.MethodPost, idp.Issuer+testidp.LoginPath, strings.NewReader(url.Values{"id": {id}, "username": {user}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// startSessionGateway starts a gateway and registers its callback and
// post-logout URI at the IdP.
func startSessionGateway(t *testing.T, idp *testidp.Provider, yamlText string) *testGateway {
	t.Helper()
	tg := startGateway(t, yamlText).serve()
	idp.AddRedirectURI(tg.url + sessCallback)
	idp.AddPostLogoutRedirectURI(tg.url + "/")
	return tg
}

// TestSessionLogin: a browser without a session is sent to the IdP,
// logs in on its page, comes back through the callback to the page it
// asked for, and the upstream sees who it is; the session then works
// without the IdP; a non-browser client gets 401.
func TestSessionLogin(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "", ""))

	b := newBrowser(t)
	res, body := b.login(idp, tg.url+"/app/page?x=1&y=two", "alice", "alice-password")
	if res.StatusCode != 200 {
		t.Fatalf("after login: %d %s", res.StatusCode, body)
	}
	got := decodeReceived(t, []byte(body))
	if got.Path != "/app/page" || got.Query != "x=1&y=two" {
		t.Fatalf("returned to %s?%s, want /app/page?x=1&y=two", got.Path, got.Query)
	}
	for h, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Method": "session", "X-Auth-Issuer": idp.Issuer, "X-Auth-Roles": "admin", "X-Auth-Groups": "staff,ops"} {
		if v := got.Headers.Get(h); v != want {
			t.Errorf("upstream %s = %q, want %q", h, v, want)
		}
	}
	if got.Headers.Get("Authorization") != "" || strings.Contains(got.Headers.Get("Cookie"), "gatehouse") {
		t.Errorf("the upstream got the session's credentials: %v", got.Headers)
	}
	if idp.Logins() != 1 {
		t.Fatalf("logins at the IdP: %d", idp.Logins())
	}
	// The session works for other pages, without the IdP.
	res, body = b.get(tg.url + "/app/other")
	if res.StatusCode != 200 || decodeReceived(t, []byte(body)).Headers.Get("X-Auth-Subject") != "alice" || idp.Logins() != 1 {
		t.Fatalf("second request: %d %s", res.StatusCode, body)
	}

	// Not a browser: 401 problem with a challenge, never a redirect.
	for _, hdr := range []map[string]string{
		{"Accept": "application/json"},
		{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"},
		{},
	} {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/app/page", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, body := do(t, req)
		problemBody(t, res, body, http.StatusUnauthorized, "unauthorized")
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%v: no WWW-Authenticate", hdr)
		}
	}
}

// TestSessionOpenRedirectRefused: the return-to address is always a path
// on the gateway's origin, whatever the chooser's rd says.
func TestSessionOpenRedirectRefused(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "", ""))
	for _, tc := range []struct{ rd, wantPath string }{
		{"https://evil.example/", "/"}, {"//evil.example/x", "/"}, {"/\\evil.example", "/"}, {"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"}, {"evil.example", "/"}, {"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
		// Escaped, it stays a path here (the gateway then refuses it).
		{"/app/%0d%0aSet-Cookie:x=1", "/app/%0d%0aSet-Cookie:x=1"},
		{"/app/ok?a=1", "/app/ok?a=1"},
	} {
		rd := tc.rd
		t.Run(rd, func(t *testing.T) {
			b := newBrowser(t)
			var loc string
			b.noFollow(func() {
				res, _ := b.get(tg.url + "/.gatehouse/login?provider=idp&rd=" + url.QueryEscape(rd))
				loc = res.Header.Get("Location")
			})
			if !strings.HasPrefix(loc, idp.AuthorizationURL) {
				t.Fatalf("login start went to %q", loc)
			}
			res, body := b.login(idp, loc, "bob", "bob-password")
			final := res.Request.URL
			if final.Host != strings.TrimPrefix(tg.url, "http://") || final.RequestURI() != tc.wantPath {
				t.Fatalf("after login the browser is at %s (%d %s)", final, res.StatusCode, body)
			}
		})
	}
}

// TestSessionCallbackTampering: a callback whose state, code or login
// cookie is not the one the flow made is refused with a problem page,
// never a redirect loop.
func TestSessionCallbackTampering(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "", ""))

	// start makes a browser stop at the callback: it returns the browser
	// and the callback URL the IdP sent it to.
	start := func(t *testing.T) (*browser, *url.URL) {
		b := newBrowser(t)
		res, _ := b.get(tg.url + "/app/x")
		id := res.Request.URL.Query().Get("id")
		var cb *url.URL
		b.noFollow(func() {
			req, _ := http.NewRequest(http.MethodPost, idp.Issuer+testidp.LoginPath, strings.NewReader(url.Values{"id": {id}, "username": {"alice"}, "password": {"alice-password"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, _ := b.do(req)
			// The IdP's own callback, then ours.
			res2, _ := b.get(res.Header.Get("Location"))
			cb, _ = url.Parse(res2.Header.Get("Location"))
		})
		if cb == nil || cb.Path != sessCallback {
			t.Fatalf("no callback: %v", cb)
		}
		return b, cb
	}
	cases := []struct {
		name   string
		change func(b *browser, q url.Values)
	}{
		{"state changed", func(_ *browser, q url.Values) { q.Set("state", q.Get("state")[:20]+"AAAAAAAAAAAAAAAAAAAAAAAA") }},
		{"state missing", func(_ *browser, q url.Values) { q.Del("state") }},
		{"code changed", func(_ *browser, q url.Values) { q.Set("code", "forged-code") }},
		{"login cookie lost", func(b *browser, _ url.Values) { jar, _ := cookiejar.New(nil); b.c.Jar = jar }},
		{"idp error", func(_ *browser, q url.Values) { q.Del("code"); q.Set("error", "access_denied") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, cb := start(t)
			q := cb.Query()
			tc.change(b, q)
			cb.RawQuery = q.Encode()
			var res *http.Response
			var body string
			b.noFollow(func() { res, body = b.get(tg.url + cb.RequestURI()) })
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.Contains(res.Header.Get("Content-Type"), "problem+json") {
				t.Fatalf("%d %v %s", res.StatusCode, res.Header, body)
			}
			for _, c := range res.Cookies() {
				if c.Name == "gatehouse" && c.MaxAge >= 0 {
					t.Fatalf("a session cookie was set: %v", c)
				}
			}
		})
	}
	// The untouched callback works once; the same code again does not.
	t.Run("replayed code", func(t *testing.T) {
		b, cb := start(t)
		res, body := b.get(tg.url + cb.RequestURI())
		if res.StatusCode != 200 {
			t.Fatalf("genuine callback: %d %s", res.StatusCode, body)
		}
		b2 := newBrowser(t)
		b2.noFollow(func() { res, body = b2.get(tg.url + cb.RequestURI()) })
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed callback in another browser: %d %s", res.StatusCode, body)
		}
	})
}

// TestSessionLogoutAndCSRF: unsafe requests need the same origin; logout
// is POST from the same origin, clears the session and goes through the
// IdP's end_session endpoint.
func TestSessionLogoutAndCSRF(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "", ""))
	b := newBrowser(t)
	if res, body := b.login(idp, tg.url+"/app/", "alice", "alice-password"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"typed by the user", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"origin matches", map[string]string{"Origin": tg.url}, 200},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": tg.url}, 403},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"other origin", map[string]string{"Origin": "https://evil.example"}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"no origin at all", nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
				req, _ := http.NewRequest(m, tg.url+"/app/items", strings.NewReader("{}"))
				req.Header.Set("Accept", "application/json")
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				res, body := b.do(req)
				if res.StatusCode != tc.want {
					t.Fatalf("%s: %d, want %d: %s", m, res.StatusCode, tc.want, body)
				}
				if tc.want == 403 && !strings.Contains(body, "forbidden") {
					t.Fatalf("%s: 403 body %s", m, body)
				}
			}
		})
	}

	reasons := map[string]bool{}
	for _, ev := range tg.auditEvents(t) {
		if ev["outcome"] == "deny" {
			reasons[fmt.Sprint(ev["reason"])] = true
		}
	}
	if !reasons["csrf_origin_mismatch"] || !reasons["login_required"] {
		t.Fatalf("audit reasons seen: %v", reasons)
	}

	// A cross-site logout is refused; the session stays.
	req, _ := http.NewRequest(http.MethodPost, tg.url+sessLogout, nil)
	req.Header.Set("Origin", "https://evil.example")
	if res, body := b.do(req); res.StatusCode != 403 {
		t.Fatalf("cross-site logout: %d %s", res.StatusCode, body)
	}
	if res, _ := b.get(tg.url + "/app/still"); res.StatusCode != 200 {
		t.Fatalf("session lost after a refused logout: %d", res.StatusCode)
	}
	// GET shows a form, and logs nobody out.
	if res, body := b.get(tg.url + sessLogout); res.StatusCode != 200 || !strings.Contains(body, `method="POST"`) {
		t.Fatalf("GET logout: %d %s", res.StatusCode, body)
	}
	var loc string
	b.noFollow(func() {
		req, _ := http.NewRequest(http.MethodPost, tg.url+sessLogout, nil)
		req.Header.Set("Origin", tg.url)
		res, _ := b.do(req)
		loc = res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", res.StatusCode)
		}
	})
	if !strings.HasPrefix(loc, idp.EndSessionURL+"?") || !strings.Contains(loc, "id_token_hint=") || !strings.Contains(loc, "post_logout_redirect_uri="+url.QueryEscape(tg.url+"/")) {
		t.Fatalf("logout went to %q", loc)
	}
	res, _ := b.get(loc)
	if res.Request.URL.String() != tg.url+"/" || idp.EndSessions() != 1 {
		t.Fatalf("after end_session the browser is at %s (end sessions %d)", res.Request.URL, idp.EndSessions())
	}
	// The session is gone: the next page asks to log in again.
	res, body := b.get(tg.url + "/app/after")
	if !strings.Contains(body, `name="username"`) {
		t.Fatalf("after logout: %d %s", res.StatusCode, body)
	}
}

// startClockGateway is startGateway with the pipeline's clock at
// time.Now() + *offset.
func startClockGateway(t *testing.T, idp *testidp.Provider, yamlText string, offset *atomic.Int64) *testGateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, file, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	access, stderr, oplog := &syncBuffer{}, &syncBuffer{}, &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(oplog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	g, err := New(cfg, file, Options{ConfigPath: path, Log: logger,
		Pipeline: pipeline.Options{Log: logger, Stdout: access, Stderr: stderr, Now: now}, RetireDelay: 2 * time.Second})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	tg := &testGateway{Gateway: g, t: t, path: path, accessLog: access, stderr: stderr, opLog: oplog}
	tg.url = "http://" + g.Addr("main").String()
	if a := g.AdminAddr(); a != nil {
		tg.adminURL = "http://" + a.String()
	}
	tg.serve()
	idp.AddRedirectURI(tg.url + sessCallback)
	idp.AddPostLogoutRedirectURI(tg.url + "/")
	return tg
}

// atLoginPage reports whether a browser's answer is the IdP's login form.
func atLoginPage(body string) bool { return strings.Contains(body, `name="username"`) }

// TestSessionTimeoutsAndRefresh: idle and absolute timeouts end a
// session (the browser logs in again), the access token is refreshed
// with the refresh token before it expires, transparently, and a failed
// refresh ends the session.
func TestSessionTimeoutsAndRefresh(t *testing.T) {
	for _, mode := range []string{"cookie", "redis"} {
		t.Run(mode, func(t *testing.T) { testSessionTimeoutsAndRefresh(t, mode) })
	}
}

func testSessionTimeoutsAndRefresh(t *testing.T, mode string) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	var offset atomic.Int64
	advance := func(d time.Duration) { offset.Add(int64(d)) }
	extra, top := "        idle_timeout: 10m\n        absolute_timeout: 30m\n        forward_access_token: true\n", ""
	if mode == "redis" {
		rcfg := redistest.Config(t, redistest.Addr(t))
		extra += "        store: redis\n"
		top = fmt.Sprintf("redis:\n  addresses: [%q]\n  key_prefix: %q\n", rcfg.Addresses[0], rcfg.KeyPrefix)
	}
	tg := startClockGateway(t, idp, sessionYAML(idp, up.URL, extra, top), &offset)
	page := tg.url + "/app/p"

	t.Run("refresh", func(t *testing.T) {
		offset.Store(0)
		b := newBrowser(t)
		res, body := b.login(idp, page, "alice", "alice-password")
		if res.StatusCode != 200 {
			t.Fatalf("login: %d %s", res.StatusCode, body)
		}
		first := decodeReceived(t, []byte(body)).Headers.Get("Authorization")
		idp.SetAccessTokenTTL(time.Hour) // the refreshed token outlives the test's clock jumps
		defer idp.SetAccessTokenTTL(5 * time.Minute)
		if !strings.HasPrefix(first, "Bearer ") {
			t.Fatalf("forward_access_token: upstream Authorization %q", first)
		}
		advance(4*time.Minute + 5*time.Second) // the 5-minute access token is within refresh_before
		res, body = b.get(page)
		second := decodeReceived(t, []byte(body)).Headers.Get("Authorization")
		if res.StatusCode != 200 || second == first || !strings.HasPrefix(second, "Bearer ") {
			t.Fatalf("after refresh: %d, token changed %v", res.StatusCode, second != first)
		}
		// The new cookie carries the new tokens: no second refresh.
		res, body = b.get(page)
		if third := decodeReceived(t, []byte(body)).Headers.Get("Authorization"); third != second {
			t.Fatalf("the refreshed session was not kept (refreshed again)")
		}
		if idp.Logins() != 1 {
			t.Fatalf("refresh logged in again (%d logins)", idp.Logins())
		}
	})
	t.Run("concurrent requests refresh once", func(t *testing.T) {
		offset.Store(0)
		idp.SetAccessTokenTTL(5 * time.Minute)
		b := newBrowser(t)
		b.login(idp, page, "alice", "alice-password")
		idp.SetAccessTokenTTL(time.Hour)
		defer idp.SetAccessTokenTTL(5 * time.Minute)
		advance(4*time.Minute + 5*time.Second)
		before := idp.Refreshes()
		var wg sync.WaitGroup
		codes := make(chan int, 8)
		for range 8 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, page, nil)
				req.Header.Set("Accept", "application/json")
				res, err := b.c.Do(req)
				if err != nil {
					codes <- 0
					return
				}
				res.Body.Close()
				codes <- res.StatusCode
			})
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != 200 {
				t.Fatalf("a concurrent request got %d", c)
			}
		}
		if n := idp.Refreshes() - before; n != 1 {
			t.Fatalf("%d refreshes for one session, want 1", n)
		}
	})
	t.Run("failed refresh ends the session", func(t *testing.T) {
		offset.Store(0)
		b := newBrowser(t)
		b.login(idp, page, "bob", "bob-password")
		idp.RevokeRefreshTokens()
		advance(4*time.Minute + 5*time.Second)
		if _, body := b.get(page); !atLoginPage(body) {
			t.Fatalf("a failed refresh did not end the session: %s", body)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		offset.Store(0)
		b := newBrowser(t)
		b.login(idp, page, "alice", "alice-password")
		advance(3 * time.Minute)
		if res, body := b.get(page); res.StatusCode != 200 || atLoginPage(body) {
			t.Fatalf("within idle timeout: %d", res.StatusCode)
		}
		advance(11 * time.Minute)
		if _, body := b.get(page); !atLoginPage(body) {
			t.Fatalf("after the idle timeout the session still works: %s", body)
		}
	})
	t.Run("absolute timeout", func(t *testing.T) {
		offset.Store(0)
		b := newBrowser(t)
		b.login(idp, page, "alice", "alice-password")
		// Keep it busy (idle never reached) until the absolute end.
		req, _ := http.NewRequest(http.MethodGet, page, nil)
		req.Header.Set("Accept", "application/json")
		for i := 0; i < 3; i++ {
			advance(9 * time.Minute)
			if res, _ := b.do(req.Clone(req.Context())); res.StatusCode != 200 && i < 3 {
				// The access token expired long ago: each step refreshes.
				t.Logf("step %d: %d", i, res.StatusCode)
			}
		}
		advance(4 * time.Minute) // 31 minutes after login
		res, body := b.do(req.Clone(req.Context()))
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after the absolute timeout: %d %s", res.StatusCode, body)
		}
	})
}

// backchannelYAML turns back-channel logout on (cookie sessions: over
// the revocation list in an embedded store).
func revocationTop(t *testing.T) string {
	return fmt.Sprintf("api_keys:\n  store: {type: embedded, path: %q}\nrevocation:\n  enabled: true\n", filepath.Join(t.TempDir(), "keys.db"))
}

// TestSessionBackChannelLogoutCookie: a verified logout token ends the
// cookie session it names (through the revocation list); replays and
// bad tokens are refused with 400; a subject revocation (what a CAEP
// session-revoked event creates) ends sessions too.
func TestSessionBackChannelLogoutCookie(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "        backchannel_logout: true\n", revocationTop(t)))
	tg.waitReady(t)
	page := tg.url + "/app/p"
	endpoint := tg.url + sessBackChan

	alice, bob := newBrowser(t), newBrowser(t)
	alice.login(idp, page, "alice", "alice-password")
	bob.login(idp, page, "bob", "bob-password")
	sessions := idp.Sessions()
	var aliceSID string
	for _, s := range sessions {
		if s.Subject == "alice" {
			aliceSID = s.SID
		}
	}
	other := testidp.Start(t) // another issuer's key and iss
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"wrong audience", idp.LogoutToken(t, aliceSID, "", map[string]any{"aud": "someone-else"})},
		{"with a nonce", idp.LogoutToken(t, aliceSID, "", map[string]any{"nonce": "n"})},
		{"no event", idp.LogoutToken(t, aliceSID, "", map[string]any{"events": map[string]any{"other": map[string]any{}}})},
		{"event not an object", idp.LogoutToken(t, aliceSID, "", map[string]any{"events": map[string]any{testidp.BackChannelLogoutEvent: "yes"}})},
		{"neither sid nor sub", idp.LogoutToken(t, "", "", nil)},
		{"no jti", idp.LogoutToken(t, aliceSID, "", map[string]any{"jti": nil})},
		{"expired", idp.LogoutToken(t, aliceSID, "", map[string]any{"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-50 * time.Minute).Unix()})},
		{"another issuer", other.LogoutToken(t, aliceSID, "", nil)},
		{"not a JWT", "not-a-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := testidp.PostLogoutToken(t, endpoint, tc.token)
			if code != 400 || !strings.Contains(body, `"error"`) {
				t.Fatalf("%d %s", code, body)
			}
		})
	}
	if res, body := alice.get(page); res.StatusCode != 200 || atLoginPage(body) {
		t.Fatalf("a refused logout token ended the session: %d", res.StatusCode)
	}
	token := idp.LogoutToken(t, aliceSID, "", nil)
	if code, body := testidp.PostLogoutToken(t, endpoint, token); code != 200 {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	if _, body := alice.get(page); !atLoginPage(body) {
		t.Fatalf("alice's session survived back-channel logout: %s", body)
	}
	if res, body := bob.get(page); res.StatusCode != 200 || atLoginPage(body) {
		t.Fatalf("bob's session was ended too: %d", res.StatusCode)
	}
	if code, _ := testidp.PostLogoutToken(t, endpoint, token); code != 400 {
		t.Fatalf("replayed logout token: %d", code)
	}
	// Logging in again gives a new IdP session, which works.
	if res, body := alice.login(idp, page, "alice", "alice-password"); res.StatusCode != 200 {
		t.Fatalf("login after back-channel logout: %d %s", res.StatusCode, body)
	}

	// A subject revocation (CAEP session-revoked creates one) ends bob's
	// session on its next request.
	revoke(t, tg.adminURL, map[string]any{"kind": "subject", "issuer": idp.Issuer, "values": []string{"bob"}})
	if _, body := bob.get(page); !atLoginPage(body) {
		t.Fatalf("bob's session survived a subject revocation: %s", body)
	}
	req, _ := http.NewRequest(http.MethodGet, page, nil)
	req.Header.Set("Accept", "application/json")
	if res, _ := alice.do(req); res.StatusCode != 200 {
		t.Fatalf("alice's new session: %d", res.StatusCode)
	}

	// A blocked subject: a new login would be refused again, so the
	// browser gets 401, never a redirect (no loop through the provider).
	revoke(t, tg.adminURL, map[string]any{"kind": "issuer_subject", "issuer": idp.Issuer, "values": []string{"alice"}})
	var res *http.Response
	alice.noFollow(func() { res, _ = alice.get(page) })
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" {
		t.Fatalf("blocked subject: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestSessionRedisEverywhere: with store redis, two replicas share the
// sessions (a cookie made by one works at the other); a back-channel
// logout at one ends the session at both at once; logout deletes the
// session, so a copy of the cookie is worthless afterwards.
func TestSessionRedisEverywhere(t *testing.T) {
	rcfg := redistest.Config(t, redistest.Addr(t))
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	top := fmt.Sprintf("redis:\n  addresses: [%q]\n  key_prefix: %q\n", rcfg.Addresses[0], rcfg.KeyPrefix)
	yml := sessionYAML(idp, up.URL, "        store: redis\n        backchannel_logout: true\n", top)
	a := startSessionGateway(t, idp, yml)
	b := startSessionGateway(t, idp, yml)
	page := "/app/p"

	br := newBrowser(t)
	if res, body := br.login(idp, a.url+page, "alice", "alice-password"); res.StatusCode != 200 {
		t.Fatalf("login at a: %d %s", res.StatusCode, body)
	}
	cookies := br.c.Jar.Cookies(mustURL(t, a.url))
	// The cookie carries only the sealed id: small, one chunk.
	for _, c := range cookies {
		if c.Name == "gatehouse" && len(c.Value) > 200 {
			t.Fatalf("redis session cookie of %d bytes", len(c.Value))
		}
	}
	call := func(base string) int {
		req, _ := http.NewRequest(http.MethodGet, base+page, nil)
		req.Header.Set("Accept", "application/json")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, _ := do(t, req)
		return res.StatusCode
	}
	if call(a.url) != 200 || call(b.url) != 200 {
		t.Fatalf("the session does not work at both replicas: %d %d", call(a.url), call(b.url))
	}
	var sid string
	for _, s := range idp.Sessions() {
		sid = s.SID
	}
	if code, body := idp.BackChannelLogout(t, a.url+sessBackChan, sid, ""); code != 200 {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	if call(a.url) != 401 || call(b.url) != 401 {
		t.Fatalf("after back-channel logout at a: a %d, b %d", call(a.url), call(b.url))
	}

	// By subject, and by logout.
	br = newBrowser(t)
	br.login(idp, b.url+page, "bob", "bob-password")
	cookies = br.c.Jar.Cookies(mustURL(t, b.url))
	if call(a.url) != 200 {
		t.Fatal("bob's session does not work at a")
	}
	if code, body := idp.BackChannelLogout(t, b.url+sessBackChan, "", "bob"); code != 200 {
		t.Fatalf("back-channel logout by sub: %d %s", code, body)
	}
	if call(a.url) != 401 {
		t.Fatal("bob's session survived a logout by subject")
	}
	br = newBrowser(t)
	br.login(idp, a.url+page, "alice", "alice-password")
	cookies = br.c.Jar.Cookies(mustURL(t, a.url))
	req, _ := http.NewRequest(http.MethodPost, b.url+sessLogout, nil)
	req.Header.Set("Origin", b.url)
	br.noFollow(func() { br.do(req) })
	if call(a.url) != 401 {
		t.Fatal("a copy of the cookie works after logout")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSessionChooser: a route with two providers shows a chooser page;
// each link logs in at its provider.
func TestSessionChooser(t *testing.T) {
	one, two := testidp.Start(t), testidp.Start(t)
	up := newUpstream(t, "app")
	yml := sessionYAML(one, up.URL, "", "")
	yml = strings.Replace(yml, "identity_providers:\n", "identity_providers:\n  - name: two\n    issuer: "+two.Issuer+"\n    audiences: [api]\n    insecure_allow_http: true\n", 1)
	yml = strings.Replace(yml, "            scopes: [openid, email, offline_access]\n",
		"            scopes: [openid, email, offline_access]\n          - {provider: two, label: The Second, client_id: "+testidp.WebClientID+", client_secret: "+two.ClientSecret+"}\n", 1)
	tg := startSessionGateway(t, one, yml)
	two.AddRedirectURI(tg.url + sessCallback)

	b := newBrowser(t)
	res, body := b.get(tg.url + "/app/deep?q=1")
	if res.StatusCode != 200 || res.Request.URL.Path != "/.gatehouse/login" || !strings.Contains(body, "The Second") || !strings.Contains(body, ">idp<") {
		t.Fatalf("chooser: %d %s %s", res.StatusCode, res.Request.URL, body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("chooser Cache-Control %q", cc)
	}
	link := tg.url + "/.gatehouse/login?provider=two&rd=" + url.QueryEscape("/app/deep?q=1")
	if !strings.Contains(body, strings.ReplaceAll(strings.TrimPrefix(link, tg.url), "&", "&amp;")) {
		t.Fatalf("chooser has no link %s: %s", link, body)
	}
	res, body = b.login(two, link, "bob", "bob-password")
	got := decodeReceived(t, []byte(body))
	if res.StatusCode != 200 || got.Path != "/app/deep" || got.Query != "q=1" || got.Headers.Get("X-Auth-Issuer") != two.Issuer || got.Headers.Get("X-Auth-Subject") != "bob" {
		t.Fatalf("after login at two: %d %s", res.StatusCode, body)
	}
	if one.Logins() != 0 || two.Logins() != 1 {
		t.Fatalf("logins: one %d, two %d", one.Logins(), two.Logins())
	}
	// An unknown provider is a problem, not a redirect.
	b.noFollow(func() { res, body = b.get(tg.url + "/.gatehouse/login?provider=nope") })
	if res.StatusCode != 400 {
		t.Fatalf("unknown provider: %d %s", res.StatusCode, body)
	}
}

// TestSessionCAEPSessionRevoked: a CAEP session-revoked event pushed to
// the Shared Signals receiver ends the subject's browser sessions (it
// revokes the subject's credentials issued before the event; a session
// is issued at login); a login afterwards works.
func TestSessionCAEPSessionRevoked(t *testing.T) {
	idp := testidp.Start(t)
	tr := ssftest.Start(t)
	up := newUpstream(t, "app")
	top := revocationTop(t) + `shared_signals:
  path: /ssf/events
  transmitters:
    - name: test-idp
      issuer: ` + tr.Issuer + `
      metadata: ` + tr.MetadataURL + `
      audience: [` + ssfAudience + `]
      push_token: ` + ssfPushToken + `
      insecure_allow_http: true
      subjects: {issuers: [` + idp.Issuer + `]}
`
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "", top))
	tg.waitReady(t)
	page := tg.url + "/app/p"
	alice, bob := newBrowser(t), newBrowser(t)
	alice.login(idp, page, "alice", "alice-password")
	bob.login(idp, page, "bob", "bob-password")
	time.Sleep(1100 * time.Millisecond) // the event's time is after the logins (whole seconds)
	set := tr.Sign(t, tr.Claims(ssfAudience, ssf.EventSessionRevoked, idp.Issuer, "alice", time.Now()), nil)
	if code, body := ssftest.Push(t, tg.url+"/ssf/events", ssfPushToken, set); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	if _, body := alice.get(page); !atLoginPage(body) {
		t.Fatalf("alice's session survived session-revoked: %s", body)
	}
	if res, body := bob.get(page); res.StatusCode != 200 || atLoginPage(body) {
		t.Fatalf("bob's session ended too: %d", res.StatusCode)
	}
	if res, body := alice.login(idp, page, "alice", "alice-password"); res.StatusCode != 200 {
		t.Fatalf("login after the event: %d %s", res.StatusCode, body)
	}
}

// TestSessionSecureCookieNeedsHTTPS: with Secure cookies (the default), a
// login over plain http ends at a problem page that says why, instead of
// looping (the browser would drop the cookie and log in again forever).
func TestSessionSecureCookieNeedsHTTPS(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, strings.Replace(sessionYAML(idp, up.URL, "", ""), "        insecure_cookie: true\n", "", 1))
	b := newBrowser(t)
	res, body := b.login(idp, tg.url+"/app/", "alice", "alice-password")
	if res.StatusCode != 400 || !strings.Contains(body, "https") || res.Request.URL.Path != sessCallback {
		t.Fatalf("%d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
}

// TestSessionRedisDownFailsClosed: with store redis, a Redis outage
// answers 503 (session_store_unavailable), never a request let through
// and never a login loop; sessions work again when Redis is back.
func TestSessionRedisDownFailsClosed(t *testing.T) {
	raddr := redistest.Addr(t)
	rcfg := redistest.Config(t, raddr)
	proxy := redistest.NewProxy(t, raddr)
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	top := fmt.Sprintf("redis:\n  addresses: [%q]\n  key_prefix: %q\n  breaker: {cool_down: 100ms}\n", proxy.Addr(), rcfg.KeyPrefix)
	tg := startSessionGateway(t, idp, sessionYAML(idp, up.URL, "        store: redis\n", top))
	page := tg.url + "/app/p"
	b := newBrowser(t)
	if res, body := b.login(idp, page, "alice", "alice-password"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	proxy.Stop()
	var res *http.Response
	b.noFollow(func() { res, _ = b.get(page) })
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Location") != "" {
		t.Fatalf("with Redis down: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session works again", 5*time.Second, func() bool {
		var r *http.Response
		b.noFollow(func() { r, _ = b.get(page) })
		return r.StatusCode == 200
	})
}

// TestSessionBesideJWT: a route with methods [session, jwt] serves
// browsers by login and API clients by their bearer token; a bad token
// is refused, never sent to log in.
func TestSessionBesideJWT(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	tg := startSessionGateway(t, idp, strings.Replace(sessionYAML(idp, up.URL, "", ""), "methods: [session]", "methods: [session, jwt]", 1))
	tok := idp.ClientCredentialsToken(t)
	for _, accept := range []string{"application/json", "text/html"} {
		res, body := bearer(t, tg.url+"/app/x", tok, map[string]string{"Accept": accept})
		if res.StatusCode != 200 || decodeReceived(t, body).Headers.Get("X-Auth-Method") != "jwt" {
			t.Fatalf("bearer with Accept %s: %d %s", accept, res.StatusCode, body)
		}
		res, body = bearer(t, tg.url+"/app/x", tok+"x", map[string]string{"Accept": accept})
		if res.StatusCode != 401 || res.Header.Get("Location") != "" {
			t.Fatalf("bad bearer with Accept %s: %d %s", accept, res.StatusCode, body)
		}
	}
	b := newBrowser(t)
	if res, body := b.login(idp, tg.url+"/app/y", "bob", "bob-password"); res.StatusCode != 200 || decodeReceived(t, []byte(body)).Headers.Get("X-Auth-Method") != "session" {
		t.Fatalf("browser: %d %s", res.StatusCode, body)
	}
}

// TestSessionPublicClient: token_auth_method none (a public client): the
// code is redeemed with the PKCE verifier alone.
func TestSessionPublicClient(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "app")
	yml := strings.Replace(sessionYAML(idp, up.URL, "", ""), "            client_id: "+testidp.WebClientID+"\n            client_secret: "+idp.ClientSecret+"\n",
		"            client_id: "+testidp.PublicClientID+"\n            token_auth_method: none\n", 1)
	tg := startSessionGateway(t, idp, yml)
	b := newBrowser(t)
	res, body := b.login(idp, tg.url+"/app/pub", "alice", "alice-password")
	if res.StatusCode != 200 || decodeReceived(t, []byte(body)).Headers.Get("X-Auth-Subject") != "alice" {
		t.Fatalf("public client login: %d %s", res.StatusCode, body)
	}
}

// TestSessionUserInfo: at login the gateway reads the provider's UserInfo
// endpoint (userinfo, default true), and an answer about another subject
// fails the login rather than lending its claims to this user (OIDC Core
// 5.3.2); with userinfo: false the endpoint is never called.
func TestSessionUserInfo(t *testing.T) {
	for _, tc := range []struct {
		name, otherSub, clientExtra string
		calls                       bool
		status                      int
	}{
		{"about the user", "", "", true, http.StatusOK},
		{"about another subject", "mallory", "", true, http.StatusBadRequest},
		{"userinfo false", "mallory", "            userinfo: false\n", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := testidp.Start(t)
			idp.SetUserInfoSubject(tc.otherSub)
			up := newUpstream(t, "app")
			const scopes = "            scopes: [openid, email, offline_access]\n"
			yml := sessionYAML(idp, up.URL, "", "")
			if !strings.Contains(yml, scopes) {
				t.Fatal("sessionYAML changed: no scopes line to add to")
			}
			tg := startSessionGateway(t, idp, strings.Replace(yml, scopes, scopes+tc.clientExtra, 1))
			b := newBrowser(t)
			res, body := b.login(idp, tg.url+"/app/page", "alice", "alice-password")
			if res.StatusCode != tc.status {
				t.Fatalf("after login: %d at %s: %s", res.StatusCode, res.Request.URL.Path, body)
			}
			if got := idp.UserInfoCalls() > 0; got != tc.calls {
				t.Fatalf("UserInfo called %d times, want calls %v", idp.UserInfoCalls(), tc.calls)
			}
			session := false
			u, _ := url.Parse(tg.url + "/")
			for _, c := range b.c.Jar.Cookies(u) {
				session = session || c.Name == "gatehouse"
			}
			if session != (tc.status == http.StatusOK) {
				t.Fatalf("session cookie after login: %v (status %d)", session, res.StatusCode)
			}
			if tc.status == http.StatusOK {
				if sub := decodeReceived(t, []byte(body)).Headers.Get("X-Auth-Subject"); sub != "alice" {
					t.Fatalf("the upstream got subject %q", sub)
				}
			} else if res.Request.URL.Path != sessCallback || !strings.Contains(body, "information") {
				t.Fatalf("a refused UserInfo answer ended at %s: %s", res.Request.URL.Path, body)
			}
		})
	}
}
