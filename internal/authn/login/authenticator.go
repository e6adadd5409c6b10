package login

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/session"
)

// Reasons of the session method (docs/audit.md).
const (
	ReasonLoginRequired  authn.Reason = "login_required"
	ReasonSessionInvalid authn.Reason = "session_invalid"
	ReasonSessionExpired authn.Reason = "session_expired"
	ReasonSessionRevoked authn.Reason = "session_revoked"
	ReasonRefreshFailed  authn.Reason = "session_refresh_failed"
	ReasonCSRF           authn.Reason = "csrf_origin_mismatch"
	ReasonStoreDown      authn.Reason = "session_store_unavailable"
	ReasonIdPUnavailable authn.Reason = "login_provider_unavailable"
)

// authenticator is a route's session authenticator. It is a comparable
// value: routes with equal session blocks share one service, so their
// authenticators are equal and bring their endpoints in once.
type authenticator struct {
	s *service
	// single is the provider of a route with one client (its browsers go
	// straight there); "" sends them to the chooser.
	single string
}

var (
	_ endpoint.Provider     = authenticator{}
	_ authn.ResponseAdvisor = authenticator{}
)

func (a authenticator) Method() identity.Method { return identity.MethodSession }

// purposes of sealed values: a value sealed for one never opens as another.
const (
	purposeSession    = "gatehouse-session"
	purposeSessionID  = "gatehouse-session-id"
	purposeLoginState = "gatehouse-login-state"
)

// Authenticate reads the session cookie. No cookie: a browser (GET or
// HEAD, Accept with text/html, no X-Requested-With, no Authorization) is
// sent to log in; anything else is "not mine", so the chain's other
// methods (or its 401) answer. A session that is invalid, expired or
// revoked: the browser logs in again, others get 401.
func (a authenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	s := a.s
	value, ok := session.ReadCookies(r, s.cookie.Name)
	if !ok {
		if wantsLogin(r) {
			return nil, a.loginRedirect(r, ReasonLoginRequired)
		}
		return nil, authn.ErrNoCredential
	}
	now := s.now()
	e, err := a.lookup(r, value, now)
	if err != nil {
		var f *authn.Failure
		if errors.As(err, &f) && wantsLogin(r) && !errors.Is(err, errNoRelogin) {
			// Start again: the new login overwrites the cookies.
			return nil, a.loginRedirect(r, f.Reason)
		}
		return nil, err
	}
	if unsafeMethod(r.Method) && !a.sameOrigin(r) {
		f := failure(ReasonCSRF, "", errors.New("authn/login: cross-site request with a session refused"))
		f.Missing = true // not a credential guess: never counts toward lockouts
		f.Subject, f.Issuer, f.Provider, f.CredentialID = e.id.Subject, e.id.Issuer, e.id.Provider, e.id.CredentialID
		f.Err = &reply.ForbiddenError{Detail: "A request that changes state must come from this site (Origin or Sec-Fetch-Site)."}
		return nil, f
	}
	return e.id, nil
}

// wantsLogin reports whether r is a browser's navigation that a login
// redirect can answer.
func wantsLogin(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" || r.Header.Get("Authorization") != "" {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// sameOrigin is the CSRF check of a request with a session: the browser
// says it is same-origin (Sec-Fetch-Site same-origin or none: typed by the
// user), or its Origin is the request's own origin. Neither: refused.
func (a authenticator) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false // same-site or cross-site
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	scheme, host := a.s.origin(r)
	return strings.EqualFold(o, scheme+"://"+host)
}

// entry is a session as the authenticator uses it.
type entry struct {
	sess   *session.Session
	client *client
	id     *identity.Identity
	// replaced holds the cookies that replaced this value (cookie mode:
	// LastSeen moved, tokens refreshed), sent to every request that still
	// presents the old value.
	replaced atomic.Pointer[[]*http.Cookie]
}

// lookup returns the valid session value names, refreshing its tokens
// and moving its idle deadline as needed.
func (a authenticator) lookup(r *http.Request, value string, now time.Time) (*entry, error) {
	s := a.s
	if s.store == nil {
		if e := s.cache.get(value); e != nil && s.stillValid(e, now) == nil && !s.needsWork(e.sess, now) {
			return e, s.checkRevoked(e.id, e.sess)
		}
	}
	sess, err := a.load(r.Context(), value)
	if err != nil {
		return nil, err
	}
	c := s.clientFor(sess.Provider)
	if c == nil {
		return nil, failure(ReasonSessionInvalid, "The session is not valid here.", errors.New("authn/login: session of an unknown provider"))
	}
	e := &entry{sess: sess, client: c}
	if err := s.stillValid(e, now); err != nil {
		s.end(r.Context(), sess)
		return nil, err
	}
	refreshed := false
	if s.needsRefresh(sess, now) {
		fresh, err := s.refreshSession(r.Context(), c, sess)
		if err != nil {
			if other := s.refreshedElsewhere(r.Context(), sess, now); other != nil {
				// Another replica refreshed it first (the provider
				// rotated the refresh token we used): take its tokens.
				fresh, err = other, nil
			}
		}
		if err != nil {
			s.end(r.Context(), sess)
			return nil, err
		}
		sess, refreshed = fresh, true
	}
	if refreshed || now.Sub(sess.LastSeen) >= s.touchInterval() {
		cp := *sess
		cp.LastSeen = now
		sess = &cp
		cookies, err := s.persist(r, sess)
		if err != nil {
			return nil, err
		}
		if cookies != nil {
			e.replaced.Store(&cookies)
		}
	}
	e.sess = sess
	if e.id, err = s.identityOf(sess, c, now); err != nil {
		// The same claims would come back from a new login: no loop.
		var f *authn.Failure
		if errors.As(err, &f) {
			f.Err = fmt.Errorf("%w: %w", errNoRelogin, f.Err)
		}
		return nil, err
	}
	// Redis sessions are read at every request (a deletion anywhere ends
	// them at once); the entry is kept only for Advise.
	s.cache.put(value, e)
	return e, s.checkRevoked(e.id, e.sess)
}

