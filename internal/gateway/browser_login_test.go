package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/testbrowser"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// Browser login in a real browser (issue 15 item 7): headless Chromium
// (internal/testbrowser) logs in through the real OpenID Provider's login
// page (internal/testidp) via a gateway on TLS in front of the built-in
// echo backend. Host names come from Chromium's resolver rules, so the
// gateway (gw.test), a same-site page (evil.gw.test) and a cross-site
// page (evil.test) are different origins and sites, as on the web; all
// are 127.0.0.1.

const browserHostRules = "MAP *.test 127.0.0.1"

// browserGateway is a gateway with a TLS listener, a session route /app
// and a public route / (where logout lands), both on builtin:echo.
type browserGateway struct {
	*testGateway
	origin string // https://gw.test:PORT
	cert   *testbrowser.Cert
	client *http.Client // trusts cert, for what the test posts itself
}

// store is the session store section: "" for cookie sessions (then
// back-channel logout runs over the revocation list), or the
// top-level redis section for store: redis.
// edits change the YAML before the gateway starts.
func startBrowserGateway(t *testing.T, idp *testidp.Provider, cert *testbrowser.Cert, redisTop string, edits ...func(string) string) *browserGateway {
	t.Helper()
	top, store := revocationTop(t), ""
	if redisTop != "" {
		top, store = redisTop, "        store: redis\n"
	}
	yml := `
listeners:
  - name: main
    address: "127.0.0.1:0"
    tls: {cert_file: "` + cert.CertFile + `", key_file: "` + cert.KeyFile + `"}
admin:
  address: "127.0.0.1:0"
` + adminTokenYAML() + `audit: {output: stderr}
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
        keys: [` + sessionKey + `]
        backchannel_logout: true
        refresh_before: 1s
` + store + `
        clients:
          - provider: idp
            client_id: ` + testidp.WebClientID + `
            client_secret: ` + idp.ClientSecret + `
            scopes: [openid, email, offline_access]
    upstream: {targets: ["builtin:echo"]}
  - name: home
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`
	for _, e := range edits {
		yml = e(yml)
	}
	tg := startGateway(t, yml).serve()
	tg.waitReady(t)
	_, port, _ := net.SplitHostPort(tg.Addr("main").String())
	bg := &browserGateway{testGateway: tg, origin: "https://gw.test:" + port, cert: cert,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: cert.Pool(), ServerName: "gw.test"},
			// The browser's names are its own: dial the listener.
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, tg.Addr("main").String())
			},
		}}}
	t.Cleanup(bg.client.CloseIdleConnections)
	idp.AddRedirectURI(bg.origin + sessCallback)
	idp.AddPostLogoutRedirectURI(bg.origin + "/")
	return bg
}

