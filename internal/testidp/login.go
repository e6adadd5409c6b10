package testidp

import (
	"context"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The authorization code flow (browser login).
//
// WebClientID is a confidential web client (client_secret_basic with
// ClientSecret) that may use the authorization code flow (PKCE S256
// accepted), refresh tokens (ask for the offline_access scope) and
// RP-initiated logout. Its redirect URIs and post-logout redirect URIs are
// registered at run time (AddRedirectURI, AddPostLogoutRedirectURI): the
// relying party's address is usually known only after the provider runs.
//
// The login page (LoginPath) is a plain HTML form: inputs named
// "username" and "password", a hidden "id" (the authorization request)
// and one submit button. Test users (Users):
//
//	username  password         sub    roles     groups
//	alice     alice-password   alice  [admin]   [staff, ops]
//	bob       bob-password     bob    [reader]  [staff]
//
// Every login starts an OP session with its own sid, which the ID tokens
// of that login (and of its refreshes) carry; Sessions lists them, and
// BackChannelLogout sends a logout_token for one to a relying party.

// WebClientID is the browser-login client.
const WebClientID = "gatehouse-web"

// PublicClientID is a public browser-login client: no secret
// (token_endpoint_auth_method none), PKCE only; same redirect URIs.
const PublicClientID = "gatehouse-public"

// Paths of the login flow.
const (
	authorizePath  = "/authorize"
	endSessionPath = "/end_session"
	// LoginPath is the login page the provider sends the browser to.
	LoginPath = "/login"
)

// User is a test user of the login page.
type User struct {
	Password string
	Subject  string
	Email    string
	Roles    []string
	Groups   []string
}

// Users are the accounts the login page accepts.
var Users = map[string]User{
	"alice": {Password: "alice-password", Subject: "alice", Email: "alice@example.test", Roles: []string{"admin"}, Groups: []string{"staff", "ops"}},
	"bob":   {Password: "bob-password", Subject: "bob", Email: "bob@example.test", Roles: []string{"reader"}, Groups: []string{"staff"}},
}

// Session is one OP login session.
type Session struct {
	SID     string
	Subject string
}

// authRequest is one authorization request, from /authorize to the code
// exchange.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	subject       string
	sid           string
	authTime      time.Time
	done          bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// refreshToken is an issued refresh token.
type refreshToken struct {
	subject  string
	clientID string
	scopes   []string
	authTime time.Time
	sid      string
	expires  time.Time
}

// refreshRequest is a refresh_token grant.
type refreshRequest struct {
	token string
	rt    refreshToken
}

func (r *refreshRequest) GetAMR() []string            { return []string{"pwd"} }
func (r *refreshRequest) GetAudience() []string       { return []string{r.rt.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rt.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.rt.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rt.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.rt.scopes = s }
func (r *refreshRequest) sessionID() string           { return r.rt.sid }
func (a *authRequest) sessionID() string              { return a.sid }

func sessionIDOf(r op.IDTokenRequest) string {
	if s, ok := r.(interface{ sessionID() string }); ok {
		return s.sessionID()
	}
	return ""
}

// loginState is the provider's login-flow state.
type loginState struct {
	redirectURIs   []string
	postLogoutURIs []string
	authRequests   map[string]*authRequest
	codes          map[string]string // code → auth request id
	refresh        map[string]*refreshToken
	sessions       []Session
	accessTTL      time.Duration
	logins         int
	endSessions    int
	refreshes      int
	userInfoSub    string // answered by UserInfo instead of the token's subject, when set
	userInfoCalls  int
}

func newLoginState() *loginState {
	return &loginState{
		authRequests: map[string]*authRequest{},
		codes:        map[string]string{},
		refresh:      map[string]*refreshToken{},
		accessTTL:    defaultTokenTTL,
	}
}

// AddRedirectURI registers a redirect URI of WebClientID (exact match).
func (p *Provider) AddRedirectURI(uri string) {
	p.mu.Lock()
	p.login.redirectURIs = append(p.login.redirectURIs, uri)
	p.mu.Unlock()
}

// AddPostLogoutRedirectURI registers a post_logout_redirect_uri of
// WebClientID (exact match).
func (p *Provider) AddPostLogoutRedirectURI(uri string) {
	p.mu.Lock()
	p.login.postLogoutURIs = append(p.login.postLogoutURIs, uri)
	p.mu.Unlock()
}

// SetAccessTokenTTL sets the lifetime of the access tokens issued from
// now on (default 5 minutes): short ones make a relying party refresh.
func (p *Provider) SetAccessTokenTTL(d time.Duration) {
	p.mu.Lock()
	p.login.accessTTL = d
	p.mu.Unlock()
}

// Sessions returns the OP sessions started so far, oldest first (ended
// ones included).
func (p *Provider) Sessions() []Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.login.sessions)
}

