package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/session"
)

// Endpoints are the flow's gateway-owned endpoints, all public (they
// check what they receive themselves).
func (a authenticator) Endpoints() []endpoint.Endpoint {
	s := a.s
	eps := []endpoint.Endpoint{
		{Name: "session_callback", Path: s.opts.CallbackPath, Methods: []string{http.MethodGet}, Public: true,
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error { return s.callback(w, r) })},
		{Name: "session_logout", Path: s.opts.LogoutPath, Methods: []string{http.MethodGet, http.MethodPost}, Public: true,
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error { return a.logout(w, r) })},
		{Name: "session_login", Path: s.opts.ChooserPath, Methods: []string{http.MethodGet}, Public: true,
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error { return s.chooser(w, r) })},
	}
	if s.opts.BackChannelLogout {
		eps = append(eps, endpoint.Endpoint{Name: "session_backchannel_logout", Path: s.opts.BackChannelLogoutPath, Methods: []string{http.MethodPost}, Public: true,
			Handler: endpoint.HandlerFunc(func(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error {
				return s.backChannelLogout(w, r)
			})})
	}
	return eps
}

const logoutPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log out</title></head>
<body><form method="POST"><button type="submit">Log out</button></form></body></html>
`

// logout ends the session. Only POST from this origin logs out (a
// cross-site page cannot log a user out); GET shows a form that posts.
// The session's cookies are cleared, a Redis session deleted, and the
// browser goes to the provider's end_session_endpoint (RP-initiated
// logout, with id_token_hint and post_logout_redirect_uri) when it has
// one and provider_logout is on, else to post_logout_redirect.
func (a authenticator) logout(w http.ResponseWriter, r *http.Request) error {
	s := a.s
	if r.Method != http.MethodPost {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// No form-action: browsers apply it to the redirect after the
		// POST too, which goes to the provider's end_session_endpoint.
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		_, _ = w.Write([]byte(logoutPage))
		return nil
	}
	if !a.sameOrigin(r) {
		return &reply.ForbiddenError{Detail: "Logging out must be asked from this site."}
	}
	scheme, host := s.origin(r)
	after := scheme + "://" + host + s.opts.PostLogoutRedirect
	loc := s.opts.PostLogoutRedirect
	cookies := session.ClearCookies(r, s.cookie)
	if value, ok := session.ReadCookies(r, s.cookie.Name); ok {
		if sess, err := a.load(r.Context(), value); err == nil {
			s.end(r.Context(), sess)
			s.cache.drop(value)
			if c := s.clientFor(sess.Provider); c != nil && c.cfg.providerLogout() {
				if ep, err := s.endpointsFor(r.Context(), c); err == nil && ep.EndSession != "" {
					q := url.Values{"post_logout_redirect_uri": {after}, "client_id": {c.cfg.ClientID}}
					if sess.IDToken != "" {
						q.Set("id_token_hint", sess.IDToken)
					}
					sep := "?"
					if strings.Contains(ep.EndSession, "?") {
						sep = "&"
					}
					loc = ep.EndSession + sep + q.Encode()
				}
			}
		}
	}
	rd, err := reply.NewRedirect(http.StatusSeeOther, loc, cookies...)
	if err != nil {
		return err
	}
	return rd
}

// backchannelEvent is the event a logout token must carry.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutToken bounds a logout token before any parsing.
const maxLogoutToken = 16 << 10

// LogoutClaims are the claims of a logout token that matter.
type LogoutClaims struct {
	Issuer, Subject, SID, JTI string
	IssuedAt                  time.Time
}

// ParseLogoutToken checks the payload of a logout token (OIDC Back-Channel
// Logout 1.0 §2.4), after its signature, iss, aud, exp and iat were
// verified: events holds the back-channel logout event (an object), sid
// and/or sub, a jti, and no nonce. It never reads more than maxLogoutToken
// bytes.
func ParseLogoutToken(payload []byte) (LogoutClaims, error) {
	var lc LogoutClaims
	if len(payload) > maxLogoutToken {
		return lc, errors.New("authn/login: logout token too large")
	}
	var m struct {
		Iss    string                     `json:"iss"`
		Sub    *string                    `json:"sub"`
		SID    *string                    `json:"sid"`
		JTI    string                     `json:"jti"`
		Iat    json.Number                `json:"iat"`
		Nonce  json.RawMessage            `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		return lc, errors.New("authn/login: logout token payload is not a JSON object")
	}
	if m.Nonce != nil {
		return lc, errors.New("authn/login: a logout token must not carry a nonce")
	}
	ev, ok := m.Events[backchannelEvent]
	if !ok {
		return lc, errors.New("authn/login: logout token without the back-channel logout event")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(ev, &obj); err != nil || obj == nil {
		return lc, errors.New("authn/login: the back-channel logout event is not an object")
	}
	if m.JTI == "" || len(m.JTI) > 256 {
		return lc, errors.New("authn/login: logout token without a usable jti")
	}
	if m.Iss == "" {
		return lc, errors.New("authn/login: logout token without iss")
	}
	iat, err := m.Iat.Int64()
	if err != nil || iat <= 0 {
		return lc, errors.New("authn/login: logout token without iat")
	}
	lc = LogoutClaims{Issuer: m.Iss, JTI: m.JTI, IssuedAt: time.Unix(iat, 0)}
	if m.Sub != nil {
		lc.Subject = *m.Sub
	}
	if m.SID != nil {
		lc.SID = *m.SID
	}
	if lc.Subject == "" && lc.SID == "" {
		return LogoutClaims{}, errors.New("authn/login: logout token names neither sid nor sub")
	}
	if len(lc.Subject) > revocation.MaxValueLen || len(lc.SID) > revocation.MaxValueLen {
		return LogoutClaims{}, errors.New("authn/login: sid or sub too long")
	}
	return lc, nil
}

