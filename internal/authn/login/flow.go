package login

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/session"
)

// loginState is what a started login remembers, sealed into its own
// short-lived cookie (one per attempt: its name carries the state's
// start, so logins in several tabs do not overwrite each other).
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Provider string    `json:"p"`
	Return   string    `json:"r"`
	Redirect string    `json:"u"`
	Created  time.Time `json:"t"`
}

// stateCookieName is the login-state cookie of a state value.
func (s *service) stateCookieName(state string) string {
	return s.cookie.Name + "-login-" + state[:12]
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginRedirect answers a browser without a usable session: a redirect to
// the identity provider (or the chooser), as a failure whose cause is the
// redirect, so the audit trail records why and respond sends the 302.
func (a authenticator) loginRedirect(r *http.Request, reason authn.Reason) error {
	ret := returnTo(r)
	var (
		rd  *reply.RedirectError
		err error
	)
	if a.single == "" {
		rd, err = reply.NewRedirect(http.StatusFound, a.s.opts.ChooserPath+"?rd="+url.QueryEscape(ret))
	} else {
		rd, err = a.s.startLogin(r, a.s.clientFor(a.single), ret)
	}
	if err != nil {
		var un *authn.UnavailableError
		if errors.As(err, &un) {
			return un
		}
		return &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonIdPUnavailable, Err: err}
	}
	if reason != ReasonLoginRequired {
		// The stale session's cookies go.
		rd.Cookies = append(rd.Cookies, session.ClearCookies(r, a.s.cookie)...)
	}
	f := failure(reason, "Log in to continue.", rd)
	f.Missing = true // a browser without a session is not a failed credential
	return f
}

// returnTo is the page the browser asked for: path and query only, so the
// return after login stays on this origin.
func returnTo(r *http.Request) string {
	ret := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		ret += "?" + r.URL.RawQuery
	}
	if !safeReturnPath(ret) {
		return "/"
	}
	return ret
}

// safeReturnPath accepts a same-origin absolute path: one leading "/"
// (never "//host" or "/\host"), no scheme, no control characters, as
// reply.ValidLocation checks them.
func safeReturnPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || len(p) > 2048 {
		return false
	}
	if !reply.ValidLocation(p) {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// startLogin makes the redirect to the provider's authorization endpoint
// and the login-state cookie.
func (s *service) startLogin(r *http.Request, c *client, ret string) (*reply.RedirectError, error) {
	if c == nil {
		return nil, errors.New("authn/login: no such provider")
	}
	ep, err := s.endpointsFor(r.Context(), c)
	if err != nil {
		return nil, err
	}
	scheme, host := s.origin(r)
	st := loginState{
		State: random(32), Nonce: random(32), Verifier: oauth2.GenerateVerifier(),
		Provider: c.name, Return: ret, Redirect: scheme + "://" + host + s.opts.CallbackPath, Created: s.now(),
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	sealed, err := s.codec.Seal(purposeLoginState, b)
	if err != nil {
		return nil, err
	}
	oc := s.oauthConfig(c, ep, st.Redirect)
	loc := oc.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier), oauth2.SetAuthURLParam("nonce", st.Nonce))
	cookie := &http.Cookie{
		Name: s.stateCookieName(st.State), Value: sealed, Path: "/", MaxAge: int(s.loginTTL / time.Second),
		Secure: s.cookie.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
	cookies := []*http.Cookie{cookie}
	// Logins started and never finished leave their cookies until they
	// expire; past a few, they go, so that they cannot pile up into a
	// Cookie header the gateway refuses.
	var pending []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, s.cookie.Name+"-login-") {
			pending = append(pending, c.Name)
		}
	}
	if len(pending) >= maxPendingLogins {
		for _, name := range pending {
			cookies = append(cookies, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: s.cookie.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
	}
	return reply.NewRedirect(http.StatusFound, loc, cookies...)
}

// maxPendingLogins is how many unfinished logins a browser keeps.
const maxPendingLogins = 4

func (s *service) oauthConfig(c *client, ep endpoints, redirect string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.cfg.authMethod() != authBasic {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.secret, RedirectURL: redirect, Scopes: c.cfg.scopes(),
		Endpoint: oauth2.Endpoint{AuthURL: ep.Authorization, TokenURL: ep.Token, AuthStyle: style},
	}
}

// oauthContext bounds a call to the token endpoint.
func (s *service) oauthContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	return context.WithValue(ctx, oauth2.HTTPClient, s.http), cancel
}

// refused is a 400 problem for the browser: never a redirect, so an error
// can never loop.
func refused(detail string) error { return &reply.RefusedError{Detail: detail} }