// load opens the cookie value: the sealed session (cookie mode), or the
// sealed id of a session in Redis.
func (a authenticator) load(ctx context.Context, value string) (*session.Session, error) {
	s := a.s
	if s.store == nil {
		b, err := s.codec.Open(purposeSession, value)
		if err != nil {
			return nil, failure(ReasonSessionInvalid, "The session cookie is not valid.", err)
		}
		sess, err := session.Unmarshal(b)
		if err != nil {
			return nil, failure(ReasonSessionInvalid, "The session cookie is not valid.", err)
		}
		return sess, nil
	}
	b, err := s.codec.Open(purposeSessionID, value)
	if err != nil {
		return nil, failure(ReasonSessionInvalid, "The session cookie is not valid.", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sess, err := s.store.Load(ctx, string(b))
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, failure(ReasonSessionExpired, "The session has ended; log in again.", err)
	case errors.Is(err, session.ErrInvalid):
		return nil, failure(ReasonSessionInvalid, "The session is not valid.", err)
	case err != nil:
		return nil, &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonStoreDown, Err: err}
	}
	return sess, nil
}

// refreshedElsewhere returns the Redis session again when another
// replica has refreshed it meanwhile (another refresh token, tokens no
// longer due); nil otherwise (and always for cookie sessions).
func (s *service) refreshedElsewhere(ctx context.Context, sess *session.Session, now time.Time) *session.Session {
	if s.store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	other, err := s.store.Load(ctx, sess.ID)
	if err != nil || other.RefreshToken == sess.RefreshToken || s.needsRefresh(other, now) {
		return nil
	}
	return other
}

// stillValid checks the idle and absolute timeouts.
func (s *service) stillValid(e *entry, now time.Time) error {
	if !now.Before(s.sessionEnd(e.sess)) {
		return failure(ReasonSessionExpired, "The session has ended; log in again.", errors.New("authn/login: session timed out"))
	}
	return nil
}

// touchInterval is how often LastSeen is written: a tenth of the idle
// timeout, at most a minute (cookie mode rewrites the cookie then).
func (s *service) touchInterval() time.Duration {
	idle := s.opts.IdleTimeout.Std()
	if idle <= 0 {
		return 24 * time.Hour * 365
	}
	return min(idle/10, time.Minute)
}

// needsWork: a cached entry must be looked at again (refresh, touch).
func (s *service) needsWork(sess *session.Session, now time.Time) bool {
	return s.needsRefresh(sess, now) || now.Sub(sess.LastSeen) >= s.touchInterval()
}

// needsRefresh: the access token expires within refresh_before.
func (s *service) needsRefresh(sess *session.Session, now time.Time) bool {
	if sess.TokenExpiry.IsZero() || sess.AccessToken == "" {
		return false
	}
	return !now.Add(s.opts.RefreshBefore.Std()).Before(sess.TokenExpiry)
}

// checkRevoked applies the revocation list to a session's identity here,
// so that a revoked session sends the browser to log in again instead of
// a dead end (the pipeline checks again after the chain).
//
// Only where a new login gives a session the entry no longer matches is
// the browser sent to log in again: a subject entry (sessions created
// after its cut-off pass) and a session entry made after the session
// was created. Otherwise (the
// subject is blocked, the client revoked, or the provider answered the
// login from the revoked sid again) it is refused with 401: a new login
// would be revoked too, and the browser would loop.
func (s *service) checkRevoked(id *identity.Identity, sess *session.Session) error {
	if s.revList == nil {
		return nil
	}
	if e, loaded := s.revList.Check(id); loaded && e != nil {
		cause := errors.New("authn/login: revoked by entry " + e.ID)
		relogin := e.Kind == revocation.KindSubject || (e.Kind == revocation.KindSession && sess.Created.Before(e.CreatedAt))
		if !relogin {
			cause = fmt.Errorf("%w: %w", errNoRelogin, cause)
		}
		f := failure(ReasonSessionRevoked, "The session has been ended; log in again.", cause)
		f.Subject, f.Issuer, f.Provider, f.CredentialID = id.Subject, id.Issuer, id.Provider, id.CredentialID
		return f
	}
	return nil
}

