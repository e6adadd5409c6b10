package testidp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestAuthorizationCodeFlow logs in through the login page with PKCE,
// exchanges the code, refreshes, and ends the session.
func TestAuthorizationCodeFlow(t *testing.T) {
	p := testidp.Start(t)
	codes := make(chan url.Values, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query()
		_, _ = io.WriteString(w, "ok")
	}))
	defer rp.Close()
	redirect := rp.URL + "/callback"
	p.AddRedirectURI(redirect)
	p.AddPostLogoutRedirectURI(rp.URL + "/bye")

	cfg := oauth2.Config{
		ClientID: testidp.WebClientID, ClientSecret: p.ClientSecret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizationURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "email", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n0nce"))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="username"`) {
		t.Fatalf("login page: %d %s", resp.StatusCode, page)
	}
	loginURL := resp.Request.URL
	id := loginURL.Query().Get("id")

	// A wrong password shows the form again.
	resp, err = browser.PostForm(p.Issuer+testidp.LoginPath, url.Values{"id": {id}, "username": {"alice"}, "password": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, err = browser.PostForm(p.Issuer+testidp.LoginPath, url.Values{"id": {id}, "username": {"alice"}, "password": {"alice-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := <-codes
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}

	ctx := context.Background()
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
		t.Fatal("a wrong PKCE verifier was accepted")
	}
}

// TestAuthorizationCodeFlowTokens checks the ID token's claims, refresh
// and the logout token.
func TestAuthorizationCodeFlowTokens(t *testing.T) {
	p := testidp.Start(t)
	codes := make(chan url.Values, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { codes <- r.URL.Query() }))
	defer rp.Close()
	redirect := rp.URL + "/callback"
	p.AddRedirectURI(redirect)
	cfg := oauth2.Config{
		ClientID: testidp.WebClientID, ClientSecret: p.ClientSecret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizationURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := browser.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("id")
	resp, err = browser.PostForm(p.Issuer+testidp.LoginPath, url.Values{"id": {id}, "username": {"bob"}, "password": {"bob-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := <-codes
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	_, claims := verify(t, p, raw, jose.RS256)
	sessions := p.Sessions()
	if claims["sub"] != "bob" || claims["nonce"] != "n" || claims["aud"] == nil || len(sessions) != 1 || claims["sid"] != sessions[0].SID {
		t.Fatalf("id token claims %v, sessions %v", claims, sessions)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	src := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)})
	tok2, err := src.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh returned the same tokens")
	}
	raw2, _ := tok2.Extra("id_token").(string)
	if _, c2 := verify(t, p, raw2, jose.RS256); c2["sid"] != sessions[0].SID {
		t.Fatalf("refreshed id token sid %v", c2["sid"])
	}

	lt := p.LogoutToken(t, sessions[0].SID, "", nil)
	hdr, lc := verify(t, p, lt, jose.RS256)
	if hdr.ExtraHeaders["typ"] != "logout+jwt" || lc["sid"] != sessions[0].SID || lc["sub"] != nil || lc["events"] == nil {
		t.Fatalf("logout token %v %v", hdr.ExtraHeaders, lc)
	}
}