// backChannelLogout receives a logout token and ends the sessions it
// names on every replica: Redis sessions deleted (by sid, else by
// subject); cookie sessions through the revocation list (kind session for
// a sid, subject otherwise). Answers 200, or 400 with a JSON error, never
// cached.
func (s *service) backChannelLogout(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	bad := func(desc string) error {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": desc})
		_, _ = w.Write(b)
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutToken+1024)
	if err := r.ParseForm(); err != nil {
		return bad("the body must be a form with logout_token")
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" || len(raw) > maxLogoutToken {
		return bad("logout_token is missing or too large")
	}
	lc, c, err := s.verifyLogoutToken(r.Context(), raw)
	if err != nil {
		s.log.Info("authn/login: logout token refused", "error", err)
		return bad("the logout token is not valid")
	}
	if now := s.now(); !s.replay.add(lc.Issuer+"\x00"+lc.JTI, now, now.Add(10*time.Minute)) {
		return bad("the logout token was already used")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.revoke(ctx, c, lc); err != nil {
		s.log.Warn("authn/login: back-channel logout could not end the sessions", "provider", c.name, "error", err)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// verifyLogoutToken verifies a logout token with the ID-token verifier of
// the client whose provider issued it (iss, aud = client_id, keys,
// algorithms, exp, iat) and then its logout claims.
func (s *service) verifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, *client, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return LogoutClaims{}, nil, errors.New("authn/login: not a JWS")
	}
	var lastErr error = errors.New("authn/login: no client of this issuer")
	for _, c := range s.clients {
		if _, err := c.logoutVerifier.Verify(ctx, raw); err != nil {
			lastErr = err
			continue
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return LogoutClaims{}, nil, err
		}
		lc, err := ParseLogoutToken(payload)
		if err != nil {
			return LogoutClaims{}, nil, err
		}
		if lc.Issuer != c.issuer {
			return LogoutClaims{}, nil, errors.New("authn/login: issuer mismatch")
		}
		return lc, c, nil
	}
	return LogoutClaims{}, nil, lastErr
}

// revoke ends the sessions a logout token names.
func (s *service) revoke(ctx context.Context, c *client, lc LogoutClaims) error {
	if s.store != nil {
		var err error
		if lc.SID != "" {
			_, err = s.store.DeleteBySID(ctx, c.issuer, lc.SID)
		} else {
			_, err = s.store.DeleteBySubject(ctx, c.issuer, lc.Subject)
		}
		return err
	}
	if s.revSvc == nil {
		return errors.New("authn/login: cookie sessions need the revocation list")
	}
	req := revocation.Request{Kind: revocation.KindSession, Issuer: c.issuer, Values: []string{lc.SID}, Reason: "back-channel logout"}
	if lc.SID == "" {
		now := s.now()
		req = revocation.Request{Kind: revocation.KindSubject, Issuer: c.issuer, Values: []string{lc.Subject}, Before: &now, Reason: "back-channel logout"}
	}
	until := s.now().Add(s.opts.AbsoluteTimeout.Std())
	req.Until = &until
	_, err := s.revSvc.Revoke(ctx, req)
	return err
}

// flight collapses the refreshes of one session (keyed by the session
// and the refresh token it holds): concurrent callers wait for one call,
// and callers that still hold the same refresh token shortly after (a
// request that read the session just before the refreshed one was
// saved) get its result instead of spending a rotated refresh token.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	at   time.Time // when it finished
	sess *session.Session
	err  error
}

// flightMemory is how long a finished refresh answers for its key.
const flightMemory = 10 * time.Second

func (f *flight) do(key string, fn func() (*session.Session, error)) (*session.Session, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	now := time.Now()
	if c, ok := f.calls[key]; ok && (c.at.IsZero() || now.Sub(c.at) < flightMemory) {
		f.mu.Unlock()
		<-c.done
		return c.sess, c.err
	}
	for k, c := range f.calls {
		if !c.at.IsZero() && now.Sub(c.at) >= flightMemory {
			delete(f.calls, k)
		}
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.sess, c.err = fn()
	f.mu.Lock()
	c.at = time.Now()
	f.mu.Unlock()
	close(c.done)
	return c.sess, c.err
}

// jtiCache remembers the logout tokens seen, to refuse a replay.
type jtiCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const maxReplayEntries = 100000

func (j *jtiCache) init() { j.m = map[string]time.Time{} }

// add records key until exp; false when it is already there.
func (j *jtiCache) add(key string, now, exp time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.m) >= maxReplayEntries {
		for k, e := range j.m {
			if now.After(e) {
				delete(j.m, k)
			}
		}
	}
	if e, ok := j.m[key]; ok && now.Before(e) {
		return false
	}
	if len(j.m) >= maxReplayEntries {
		return false // full of live entries: refuse rather than forget
	}
	j.m[key] = exp
	return true
}

func (c *sessionCache) drop(value string) {
	c.mu.Lock()
	delete(c.m, value)
	c.mu.Unlock()
}