// Logins counts successful logins at the login page.
func (p *Provider) Logins() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.login.logins
}

// Refreshes counts refresh_token grants asked for (refused ones too).
func (p *Provider) Refreshes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.login.refreshes
}

// EndSessions counts RP-initiated logouts that reached end_session.
func (p *Provider) EndSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.login.endSessions
}

// SetUserInfoSubject makes the UserInfo endpoint answer sub instead of
// the access token's subject ("": the token's), as a provider mixing up
// its users would: a relying party must not use such an answer.
func (p *Provider) SetUserInfoSubject(sub string) {
	p.mu.Lock()
	p.login.userInfoSub = sub
	p.mu.Unlock()
}

// UserInfoCalls counts the answers of the UserInfo endpoint.
func (p *Provider) UserInfoCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.login.userInfoCalls
}

// RevokeRefreshTokens forgets every refresh token: the next refresh fails.
func (p *Provider) RevokeRefreshTokens() {
	p.mu.Lock()
	clear(p.login.refresh)
	p.mu.Unlock()
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>testidp login</title></head>
<body>
<h1>Sign in to testidp</h1>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="POST" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input type="text" id="username" name="username" autocomplete="username"></label>
<label>Password <input type="password" id="password" name="password" autocomplete="current-password"></label>
<button type="submit" id="submit">Sign in</button>
</form>
</body>
</html>
`))

// serveLogin is the login page: GET shows the form, POST checks the
// user and sends the browser back to the OP's callback.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request, callback func(context.Context, string) string) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("id")
	render := func(status int, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = loginPage.Execute(w, struct{ ID, Error string }{id, msg})
	}
	p.mu.Lock()
	ar, ok := p.login.authRequests[id]
	p.mu.Unlock()
	if !ok {
		render(http.StatusBadRequest, "Unknown or expired login request.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		render(http.StatusOK, "")
		return
	case http.MethodPost:
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	u, ok := Users[r.PostForm.Get("username")]
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(r.PostForm.Get("password"))) != 1 {
		render(http.StatusUnauthorized, "Wrong username or password.")
		return
	}
	p.mu.Lock()
	ar.subject = u.Subject
	ar.sid = "sid-" + randomID(8)
	ar.authTime = time.Now().Truncate(time.Second)
	ar.done = true
	p.login.sessions = append(p.login.sessions, Session{SID: ar.sid, Subject: u.Subject})
	p.login.logins++
	p.mu.Unlock()
	http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
}

// --- storage: authorization code flow ---------------------------------------

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Equal(req.Prompt, oidc.SpaceDelimitedArray{oidc.PromptNone}) {
		return nil, oidc.ErrLoginRequired()
	}
	ar := &authRequest{
		id:           randomID(12),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       req.Scopes,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
	}
	if req.CodeChallenge != "" {
		ar.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.p.mu.Lock()
	s.p.login.authRequests[ar.id] = ar
	s.p.mu.Unlock()
	return ar, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	ar, ok := s.p.login.authRequests[id]
	if !ok {
		return nil, errors.New("testidp: unknown auth request")
	}
	return ar, nil
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	ar, ok := s.p.login.authRequests[s.p.login.codes[code]]
	if !ok {
		return nil, errors.New("testidp: unknown code")
	}
	return ar, nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.p.mu.Lock()
	s.p.login.codes[code] = id
	s.p.mu.Unlock()
	return nil
}

// DeleteAuthRequest makes the code single-use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	delete(s.p.login.authRequests, id)
	for code, rid := range s.p.login.codes {
		if rid == id {
			delete(s.p.login.codes, code)
		}
	}
	return nil
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh
// token (rotated on every refresh).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	id, exp, err := s.CreateAccessToken(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rt := refreshToken{subject: req.GetSubject(), scopes: req.GetScopes(), expires: time.Now().Add(time.Hour)}
	switch r := req.(type) {
	case *authRequest:
		rt.clientID, rt.authTime, rt.sid = r.clientID, r.authTime, r.sid
	case *refreshRequest:
		rt.clientID, rt.authTime, rt.sid = r.rt.clientID, r.rt.authTime, r.rt.sid
	default:
		return "", "", time.Time{}, errUnsupported
	}
	token := "rt-" + randomID(24)
	s.p.mu.Lock()
	if current != "" {
		delete(s.p.login.refresh, current)
	}
	s.p.login.refresh[token] = &rt
	s.p.mu.Unlock()
	return id, token, exp, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.login.refreshes++
	rt, ok := s.p.login.refresh[token]
	if !ok || time.Now().After(rt.expires) {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshRequest{token: token, rt: *rt}, nil
}

// TerminateSession ends the user's refresh tokens for the client
// (end_session).
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.login.endSessions++
	for t, rt := range s.p.login.refresh {
		if rt.subject == userID && rt.clientID == clientID {
			delete(s.p.login.refresh, t)
		}
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	rt, ok := s.p.login.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, token, nil
}

// SetUserinfoFromRequest puts the user's claims and the session's sid
// into ID tokens.
func (s *storage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	ui.Subject = req.GetSubject()
	for _, u := range Users {
		if u.Subject != req.GetSubject() {
			continue
		}
		ui.Email = u.Email
		ui.EmailVerified = true
		ui.AppendClaims("roles", u.Roles)
		ui.AppendClaims("groups", u.Groups)
	}
	if sid := sessionIDOf(req); sid != "" {
		ui.AppendClaims("sid", sid)
	}
	return nil
}

// BackChannelLogoutEvent is the events member of a logout_token.
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken mints an OIDC Back-Channel Logout token for WebClientID,
// signed with the provider's current key, typ "logout+jwt": iss, aud,
// iat, jti, events, and sid and/or sub when not empty. claims override
// (a nil value removes a claim).
func (p *Provider) LogoutToken(tb testing.TB, sid, sub string, claims map[string]any) string {
	tb.Helper()
	all := map[string]any{
		"aud":    WebClientID,
		"exp":    time.Now().Add(2 * time.Minute).Unix(),
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
		"sub":    nil,
	}
	if sid != "" {
		all["sid"] = sid
	}
	if sub != "" {
		all["sub"] = sub
	}
	for k, v := range claims {
		all[k] = v
	}
	return p.MintWithHeaders(tb, all, map[string]any{"typ": "logout+jwt"})
}

// BackChannelLogout posts a logout_token for the session sid (and/or the
// subject sub) to a relying party's back-channel logout endpoint, as the
// OP would, and returns the answer's status and body.
func (p *Provider) BackChannelLogout(tb testing.TB, endpoint, sid, sub string) (int, string) {
	tb.Helper()
	return PostLogoutToken(tb, endpoint, p.LogoutToken(tb, sid, sub, nil))
}

// PostLogoutToken posts logout_token to endpoint (form-encoded) and
// returns the answer's status and body.
func PostLogoutToken(tb testing.TB, endpoint, token string) (int, string) {
	tb.Helper()
	client := &http.Client{Timeout: tokenRequestTimeout, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.PostForm(endpoint, url.Values{"logout_token": {token}})
	if err != nil {
		tb.Fatalf("testidp: back-channel logout: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}