// callback finishes a login: state, code exchange, ID token, session.
func (s *service) callback(w http.ResponseWriter, r *http.Request) error {
	if scheme, _ := s.origin(r); scheme != "https" && s.cookie.Secure {
		// The browser would drop the Secure session cookie and come back
		// without it, to log in again, forever.
		return refused("This gateway sets its session cookies over https only; reach it over https (or set insecure_cookie for local http development).")
	}
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < 16 || len(state) > 128 {
		return refused("The login response has no valid state; start again from the page you wanted.")
	}
	ck, err := r.Cookie(s.stateCookieName(state))
	if err != nil {
		return refused("This login was not started in this browser, or took too long; start again from the page you wanted.")
	}
	clearState := &http.Cookie{Name: ck.Name, Value: "", Path: "/", MaxAge: -1, Secure: s.cookie.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	b, err := s.codec.Open(purposeLoginState, ck.Value)
	var st loginState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return refused("The login state does not match; start again from the page you wanted.")
	}
	if s.now().Sub(st.Created) > s.loginTTL {
		return refused("The login took too long; start again from the page you wanted.")
	}
	if e := q.Get("error"); e != "" {
		return refused("The identity provider did not log you in (" + safeCode(e) + ").")
	}
	code := q.Get("code")
	c := s.clientFor(st.Provider)
	if code == "" || c == nil {
		return refused("The login response has no authorization code.")
	}
	ep, err := s.endpointsFor(r.Context(), c)
	if err != nil {
		return &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonIdPUnavailable, Err: err}
	}
	ctx, cancel := s.oauthContext(r.Context())
	defer cancel()
	tok, err := s.oauthConfig(c, ep, st.Redirect).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			s.log.Info("authn/login: the provider refused the authorization code", "provider", c.name, "error", re.ErrorCode)
			return refused("The identity provider refused the login (" + safeCode(re.ErrorCode) + "); start again.")
		}
		return &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonIdPUnavailable, Provider: c.name, Err: err}
	}
	raw, _ := tok.Extra("id_token").(string)
	claims, err := s.verifyIDToken(r.Context(), c, raw, st.Nonce, tok.AccessToken)
	if err != nil {
		s.log.Info("authn/login: ID token refused", "provider", c.name, "error", err)
		return refused("The identity provider's ID token is not valid; start again.")
	}
	claims, err = s.withUserInfo(r.Context(), c, ep, tok.AccessToken, claims)
	if err != nil {
		if errors.Is(err, errUserInfoUnavailable) {
			return &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonIdPUnavailable, Provider: c.name, Err: err}
		}
		s.log.Warn("authn/login: UserInfo refused (userinfo: false logs in with the ID token's claims alone)", "provider", c.name, "error", err)
		return refused("The identity provider did not give the user's information; start again.")
	}
	now := s.now()
	id, err := session.NewID()
	if err != nil {
		return err
	}
	sess := &session.Session{
		ID: id, Provider: c.name, Issuer: c.issuer, Subject: claimString(claims, "sub"), SID: claimString(claims, "sid"),
		Claims: claims, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: raw,
		TokenExpiry: tok.Expiry, Created: now, LastSeen: now,
	}
	if at, ok := numeric(claims["auth_time"]); ok {
		sess.AuthTime = at
	}
	cookies, err := s.persist(r, sess)
	if err != nil {
		return err
	}
	if s.store != nil {
		v, err := s.codec.Seal(purposeSessionID, []byte(sess.ID))
		if err != nil {
			return err
		}
		cookies = session.WriteCookies(r, s.cookie, v)
	}
	ret := st.Return
	if !safeReturnPath(ret) {
		ret = "/"
	}
	rd, err := reply.NewRedirect(http.StatusFound, ret, append(cookies, clearState)...)
	if err != nil {
		return err
	}
	return rd
}

