package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/session"
)

// service is everything a session configuration needs, shared by the
// routes whose session blocks are equal (through the resource registry,
// so a reload keeps the cache and the replay cache warm): the clients, the
// cookie codec, the store, the caches.
type service struct {
	opts    Options
	clients []*client
	byName  map[string]*client
	codec   *session.Codec
	cookie  session.CookieOptions
	// store is nil for cookie sessions.
	store   *session.RedisStore
	now     func() time.Time
	log     *slog.Logger
	origin  func(r *http.Request) (scheme, host string)
	revList *revocation.List
	revSvc  *revocation.Service
	http    *http.Client

	cache    sessionCache
	refresh  flight
	replay   jtiCache
	loginTTL time.Duration
}

// client is one identity provider's login client.
type client struct {
	cfg    Client
	name   string
	label  string
	issuer string
	secret string
	// verifier verifies ID tokens (and logout tokens: same keys, aud,
	// iss); rules build identities from a session's claims.
	verifier       *jwt.Verifier
	logoutVerifier *jwt.Verifier
	rules          *jwt.ClaimRules

	mu        sync.Mutex
	endpoints endpoints
	fetched   time.Time
}

// endpoints are a provider's login endpoints (discovery, or configured).
type endpoints struct {
	Issuer        string `json:"issuer"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	EndSession    string `json:"end_session_endpoint"`
	UserInfo      string `json:"userinfo_endpoint"`
}

// discoveryTTL is how long a discovery document is used.
const discoveryTTL = time.Hour

// errNoDiscovery: the provider's discovery document could not be read.
var errNoDiscovery = errors.New("authn/login: the identity provider's discovery document is unavailable")

// endpointsFor returns the client's endpoints, fetching discovery when
// none are configured (at most once per discoveryTTL; concurrent callers
// wait for one fetch).
func (s *service) endpointsFor(ctx context.Context, c *client) (endpoints, error) {
	if c.cfg.AuthorizationEndpoint != "" {
		return endpoints{Issuer: c.issuer, Authorization: c.cfg.AuthorizationEndpoint, Token: c.cfg.TokenEndpoint,
			EndSession: c.cfg.EndSessionEndpoint, UserInfo: c.cfg.UserInfoEndpoint}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if c.endpoints.Authorization != "" && now.Sub(c.fetched) < discoveryTTL {
		return c.endpoints, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return endpoints{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		if c.endpoints.Authorization != "" {
			return c.endpoints, nil // stale beats none
		}
		return endpoints{}, fmt.Errorf("%w: %v", errNoDiscovery, err)
	}
	defer resp.Body.Close()
	var e endpoints
	if resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	} else {
		err = json.NewDecoder(io.LimitReader(resp.Body, 256<<10)).Decode(&e)
	}
	switch {
	case err != nil:
	case e.Issuer != c.issuer:
		err = fmt.Errorf("discovery names issuer %q, not %q", e.Issuer, c.issuer)
	case e.Authorization == "" || e.Token == "":
		err = errors.New("discovery has no authorization or token endpoint")
	}
	if err != nil {
		if c.endpoints.Authorization != "" {
			return c.endpoints, nil
		}
		return endpoints{}, fmt.Errorf("%w: %v", errNoDiscovery, err)
	}
	if c.cfg.EndSessionEndpoint != "" {
		e.EndSession = c.cfg.EndSessionEndpoint
	}
	if c.cfg.UserInfoEndpoint != "" {
		e.UserInfo = c.cfg.UserInfoEndpoint
	}
	c.endpoints, c.fetched = e, now
	return e, nil
}

// newService compiles a session block.
func newService(o *Options, cfg *config.Config, verifier *jwt.Verifier, deps serviceDeps) (*service, error) {
	keys, err := parseKeys(o.Keys)
	if err != nil {
		return nil, err
	}
	codec, err := session.NewCodec(keys)
	if err != nil {
		return nil, fmt.Errorf("authn/login: %w", err)
	}
	s := &service{
		opts:     *o,
		byName:   map[string]*client{},
		codec:    codec,
		now:      deps.now,
		log:      deps.log,
		origin:   deps.origin,
		revList:  deps.revList,
		revSvc:   deps.revSvc,
		http:     &http.Client{Timeout: 10 * time.Second},
		loginTTL: o.LoginTimeout.Std(),
	}
	s.cookie = session.CookieOptions{
		Name:     o.cookieName(),
		Path:     "/",
		Secure:   !o.InsecureCookie,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   o.AbsoluteTimeout.Std(),
	}
	if err := s.cookie.Validate(); err != nil {
		return nil, fmt.Errorf("authn/login: %w", err)
	}
	if deps.redis != nil {
		s.store = session.NewRedisStore(deps.redis, deps.redisPrefix, session.WithCodec(codec), session.WithClock(deps.now))
	}
	s.cache.init()
	s.replay.init()
	for _, cc := range o.Clients {
		pc := findProvider(cfg, cc.Provider)
		if pc == nil {
			return nil, fmt.Errorf("authn/login: unknown identity provider %q", cc.Provider)
		}
		keys, algs, ok := verifier.Keys(pc.Name)
		if !ok {
			return nil, fmt.Errorf("authn/login: identity provider %q has no keys", pc.Name)
		}
		secret, err := cc.secret()
		if err != nil {
			return nil, err
		}
		jp := jwt.ProviderFromConfig(*pc)
		// An ID token is for this client: aud is the client id, whatever
		// the provider's access-token audiences; the access-token-only
		// rules (typ at+jwt, claim_values such as token_use: access) do
		// not apply. iat is required.
		jp.Audiences, jp.AudienceClaim = []string{cc.ClientID}, ""
		jp.RequiredType, jp.ClaimValues = "", nil
		jp.RequiredClaims = []string{"iat"}
		jp.Keys, jp.Algorithms = keys, algs
		v, err := jwt.NewVerifierWithOptions([]jwt.Provider{jp}, jwt.VerifierOptions{Now: deps.now, CacheSize: -1})
		if err != nil {
			return nil, fmt.Errorf("authn/login: %w", err)
		}
		// A logout token has a jti but maybe no sub (sid only): its
		// verifier reads jti where the identity's subject would be.
		lp := jp
		lp.RequiredClaims = []string{"iat", "jti"}
		lp.Mapping = jwt.Mapping{Subject: "jti"}
		lv, err := jwt.NewVerifierWithOptions([]jwt.Provider{lp}, jwt.VerifierOptions{Now: deps.now, CacheSize: -1})
		if err != nil {
			return nil, fmt.Errorf("authn/login: %w", err)
		}
		rp := jp
		rp.RequiredClaims, rp.MaxLifetime = nil, 0
		rules, err := jwt.NewClaimRules(rp, identity.MethodSession)
		if err != nil {
			return nil, fmt.Errorf("authn/login: %w", err)
		}
		c := &client{cfg: cc, name: pc.Name, label: cc.Label, issuer: pc.Issuer, secret: secret, verifier: v, logoutVerifier: lv, rules: rules}
		if c.label == "" {
			c.label = pc.Name
		}
		s.clients = append(s.clients, c)
		s.byName[c.name] = c
	}
	return s, nil
}

// serviceDeps are the process parts a service uses.
type serviceDeps struct {
	now     func() time.Time
	log     *slog.Logger
	origin  func(r *http.Request) (scheme, host string)
	revList *revocation.List
	revSvc  *revocation.Service
	// redis, when set, keeps the sessions (store redis) under redisPrefix.
	redis       redis.UniversalClient
	redisPrefix string
}

// parseKeys decodes the keys option.
func parseKeys(specs []string) ([][]byte, error) {
	keys, err := session.ParseKeys(specs)
	if err != nil {
		return nil, fmt.Errorf("authn/login: keys: %w", err)
	}
	return keys, nil
}

// clientFor returns the client of a provider name.
func (s *service) clientFor(name string) *client { return s.byName[name] }

// identityOf builds the identity of a session: the ID token's claims
// through the provider's claim mapping, as for a JWT of that provider.
// The session, not the ID token, decides validity: exp is the session's
// end, IssuedAt its login (revocation by subject compares it).
func (s *service) identityOf(sess *session.Session, c *client, now time.Time) (*identity.Identity, error) {
	claims := make(map[string]any, len(sess.Claims)+1)
	for k, v := range sess.Claims {
		claims[k] = v
	}
	end := s.sessionEnd(sess)
	claims["exp"] = json.Number(fmt.Sprint(end.Unix() + 1))
	delete(claims, "nbf")
	delete(claims, "iat") // the ID token's own iat says nothing of the session
	id, err := c.rules.Identity(claims, now)
	if err != nil {
		return nil, err
	}
	id.Method = identity.MethodSession
	id.ExpiresAt = end
	// The session's creation, not the provider's auth_time: after a
	// revocation, a login that the provider answers from its own older
	// session (same auth_time) must still give a session that works, or
	// the browser would loop between the gateway and the provider.
	id.IssuedAt = sess.Created
	id.SessionID = sess.SID
	id.CredentialID = credentialID(sess.ID)
	return id, nil
}

// sessionEnd is when the session ends unless used again.
func (s *service) sessionEnd(sess *session.Session) time.Time {
	end := sess.Created.Add(s.opts.AbsoluteTimeout.Std())
	if idle := s.opts.IdleTimeout.Std(); idle > 0 {
		if e := sess.LastSeen.Add(idle); e.Before(end) {
			end = e
		}
	}
	return end
}

// credentialID names a session in audit events and per-credential
// brute-force counters without revealing its id.
func credentialID(id string) string {
	sum := sha256Sum([]byte("gatehouse-session:" + id))
	return "s_" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// failure makes a session failure.
func failure(reason authn.Reason, desc string, err error) *authn.Failure {
	return &authn.Failure{Method: identity.MethodSession, Reason: reason, Description: desc, Err: err}
}
