package testbrowser_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/testbrowser"
)

// page is a tiny site: / sets an HttpOnly cookie and shows a form that
// POSTs to /submit, which shows what it received.
func page() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "probe", Value: "v1", Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><html><body><h1 id="title">hello</h1>
<form method="POST" action="/submit"><input id="name" name="name"><button id="go" type="submit">go</button></form></body></html>`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("probe")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><p id="got">name=%s cookie=%v host=%s fetch-site=%s</p></body></html>`,
			r.PostFormValue("name"), c != nil && c.Value == "v1", r.Host, r.Header.Get("Sec-Fetch-Site"))
	})
	return mux
}

func TestBrowserFillsAFormAndKeepsCookies(t *testing.T) {
	srv := httptest.NewServer(page())
	defer srv.Close()
	b := testbrowser.New(t)
	if err := b.Navigate(srv.URL + "/"); err != nil {
		t.Fatal(err)
	}
	if s, err := b.Text("#title"); err != nil || s != "hello" {
		t.Fatalf("title %q, %v", s, err)
	}
	b.MustDo(
		chromedp.SendKeys(chromedp.CSS("#name"), "ada"),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#got")),
	)
	got, err := b.Text("#got")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "name=ada") || !strings.Contains(got, "cookie=true") || !strings.Contains(got, "fetch-site=same-origin") {
		t.Fatalf("the form post carried %q", got)
	}
	if loc := b.Location(); loc != srv.URL+"/submit" {
		t.Fatalf("location %q", loc)
	}
	cookies, err := b.Cookies(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(cookies) != 1 || cookies[0].Name != "probe" || !cookies[0].HTTPOnly {
		t.Fatalf("cookies %+v", cookies)
	}
}

// TrustCert admits the test server's certificate and no other: a
// second self-signed server stays refused. MapHosts gives it a name.
func TestBrowserTrustsOnlyTheGivenCert(t *testing.T) {
	cert := testbrowser.NewCert(t, "*.test", "127.0.0.1")
	good := httptest.NewUnstartedServer(page())
	good.EnableHTTP2 = true
	good.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	good.StartTLS()
	defer good.Close()
	other := httptest.NewUnstartedServer(page())       // net/http's test certificate: another key
	other.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	other.StartTLS()
	defer other.Close()
	b := testbrowser.New(t, testbrowser.TrustCert(cert.Cert), testbrowser.MapHosts("MAP *.test 127.0.0.1"))

	_, port, _ := net.SplitHostPort(good.Listener.Addr().String())
	for _, u := range []string{good.URL + "/", "https://example.test:" + port + "/"} {
		if err := b.Navigate(u); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if s, err := b.Text("#title"); err != nil || s != "hello" {
			t.Fatalf("%s: title %q, %v (at %s)", u, s, err, b.Location())
		}
	}
	cookies, err := b.Cookies(good.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(cookies) != 1 || !cookies[0].Secure {
		t.Fatalf("cookies over TLS: %+v", cookies)
	}

	if err := b.Navigate(other.URL + "/"); err == nil {
		if s, _ := b.Text("body"); strings.Contains(s, "hello") {
			t.Fatal("a certificate that was not trusted was accepted")
		}
	}
}

func TestPath(t *testing.T) {
	t.Setenv("GATEHOUSE_CHROMIUM", "/nonexistent/chromium")
	if _, err := testbrowser.Path(); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_CHROMIUM") {
		t.Fatalf("a missing GATEHOUSE_CHROMIUM binary: %v", err)
	}
	self, _ := os.Executable()
	t.Setenv("GATEHOUSE_CHROMIUM", self)
	if p, err := testbrowser.Path(); err != nil || p != self {
		t.Fatalf("Path = %q, %v; want %q", p, err, self)
	}
}