// verifyIDToken checks an ID token with the jwt method's verifier (alg,
// key, iss, aud = client_id, exp, iat, the provider's skew and lifetime)
// and then what is particular to ID tokens: nonce (constant time), azp
// (when several audiences, or present), sub, and at_hash against the
// access token of the same response, when the provider sends one. It
// returns the claims.
func (s *service) verifyIDToken(ctx context.Context, c *client, raw, nonce, accessToken string) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("authn/login: no id_token in the token response")
	}
	if _, err := c.verifier.Verify(ctx, raw); err != nil {
		return nil, err
	}
	claims, err := payloadClaims(raw)
	if err != nil {
		return nil, err
	}
	got, _ := claims["nonce"].(string)
	if nonce != "" && subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, errors.New("authn/login: nonce mismatch")
	}
	if err := checkAZP(claims, c.cfg.ClientID); err != nil {
		return nil, err
	}
	if claimString(claims, "sub") == "" {
		return nil, errors.New("authn/login: ID token without sub")
	}
	if h, ok := claims["at_hash"]; ok && accessToken != "" {
		if err := checkATHash(raw, accessToken, h); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// checkAZP: with several audiences azp is required; when present it must
// be this client.
func checkAZP(claims map[string]any, clientID string) error {
	azp, has := claims["azp"]
	if aud, ok := claims["aud"].([]any); ok && len(aud) > 1 && !has {
		return errors.New("authn/login: several audiences and no azp")
	}
	if has {
		if s, _ := azp.(string); s != clientID {
			return errors.New("authn/login: azp is another client")
		}
	}
	return nil
}

// payloadClaims decodes the payload of a JWS whose signature has been
// verified (numbers as json.Number, as the claim rules read them).
func payloadClaims(raw string) (map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("authn/login: not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	return decodeClaims(b)
}

// decodeClaims decodes a JSON object of claims (numbers as json.Number,
// as the claim rules read them).
func decodeClaims(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func claimString(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// numeric reads a NumericDate claim.
func numeric(v any) (time.Time, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return time.Unix(i, 0), true
		}
		if f, err := n.Float64(); err == nil {
			return time.Unix(int64(f), 0), true
		}
	case float64:
		return time.Unix(int64(n), 0), true
	case int64:
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// safeCode keeps an OAuth error code's characters (RFC 6749 %x20-21 /
// %x23-5B / %x5D-7E, letters and _ in practice), at most 64.
func safeCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "error"
	}
	return b.String()
}

// refreshSession renews a session's tokens with its refresh token, once
// per session however many requests ask at the same time.
func (s *service) refreshSession(ctx context.Context, c *client, sess *session.Session) (*session.Session, error) {
	return s.refresh.do(sess.ID+"\x00"+sess.RefreshToken, func() (*session.Session, error) {
		fail := func(err error) (*session.Session, error) {
			f := failure(ReasonRefreshFailed, "The session has ended; log in again.", err)
			f.Subject, f.Issuer, f.Provider = sess.Subject, sess.Issuer, sess.Provider
			return nil, f
		}
		if sess.RefreshToken == "" {
			if !s.opts.ForwardAccessToken {
				// The access token is not used: the session lives on.
				cp := *sess
				cp.AccessToken, cp.TokenExpiry = "", time.Time{}
				return &cp, nil
			}
			return fail(errors.New("authn/login: the access token expired and there is no refresh token"))
		}
		ep, err := s.endpointsFor(ctx, c)
		if err != nil {
			return fail(err)
		}
		cctx, cancel := s.oauthContext(ctx)
		defer cancel()
		tok, err := s.oauthConfig(c, ep, "").TokenSource(cctx, &oauth2.Token{RefreshToken: sess.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
		if err != nil {
			return fail(err)
		}
		cp := *sess
		cp.AccessToken, cp.TokenExpiry = tok.AccessToken, tok.Expiry
		if tok.RefreshToken != "" {
			cp.RefreshToken = tok.RefreshToken
		}
		if raw, _ := tok.Extra("id_token").(string); raw != "" {
			claims, err := s.verifyIDToken(ctx, c, raw, "", tok.AccessToken)
			if err != nil {
				return fail(err)
			}
			if claimString(claims, "sub") != sess.Subject {
				return fail(errors.New("authn/login: the refreshed ID token names another subject"))
			}
			// The new ID token replaces the claims: those that only
			// UserInfo gives are read again, with the new access token.
			if claims, err = s.withUserInfo(ctx, c, ep, tok.AccessToken, claims); err != nil {
				return fail(err)
			}
			cp.Claims, cp.IDToken = claims, raw
		}
		return &cp, nil
	})
}

// chooserPage lists a route's providers.
var chooserPage = template.Must(template.New("chooser").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log in</title></head>
<body><h1>Log in with</h1><ul>
{{range .}}<li><a href="{{.URL}}">{{.Label}}</a></li>
{{end}}</ul></body></html>
`))

// chooser serves the provider choice: ?provider= starts that login,
// otherwise a page of links.
func (s *service) chooser(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ret := q.Get("rd")
	if !safeReturnPath(ret) {
		ret = "/"
	}
	if name := q.Get("provider"); name != "" {
		c := s.clientFor(name)
		if c == nil {
			return refused("Unknown identity provider.")
		}
		rd, err := s.startLogin(r, c, ret)
		if err != nil {
			return &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonIdPUnavailable, Provider: name, Err: err}
		}
		return rd
	}
	type link struct{ URL, Label string }
	links := make([]link, 0, len(s.clients))
	for _, c := range s.clients {
		links = append(links, link{URL: s.opts.ChooserPath + "?provider=" + url.QueryEscape(c.name) + "&rd=" + url.QueryEscape(ret), Label: c.label})
	}
	var buf bytes.Buffer
	if err := chooserPage.Execute(&buf, links); err != nil {
		return fmt.Errorf("authn/login: chooser: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
	return nil
}
