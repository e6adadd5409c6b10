// Package testbrowser starts a real headless Chromium for tests (Debian's
// package `chromium`), driven over the DevTools protocol with chromedp.
// Each Browser is a fresh process with a fresh profile in a temporary
// directory, no background networking, no sync, no component updates and
// no QUIC, so a test talks only to the servers it started.
//
// When Chromium is missing the test is skipped with a message saying
// how to install it, unless GATEHOUSE_REQUIRE_SERVICES=1 (as in CI),
// where it fails. GATEHOUSE_CHROMIUM names another binary.
//
// A separate package so the gateway binary never links testing or
// chromedp.
package testbrowser

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// DefaultPath is Debian's Chromium.
const DefaultPath = "/usr/bin/chromium"

// DefaultTimeout bounds each Run: a page that never loads fails the
// test instead of hanging it.
const DefaultTimeout = 30 * time.Second

// Path returns the Chromium binary to use: $GATEHOUSE_CHROMIUM, else
// DefaultPath, else chromium or chromium-browser on $PATH.
func Path() (string, error) {
	if p := os.Getenv("GATEHOUSE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("GATEHOUSE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium binary (" + DefaultPath + " or on $PATH)")
}

// Require returns the Chromium binary, or skips the test (fails it when
// GATEHOUSE_REQUIRE_SERVICES=1) when there is none.
func Require(tb testing.TB) string {
	tb.Helper()
	p, err := Path()
	if err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("Chromium is required (GATEHOUSE_REQUIRE_SERVICES=1): %v", err)
		}
		tb.Skipf("Chromium not found, skipping the real-browser test (apt-get install -y chromium; or set GATEHOUSE_CHROMIUM; GATEHOUSE_REQUIRE_SERVICES=1 makes this a failure): %v", err)
	}
	return p
}

type options struct {
	spki    []string
	hostMap string
	timeout time.Duration
	extra   []chromedp.ExecAllocatorOption
}

// Option configures New.
type Option func(*options)

// TrustCert makes the browser accept TLS certificates with cert's public
// key (--ignore-certificate-errors-spki-list): a test's self-signed
// server certificate, and nothing else.
func TrustCert(cert *x509.Certificate) Option {
	return func(o *options) {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		o.spki = append(o.spki, base64.StdEncoding.EncodeToString(sum[:]))
	}
}

// MapHosts sets Chromium's host resolver rules, e.g. "MAP *.test
// 127.0.0.1": tests then give servers on the loopback distinct sites
// (gw.test, idp.test, evil.test), which cookies, SameSite and
// Sec-Fetch-Site tell apart where 127.0.0.1 and localhost ports would
// not (a site ignores the port).
func MapHosts(rules string) Option { return func(o *options) { o.hostMap = rules } }

// Timeout sets the bound of each Run (default DefaultTimeout).
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Flag adds a Chromium command-line flag.
func Flag(name string, value any) Option {
	return func(o *options) { o.extra = append(o.extra, chromedp.Flag(name, value)) }
}

// Browser is one headless Chromium process with one tab.
type Browser struct {
	tb      testing.TB
	ctx     context.Context // the tab
	timeout time.Duration

	mu  sync.Mutex
	log []string
}

// New starts Chromium for the test (or skips it, see Require); it is
// stopped, and its profile removed, when the test ends.
func New(tb testing.TB, opts ...Option) *Browser {
	tb.Helper()
	path := Require(tb)
	o := options{timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	dir := tb.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: the sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		// HTTPS-Upgrades would retry a test's plain-http pages on 443.
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater,AutofillServerCommunication"),
		chromedp.WindowSize(1024, 768),
	)
	if len(o.spki) > 0 {
		flags = append(flags, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(o.spki, ",")))
	}
	if o.hostMap != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", o.hostMap))
	}
	flags = append(flags, o.extra...)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		tb.Logf("chromedp: "+format, args...)
	}))
	tb.Cleanup(func() {
		// Close the browser gracefully (Browser.close), so it reaps its
		// own helper processes; a killed browser leaves them orphaned.
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			tb.Logf("testbrowser: closing the browser: %v", err)
		}
		cancelTab()
		cancelAlloc() // waits for the process to exit
	})
	// Start the browser now, so a broken install fails here and not in
	// the middle of a test. The first call must get the tab's own
	// context (a derived one would end the browser with it), so the
	// timeout is a timer.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("testbrowser: starting %s: %v", path, err)
		}
	case <-timer.C:
		cancelTab()
		tb.Fatalf("testbrowser: %s did not start within %v", path, o.timeout)
	}
	b := &Browser{tb: tb, ctx: ctx, timeout: o.timeout}
	b.collectLog()
	return b
}

// collectLog keeps the tab's log entries (CSP violations, blocked
// requests, console errors) and prints them when the test fails: the
// browser's own words on why a page did not go where a test expected.
func (b *Browser) collectLog() {
	entries := chromedp.Events(b.ctx, cdplog.EntryAdded) // subscribed before Enable: nothing lost
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		b.tb.Logf("testbrowser: no browser log: %v", err)
		return
	}
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry == nil {
				continue
			}
			b.mu.Lock()
			if len(b.log) < 200 {
				b.log = append(b.log, fmt.Sprintf("%s %s: %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
			b.mu.Unlock()
		}
	}()
	b.tb.Cleanup(func() {
		if b.tb.Failed() {
			for _, l := range b.Log() {
				b.tb.Logf("browser log: %s", l)
			}
		}
	})
}

// Log returns the browser log entries so far (at most 200).
func (b *Browser) Log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// Context returns the tab's context, for chromedp calls a helper here
// does not cover (no deadline: add one).
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs steps in the tab, in order, within the timeout.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// MustDo is Do that fails the test on error.
func (b *Browser) MustDo(steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	if err := b.Do(steps...); err != nil {
		b.tb.Fatalf("testbrowser: %v (at %s)", err, b.Location())
	}
}

// Run runs one action in b's tab within its timeout and returns its
// value (a function: methods cannot have type parameters).
func Run[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Navigate loads url and waits for its body.
func (b *Browser) Navigate(url string) error {
	return b.Do(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
}

// Location returns the tab's current URL ("" if it cannot be read).
func (b *Browser) Location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return ""
	}
	return u
}

// Text returns the visible text of the first element matching the CSS
// selector (the whole page: "body"), waiting for it to be visible.
func (b *Browser) Text(selector string) (string, error) {
	return Run(b, chromedp.Text(chromedp.CSS(selector), chromedp.NodeVisible))
}

// Cookies returns the browser's cookies for urls (those of the current
// page with no urls), HttpOnly ones included: what the jar holds, not
// what scripts see.
func (b *Browser) Cookies(urls ...string) ([]*network.Cookie, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		return nil, err
	}
	return res.Cookies, nil
}

// NewTab opens another tab in the same browser (same cookies), closed
// with the test.
func (b *Browser) NewTab() *Browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // the tab's own context: see New
		b.tb.Fatalf("testbrowser: new tab: %v", err)
	}
	return &Browser{tb: b.tb, ctx: ctx, timeout: b.timeout}
}