// persist stores sess and returns the cookies that carry it (cookie mode:
// the sealed session; Redis: the session saved, the cookie unchanged, so
// nil).
func (s *service) persist(r *http.Request, sess *session.Session) ([]*http.Cookie, error) {
	if s.store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		ttl := sess.Created.Add(s.opts.AbsoluteTimeout.Std()).Sub(s.now())
		if ttl <= 0 {
			return nil, failure(ReasonSessionExpired, "The session has ended; log in again.", nil)
		}
		if err := s.store.Save(ctx, sess, ttl); err != nil {
			return nil, &authn.UnavailableError{Method: identity.MethodSession, Reason: ReasonStoreDown, Err: err}
		}
		return nil, nil
	}
	b, err := sess.Marshal()
	var v string
	if err == nil {
		v, err = s.codec.Seal(purposeSession, b)
	}
	if err != nil && !errors.Is(err, session.ErrTooLarge) {
		return nil, err
	}
	if err != nil || len(v) > s.cookie.MaxValueLen() {
		// WriteCookies would clear the cookies instead, and the browser
		// would come back without a session, log in again and loop. A
		// new login brings the same tokens and claims: refuse clearly.
		s.log.Warn("authn/login: the session is too large for cookies; use store: redis",
			"provider", sess.Provider, "session_bytes", len(b), "limit", s.cookie.MaxValueLen())
		return nil, errSessionTooLarge
	}
	return session.WriteCookies(r, s.cookie, v), nil
}

// errSessionTooLarge: in cookie mode, a session whose sealed value does not
// fit in session.MaxChunks cookies.
var errSessionTooLarge = &reply.RefusedError{Detail: "The session is too large to be kept in cookies (the identity provider's tokens and claims are too big); the gateway's operator can keep sessions in Redis (store: redis)."}

// end forgets a session that ended (Redis: deleted; cookie mode: the
// cookie is replaced at the next login).
func (s *service) end(ctx context.Context, sess *session.Session) {
	if s.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.store.Delete(ctx, sess.ID); err != nil {
		s.log.Warn("authn/login: could not delete an ended session", "error", err)
	}
}

// Advise sends the cookies of a session whose cookie changed (refreshed,
// idle deadline moved) and, with forward_access_token, the access token
// to the upstream.
func (a authenticator) Advise(r *http.Request, id *identity.Identity, h authn.HeaderSetter) {
	if id == nil || id.Method != identity.MethodSession {
		return
	}
	s := a.s
	value, ok := session.ReadCookies(r, s.cookie.Name)
	if !ok {
		return
	}
	// The session is the gateway's credential: the upstream never sees
	// it (nor an echo backend shows it), as it never sees Authorization.
	stripSessionCookies(r.Header, s.cookie.Name)
	e := s.cache.get(value)
	if e == nil || e.id != id {
		return
	}
	if cs := e.replaced.Load(); cs != nil {
		if cw, ok := h.(interface{ AddResponseCookie(*http.Cookie) error }); ok {
			for _, c := range *cs {
				_ = cw.AddResponseCookie(c)
			}
		}
	}
	if s.opts.ForwardAccessToken && e.sess.AccessToken != "" {
		if uh, ok := h.(interface{ SetUpstreamHeader(name, value string) }); ok {
			uh.SetUpstreamHeader("Authorization", "Bearer "+e.sess.AccessToken)
		}
	}
}

// stripSessionCookies removes the session cookie, its chunks (NAME.N)
// and login-state cookies (NAME-login-…) from the request's Cookie
// header, keeping the others.
func stripSessionCookies(h http.Header, name string) {
	values := h["Cookie"]
	if len(values) == 0 {
		return
	}
	var kept []string
	for _, line := range values {
		var b strings.Builder
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			n, _, _ := strings.Cut(p, "=")
			if n == name || strings.HasPrefix(n, name+".") || strings.HasPrefix(n, name+"-login-") {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// errNoRelogin marks a refusal a new login cannot cure.
var errNoRelogin = errors.New("authn/login: a new login would be refused too")

// sessionCache remembers opened cookie values (cookie mode), so that a
// request costs a map lookup, not a decryption and a decode. Bounded:
// when full, it starts over.
type sessionCache struct {
	mu sync.RWMutex
	m  map[string]*entry
}

const maxCachedSessions = 10000

func (c *sessionCache) init() { c.m = make(map[string]*entry) }

func (c *sessionCache) get(value string) *entry {
	c.mu.RLock()
	e := c.m[value]
	c.mu.RUnlock()
	return e
}

func (c *sessionCache) put(value string, e *entry) {
	c.mu.Lock()
	if len(c.m) >= maxCachedSessions {
		clear(c.m)
	}
	c.m[strings.Clone(value)] = e
	c.mu.Unlock()
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