// browserEcho is what the echo backend reports (see internal/proxy/echo.go).
type browserEcho struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"raw_query"`
	Headers map[string][]string `json:"headers"`
}

func (e browserEcho) header(name string) string {
	if v := e.Headers[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// browserPage is what the tab shows: the URL, and the echo report when it is one.
type browserPage struct {
	url  string
	text string
	echo *browserEcho
}

func (p browserPage) atLogin() bool { return strings.Contains(p.url, testidp.LoginPath) }

// browserSettle waits until the tab has finished loading a page whose URL
// satisfies want, and returns it.
func browserSettle(t *testing.T, b *testbrowser.Browser, what string, want func(u string) bool) browserPage {
	t.Helper()
	var p browserPage
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.url = b.Location()
		if want(p.url) {
			state, err := testbrowser.Run(b, chromedp.Evaluate[string](`document.readyState`))
			if err == nil && state == "complete" {
				break
			}
		}
		if time.Now().After(deadline) {
			body, _ := testbrowser.Run(b, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: the browser is at %q: %.500s", what, p.url, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.text, _ = testbrowser.Run(b, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	// Chromium shows JSON in a <pre> (with a pretty-print control around it).
	if pre, err := testbrowser.Run(b, chromedp.Evaluate[string](`(document.querySelector("pre") || {}).textContent || ""`)); err == nil && pre != "" {
		var e browserEcho
		if json.Unmarshal([]byte(pre), &e) == nil && e.Method != "" {
			p.echo = &e
		}
	}
	return p
}

func urlPrefixed(prefix string) func(string) bool {
	return func(u string) bool { return strings.HasPrefix(u, prefix) }
}

// browserVisit navigates and returns the page it ends on (after redirects) once
// it is one of want's.
func browserVisit(t *testing.T, b *testbrowser.Browser, u string, want func(string) bool) browserPage {
	t.Helper()
	if err := b.Do(chromedp.Navigate(u)); err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	return browserSettle(t, b, "visit "+u, want)
}

// browserLogIn fills the OP's login form the tab shows and submits it, and
// returns the page the browser is sent back to on origin.
func browserLogIn(t *testing.T, b *testbrowser.Browser, user, password, origin string) browserPage {
	t.Helper()
	b.MustDo(
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
	return browserSettle(t, b, "after the login form", urlPrefixed(origin))
}

func browserSessionCookie(t *testing.T, b *testbrowser.Browser, origin string) *network.Cookie {
	t.Helper()
	cs, err := b.Cookies(origin + "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "__Host-gatehouse" {
			return c
		}
	}
	return nil
}

// TestBrowserLogin walks the whole browser-login life in Chromium: a
// protected page redirects to the OP's login page; the form is filled
// and submitted; the callback returns to the page first asked for and
// the backend sees who the user is; the session cookie is
// __Host-/Secure/HttpOnly/SameSite=Lax; after the access token expires
// the session refreshes it and the user stays in; cross-site and
// same-site-but-cross-origin POSTs are refused while a same-origin one
// passes; a back-channel logout ends the session; logout clears the
// cookie and goes through the OP's end_session back to the site; and a
// failed refresh ends the session.
func TestBrowserLogin(t *testing.T) {
	cert := testbrowser.NewCert(t, "gw.test", "*.gw.test", "evil.test", "127.0.0.1")
	b := testbrowser.New(t, testbrowser.TrustCert(cert.Cert), testbrowser.MapHosts(browserHostRules))
	idp := testidp.Start(t)
	const tokenTTL = 4 * time.Second
	idp.SetAccessTokenTTL(tokenTTL)
	gw := startBrowserGateway(t, idp, cert, "")
	app := gw.origin + "/app/page?x=1&y=two"

	// 1. Log in.
	p := browserVisit(t, b, app, func(u string) bool { return strings.Contains(u, testidp.LoginPath) })
	if !strings.HasPrefix(p.url, idp.Issuer+testidp.LoginPath) {
		t.Fatalf("a protected page sent the browser to %q, want the OP's login page", p.url)
	}
	p = browserLogIn(t, b, "alice", "alice-password", gw.origin)
	if p.url != app || p.echo == nil {
		t.Fatalf("after login the browser is at %q, want %q with the echo backend: %.300s", p.url, app, p.text)
	}
	for h, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Method": "session", "X-Auth-Issuer": idp.Issuer, "X-Auth-Roles": "admin", "X-Auth-Groups": "staff,ops"} {
		if got := p.echo.header(h); got != want {
			t.Errorf("the backend got %s = %q, want %q", h, got, want)
		}
	}
	if p.echo.Path != "/app/page" || p.echo.Query != "x=1&y=two" {
		t.Errorf("the backend got %s?%s", p.echo.Path, p.echo.Query)
	}
	loginAt := time.Now()

	// 2. The cookie.
	c := browserSessionCookie(t, b, gw.origin)
	if c == nil {
		t.Fatal("no __Host-gatehouse cookie after login")
	}
	if !c.Secure || !c.HTTPOnly || c.Path != "/" || c.Domain != "gw.test" || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("session cookie: secure %v, httpOnly %v, path %q, domain %q, sameSite %q; want Secure, HttpOnly, /, host-only gw.test, Lax",
			c.Secure, c.HTTPOnly, c.Path, c.Domain, c.SameSite)
	}
	if v, _ := testbrowser.Run(b, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(v, "gatehouse") {
		t.Errorf("scripts can read the session cookie: %q", v)
	}

	// 3. The access token expires; the session refreshes it and the user
	// stays in, without a second login.
	time.Sleep(time.Until(loginAt.Add(tokenTTL + time.Second)))
	p = browserVisit(t, b, gw.origin+"/app/later", urlPrefixed(gw.origin+"/app/later"))
	if p.echo == nil || p.echo.header("X-Auth-Subject") != "alice" || idp.Logins() != 1 {
		t.Fatalf("after the access token expired: at %q (logins %d): %.300s", p.url, idp.Logins(), p.text)
	}

	// 4. CSRF. A page on another site posts a form to the app: the
	// browser does not send the Lax cookie, and the backend never sees
	// the POST as alice's.
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><form id="f" method="POST" action="%s/app/items">
<input name="amount" value="1000"></form><script>document.getElementById("f").submit()</script></body></html>`, gw.origin)
	}))
	evil.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	evil.Config.ErrorLog = log.New(io.Discard, "", 0)
	evil.StartTLS()
	defer evil.Close()
	_, evilPort, _ := net.SplitHostPort(evil.Listener.Addr().String())
	for _, tc := range []struct {
		name, page, want string
	}{
		// No cookie goes along (SameSite=Lax): no session, 401.
		{"cross-site", "https://evil.test:" + evilPort + "/", "problem:unauthorized"},
		// Same site, other origin: the Lax cookie goes along, so only the
		// gateway's Origin/Sec-Fetch-Site check stands in the way: 403.
		{"same-site, other origin", "https://evil.gw.test:" + evilPort + "/", "problem:forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.Do(chromedp.Navigate(tc.page)); err != nil {
				t.Fatal(err)
			}
			p := browserSettle(t, b, "CSRF form", func(u string) bool { return !strings.HasPrefix(u, tc.page) })
			if p.echo != nil && p.echo.Method == http.MethodPost {
				t.Fatalf("a %s form POST reached the backend (as %q): %.300s", tc.name, p.echo.header("X-Auth-Subject"), p.text)
			}
			if p.url != gw.origin+"/app/items" || !strings.Contains(p.text, tc.want) {
				t.Fatalf("a %s form POST ended at %q with %.300s; want %s", tc.name, p.url, p.text, tc.want)
			}
		})
	}
	if s := browserVisit(t, b, gw.origin+"/app/still", urlPrefixed(gw.origin+"/app/still")); s.echo == nil || s.echo.header("X-Auth-Subject") != "alice" {
		t.Fatalf("the refused POSTs ended the session: %.300s", s.text)
	}
	// The app's own page may post (same origin).
	status, err := testbrowser.Run(b, chromedp.Evaluate[int](`fetch("/app/items", {method: "POST", body: "{}",
		headers: {"Content-Type": "application/json", "Accept": "application/json"}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("same-origin POST: %d, %v", status, err)
	}

	// 5. Back-channel logout: the OP's signed logout_token for alice's
	// OP session ends the gateway session; the next page load asks to
	// log in again.
	var sid string
	for _, s := range idp.Sessions() {
		if s.Subject == "alice" {
			sid = s.SID
		}
	}
	if code, body := gw.postLogoutToken(t, idp.LogoutToken(t, sid, "", nil)); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	if p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("after back-channel logout the browser is at %q: %.300s", p.url, p.text)
	}

	// 6. Log in again, then log out as an app does: its page posts a
	// form to the logout endpoint; the gateway clears the cookie and
	// sends the browser through the OP's end_session back to the site.
	if p := browserLogIn(t, b, "alice", "alice-password", gw.origin); p.echo == nil || p.echo.header("X-Auth-Subject") != "alice" {
		t.Fatalf("second login: at %q: %.300s", p.url, p.text)
	}
	if _, err := testbrowser.Run(b, chromedp.Evaluate[bool](`(() => { const f = document.createElement("form");
		f.method = "POST"; f.action = "`+sessLogout+`"; document.body.appendChild(f); f.submit(); return true })()`)); err != nil {
		t.Fatalf("logout form: %v", err)
	}
	browserLoggedOut(t, b, gw, idp, 1)

	// 6b. The gateway's own logout page (GET shows a form that posts).
	// Chromium checks a form's whole redirect chain against the page's
	// CSP form-action, so that page must not restrict it to 'self' (the
	// 303 goes to the OP): a regression shows in the browser log.
	if p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("at %q", p.url)
	}
	if p := browserLogIn(t, b, "alice", "alice-password", gw.origin); p.echo == nil {
		t.Fatalf("third login: at %q: %.300s", p.url, p.text)
	}
	t.Run("logout page", func(t *testing.T) {
		p := browserVisit(t, b, gw.origin+sessLogout, urlPrefixed(gw.origin+sessLogout))
		if err := b.Do(chromedp.Click(chromedp.CSS(`form[method="POST"] button, form[method="POST"] input[type="submit"]`))); err != nil {
			t.Fatalf("logout form: %v: %.300s", err, p.text)
		}
		browserLoggedOut(t, b, gw, idp, 2)
	})

	// 7. A refresh that fails ends the session.
	if p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("at %q", p.url)
	}
	if p := browserLogIn(t, b, "bob", "bob-password", gw.origin); p.echo == nil || p.echo.header("X-Auth-Subject") != "bob" {
		t.Fatalf("bob's login: at %q: %.300s", p.url, p.text)
	}
	bobAt := time.Now()
	idp.RevokeRefreshTokens()
	time.Sleep(time.Until(bobAt.Add(tokenTTL + time.Second)))
	if p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("a failed refresh left the session in place: at %q: %.300s", p.url, p.text)
	}
}

// postLogoutToken posts a logout_token to the back-channel logout
// endpoint as the OP does (server to server, over the gateway's TLS).
func (bg *browserGateway) postLogoutToken(t *testing.T, token string) (int, string) {
	t.Helper()
	res, err := bg.client.PostForm(bg.origin+sessBackChan, url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatalf("back-channel logout: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, string(body)
}

// TestBrowserLoginRedisStore: with store: redis the browser's cookie
// carries only the sealed session id; the session lives in Redis, and a
// back-channel logout deletes it there.
func TestBrowserLoginRedisStore(t *testing.T) {
	rcfg := redistest.Config(t, redistest.Addr(t))
	cert := testbrowser.NewCert(t, "gw.test", "127.0.0.1")
	b := testbrowser.New(t, testbrowser.TrustCert(cert.Cert), testbrowser.MapHosts(browserHostRules))
	idp := testidp.Start(t)
	gw := startBrowserGateway(t, idp, cert, fmt.Sprintf("redis:\n  addresses: [%q]\n  key_prefix: %q\n", rcfg.Addresses[0], rcfg.KeyPrefix))
	app := gw.origin + "/app/r"

	if p := browserVisit(t, b, app, func(u string) bool { return strings.Contains(u, testidp.LoginPath) }); !p.atLogin() {
		t.Fatalf("at %q", p.url)
	}
	if p := browserLogIn(t, b, "bob", "bob-password", gw.origin); p.url != app || p.echo == nil || p.echo.header("X-Auth-Subject") != "bob" {
		t.Fatalf("after login: at %q: %.300s", p.url, p.text)
	}
	c := browserSessionCookie(t, b, gw.origin)
	if c == nil || !c.Secure || !c.HTTPOnly || len(c.Value) > 200 {
		t.Fatalf("session cookie with store redis: %+v", c)
	}
	// The session is in Redis, sealed.
	rdb := redistest.ClientFor(t, rcfg).Redis()
	keys, err := rdb.Keys(context.Background(), rcfg.KeyPrefix+"*session:{*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys in Redis: %q, %v", keys, err)
	}
	if v := rdb.Get(context.Background(), keys[0]).Val(); v == "" || strings.Contains(v, "bob") {
		t.Fatalf("the Redis session is missing or not sealed (%d bytes)", len(v))
	}

	var sid string
	for _, s := range idp.Sessions() {
		sid = s.SID
	}
	if code, body := gw.postLogoutToken(t, idp.LogoutToken(t, sid, "", nil)); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	if n := rdb.Exists(context.Background(), keys[0]).Val(); n != 0 {
		t.Fatal("the session is still in Redis after back-channel logout")
	}
	if p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("after back-channel logout the browser is at %q: %.300s", p.url, p.text)
	}
}

// browserLoggedOut waits for the end of a logout: the browser back on
// the site's post-logout page after the OP's end_session (the
// endSessions-th), the session cookie gone, and the app asking to log in.
func browserLoggedOut(t *testing.T, b *testbrowser.Browser, gw *browserGateway, idp *testidp.Provider, endSessions int) {
	t.Helper()
	browserSettle(t, b, "after logout", func(u string) bool { return u == gw.origin+"/" })
	if n := idp.EndSessions(); n != endSessions {
		t.Fatalf("logout did not go through the OP's end_session (%d, want %d)", n, endSessions)
	}
	if c := browserSessionCookie(t, b, gw.origin); c != nil {
		t.Fatalf("the session cookie survived logout: %+v", c)
	}
	if p := browserVisit(t, b, gw.origin+"/app/after-logout", func(u string) bool { return !strings.HasPrefix(u, gw.origin) }); !p.atLogin() {
		t.Fatalf("after logout the browser is at %q", p.url)
	}
}

// TestBrowserLoginChunkedCookie: a session too big for one cookie (a
// user in many groups: the ID token and the kept claims grow) is split
// into __Host-gatehouse, __Host-gatehouse.1 ... and the browser sends
// them all back: the backend sees every group.
func TestBrowserLoginChunkedCookie(t *testing.T) {
	groups := make([]string, 120)
	for i := range groups {
		groups[i] = fmt.Sprintf("department-%03d-members", i)
	}
	// Written before this test's provider starts (its handlers read the
	// map); no other test's provider is running (no t.Parallel here).
	testidp.Users["carol"] = testidp.User{Password: "carol-password", Subject: "carol", Email: "carol@example.test", Roles: []string{"reader"}, Groups: groups}

	cert := testbrowser.NewCert(t, "gw.test", "127.0.0.1")
	b := testbrowser.New(t, testbrowser.TrustCert(cert.Cert), testbrowser.MapHosts(browserHostRules))
	idp := testidp.Start(t)
	gw := startBrowserGateway(t, idp, cert, "")
	app := gw.origin + "/app/big"
	browserVisit(t, b, app, func(u string) bool { return strings.Contains(u, testidp.LoginPath) })
	p := browserLogIn(t, b, "carol", "carol-password", gw.origin)
	if p.url != app || p.echo == nil || p.echo.header("X-Auth-Subject") != "carol" {
		t.Fatalf("after login: at %q: %.300s", p.url, p.text)
	}
	if got := p.echo.header("X-Auth-Groups"); got != strings.Join(groups, ",") {
		t.Fatalf("the backend got %d bytes of groups, want all %d groups", len(got), len(groups))
	}
	cs, err := b.Cookies(gw.origin + "/")
	if err != nil {
		t.Fatal(err)
	}
	var chunks []string
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "__Host-gatehouse") && !strings.Contains(c.Name, "-login") {
			chunks = append(chunks, c.Name)
			if !c.Secure || !c.HTTPOnly || c.Path != "/" || len(c.Value) > 4000 {
				t.Errorf("chunk %s: secure %v, httpOnly %v, path %q, %d bytes", c.Name, c.Secure, c.HTTPOnly, c.Path, len(c.Value))
			}
		}
	}
	if len(chunks) < 2 {
		t.Fatalf("session cookies %q: want the session split into chunks", chunks)
	}
	t.Logf("session cookies: %q", chunks)
	// And the chunked session keeps working.
	if p := browserVisit(t, b, gw.origin+"/app/again", urlPrefixed(gw.origin+"/app/again")); p.echo == nil || p.echo.header("X-Auth-Subject") != "carol" {
		t.Fatalf("second request with the chunked session: %.300s", p.text)
	}
}

// TestBrowserLoginChooser: with two providers a protected page shows the
// chooser; clicking one logs in there and returns to the page asked for.
func TestBrowserLoginChooser(t *testing.T) {
	cert := testbrowser.NewCert(t, "gw.test", "127.0.0.1")
	b := testbrowser.New(t, testbrowser.TrustCert(cert.Cert), testbrowser.MapHosts(browserHostRules))
	one, two := testidp.Start(t), testidp.Start(t)
	gw := startBrowserGateway(t, one, cert, "", func(yml string) string {
		yml = strings.Replace(yml, "identity_providers:\n", "identity_providers:\n  - name: two\n    issuer: "+two.Issuer+"\n    audiences: [api]\n    insecure_allow_http: true\n", 1)
		return strings.Replace(yml, "            scopes: [openid, email, offline_access]\n",
			"            scopes: [openid, email, offline_access]\n          - {provider: two, label: The Second, client_id: "+testidp.WebClientID+", client_secret: "+two.ClientSecret+"}\n", 1)
	})
	two.AddRedirectURI(gw.origin + sessCallback)
	app := gw.origin + "/app/deep?q=1"

	p := browserVisit(t, b, app, urlPrefixed(gw.origin+"/.gatehouse/login"))
	if !strings.Contains(p.text, "The Second") {
		t.Fatalf("chooser at %q: %.300s", p.url, p.text)
	}
	b.MustDo(chromedp.Click(`//a[contains(., "The Second")]`))
	if p := browserSettle(t, b, "after choosing", urlPrefixed(two.Issuer+testidp.LoginPath)); !p.atLogin() {
		t.Fatalf("choosing the second provider led to %q", p.url)
	}
	p = browserLogIn(t, b, "bob", "bob-password", gw.origin)
	if p.url != app || p.echo == nil || p.echo.header("X-Auth-Issuer") != two.Issuer || p.echo.header("X-Auth-Subject") != "bob" {
		t.Fatalf("after login at the second provider: at %q: %.300s", p.url, p.text)
	}
	if one.Logins() != 0 || two.Logins() != 1 {
		t.Fatalf("logins: one %d, two %d", one.Logins(), two.Logins())
	}
}
