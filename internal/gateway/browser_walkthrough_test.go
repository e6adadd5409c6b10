package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/gatehouse/gatehouse/internal/testbrowser"
)

// TestBrowserLoginWalkthrough follows docs/browser-login.md's "Five
// minutes" walkthrough literally, in headless Chromium: zitadel/oidc's
// example OpenID Provider (the program the walkthrough runs with go run,
// started here in-process on 127.0.0.1 with the same issuer spelling,
// http://localhost:PORT/, and the same client registration: web/secret,
// the gateway's callback as REDIRECT_URI), and the gateway loaded from
// the real examples/browser-login.yaml with only the environment
// overrides the file offers. Then what the page says a person does:
// open /app/hello?x=1, log in on the provider's page as
// test-user@localhost, see the echo backend report who they are, log out
// with the logout page's button, and be asked to log in again.
func TestBrowserLoginWalkthrough(t *testing.T) {
	b := testbrowser.New(t)

	// The gateway's port first: the provider's client registers its
	// callback.
	gwAddr := freePort(t)
	_, gwPort, _ := net.SplitHostPort(gwAddr)
	gwOrigin := "http://localhost:" + gwPort

	// Terminal 1: the example provider (its main.go, on the loopback).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, opPort, _ := net.SplitHostPort(ln.Addr().String())
	issuer := "http://localhost:" + opPort + "/"
	storage.RegisterClients(storage.WebClient("web", "secret", gwOrigin+"/.gatehouse/callback"))
	op := &http.Server{
		Handler:           exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := op.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("example provider: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = op.Shutdown(ctx)
	})

	// Terminal 2: the gateway with the example file as it is; only the
	// environment differs (ports, and the provider's port in its issuer).
	yml, err := os.ReadFile("../../examples/browser-login.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LISTEN_ADDR", gwAddr)
	t.Setenv("ADMIN_ADDR", "127.0.0.1:0")
	t.Setenv("OIDC_ISSUER", issuer)
	for _, k := range []string{"OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "GATEHOUSE_SESSION_KEY", "OIDC_PROVIDER_LOGOUT"} {
		t.Setenv(k, "") // the file's defaults, whatever this shell has
	}
	gw := startGateway(t, string(yml)).serve()
	gw.waitReady(t)

	loginPage := issuer + "login/username"
	app := gwOrigin + "/app/hello?x=1"

	// "Open http://localhost:8080/app/hello?x=1: the provider's login page appears."
	p := browserVisit(t, b, app, func(u string) bool { return !strings.HasPrefix(u, gwOrigin) })
	if !strings.HasPrefix(p.url, loginPage) {
		t.Fatalf("a protected page sent the browser to %q, want the provider's login page %s: %.300s", p.url, loginPage, p.text)
	}
	logIn := func(what string) browserPage {
		t.Helper()
		b.MustDo(
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "test-user@localhost"),
			chromedp.SendKeys(chromedp.ID("password"), "verysecure"),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		)
		return browserSettle(t, b, what, urlPrefixed(gwOrigin))
	}

	// "Log in as test-user@localhost / verysecure: you are back at
	// /app/hello?x=1, and the echo backend shows X-Auth-Subject,
	// X-Auth-Method: session, X-Auth-Email."
	p = logIn("after the login form")
	if p.url != app || p.echo == nil {
		t.Fatalf("after login the browser is at %q, want %q with the echo backend: %.300s", p.url, app, p.text)
	}
	for h, want := range map[string]string{
		"X-Auth-Subject": "id1", // the example provider's subject of test-user@localhost
		"X-Auth-Method":  "session",
		"X-Auth-Email":   "test-user@zitadel.ch",
		"X-Auth-Name":    "Test User",
	} {
		if got := p.echo.header(h); got != want {
			t.Errorf("the backend got %s = %q, want %q", h, got, want)
		}
	}
	if p.echo.Path != "/app/hello" || p.echo.Query != "x=1" {
		t.Errorf("the backend got %s?%s, want /app/hello?x=1", p.echo.Path, p.echo.Query)
	}
	if walkthroughSessionCookie(t, b, gwOrigin) == "" {
		t.Fatal("no session cookie after login")
	}

	// "Log out: open /.gatehouse/logout and press the button."
	p = browserVisit(t, b, gwOrigin+"/.gatehouse/logout", urlPrefixed(gwOrigin+"/.gatehouse/logout"))
	if err := b.Do(chromedp.Click(chromedp.CSS(`form[method="POST"] button`))); err != nil {
		t.Fatalf("logout button: %v: %.300s", err, p.text)
	}
	p = browserSettle(t, b, "after logout", func(u string) bool { return u == gwOrigin+"/" })
	if p.echo == nil || p.echo.header("X-Auth-Subject") != "" {
		t.Fatalf("after logout the browser is at %q with %.300s; want the public home page, anonymous", p.url, p.text)
	}
	if c := walkthroughSessionCookie(t, b, gwOrigin); c != "" {
		t.Fatalf("the session cookie %s survived logout", c)
	}

	// "Open /app/ again: the provider asks you to log in."
	p = browserVisit(t, b, gwOrigin+"/app/", func(u string) bool { return !strings.HasPrefix(u, gwOrigin) })
	if !strings.HasPrefix(p.url, loginPage) {
		t.Fatalf("after logout /app/ led to %q, want the provider's login page: %.300s", p.url, p.text)
	}
	p = logIn("after the second login")
	if p.url != gwOrigin+"/app/" || p.echo == nil || p.echo.header("X-Auth-Subject") != "id1" {
		t.Fatalf("after the second login the browser is at %q: %.300s", p.url, p.text)
	}
}

// walkthroughSessionCookie names the gateway's session cookie the
// browser holds ("" when none): gatehouse, as insecure_cookie names it on
// plain http.
func walkthroughSessionCookie(t *testing.T, b *testbrowser.Browser, origin string) string {
	t.Helper()
	cs, err := b.Cookies(origin + "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "gatehouse" || c.Name == "__Host-gatehouse" {
			return c.Name
		}
	}
	return ""
}
