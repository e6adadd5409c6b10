// Package login is the session credential method: browser login through
// an OpenID Provider at the gateway (authorization code flow with PKCE
// S256, state and nonce), then a session kept in sealed __Host- cookies
// or in Redis. See docs/browser-login.md.
//
// A route that lists the method redirects a browser without a session to
// its identity provider (or to a chooser page when it offers several)
// and answers other clients 401. The method contributes the gateway-owned
// endpoints of the flow (endpoint.Provider): the callback, the logout,
// the back-channel logout receiver and the chooser. The ID token is
// verified with the jwt method's strict verifier (the provider's keys and
// algorithms; aud = client_id; iss, exp, iat, nonce, azp), and the
// caller's identity is built from its claims with the provider's claim
// mapping, so identity headers, policies, audit, revocation and rate
// limits work as for any method.
package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// Options is routes[].authenticate.session.
type Options struct {
	// Clients are the identity providers a user may log in with, one
	// OAuth client each. Several: a chooser page.
	Clients []Client `yaml:"clients" desc:"The identity providers users log in with: one OAuth client registration each (provider, client_id, client_secret). Several: the route shows a chooser page. Required."`
	// Keys seal the cookies (AES-256-GCM). The first seals, all open.
	Keys []string `yaml:"keys" desc:"Keys that seal the session and login-state cookies: each 32 random bytes, base64 (write them as ${ENV}). The first seals, every key opens: rotate by adding a new key first, and drop the old one after absolute_timeout. Required. Never logged."`
	// Store is cookie (the whole session sealed in cookies) or redis
	// (the cookie carries the sealed session id; the session is in the
	// top-level redis).
	Store string `yaml:"store" enum:"cookie,redis" desc:"Where sessions live: cookie (the whole session sealed into __Host- cookies, chunked; nothing on the server) or redis (the session in the top-level redis; the cookie carries only its sealed id; revocable everywhere). Default cookie."`
	// RedisPrefix prefixes the Redis keys of sessions.
	RedisPrefix string `yaml:"redis_prefix" desc:"Prefix of the Redis keys of sessions (store: redis). Default gatehouse:session:."`
	// CookieName is the session cookie's name.
	CookieName string `yaml:"cookie_name" desc:"Name of the session cookie (and prefix of its chunks and of the login-state cookies). Must start with __Host- unless insecure_cookie. Default __Host-gatehouse."`
	// InsecureCookie drops Secure and the __Host- prefix.
	InsecureCookie bool `yaml:"insecure_cookie" desc:"Send cookies without Secure (and name them gatehouse unless cookie_name says otherwise), for plain-http local development only: anyone on the network can steal the session. Default false."`
	// CallbackPath and the other paths are gateway-owned endpoints.
	CallbackPath string `yaml:"callback_path" desc:"Path of the login callback (the redirect_uri registered at the identity provider is this path on the route's origin). Default /.gatehouse/callback."`
	LogoutPath   string `yaml:"logout_path" desc:"Path of the logout endpoint (POST from the same origin; GET shows a confirmation form). Default /.gatehouse/logout."`
	// BackChannelLogout turns the back-channel logout receiver on.
	BackChannelLogout bool `yaml:"backchannel_logout" desc:"Serve the OIDC Back-Channel Logout 1.0 receiver at backchannel_logout_path: the provider's logout tokens end the matching sessions on every replica. With store cookie it needs revocation.enabled. Default false."`
	// BackChannelLogoutPath receives logout tokens from the providers.
	BackChannelLogoutPath string `yaml:"backchannel_logout_path" desc:"Path of the OIDC Back-Channel Logout receiver (register origin + path at the provider). Default /.gatehouse/backchannel-logout."`
	// ChooserPath is the identity-provider chooser page.
	ChooserPath string `yaml:"chooser_path" desc:"Path of the login page that lets the user choose an identity provider (several clients) and starts a login. Default /.gatehouse/login."`
	// PostLogoutRedirect is where the browser ends after logout.
	PostLogoutRedirect string `yaml:"post_logout_redirect" desc:"Absolute path on the route's origin the browser returns to after logout (the post_logout_redirect_uri sent to the provider is this path on the origin). Default /."`
	// IdleTimeout ends a session unused for this long.
	IdleTimeout config.Duration `yaml:"idle_timeout" desc:"A session unused for this long ends. Default 1h; 0 disables (absolute_timeout still applies)."`
	// AbsoluteTimeout ends a session this long after login.
	AbsoluteTimeout config.Duration `yaml:"absolute_timeout" desc:"A session ends this long after login, whatever its use. Default 12h. Must be at most revocation.max_token_lifetime when the revocation list is on, or revocations of sessions would expire first."`
	// RefreshBefore refreshes the access token this long before it expires.
	RefreshBefore config.Duration `yaml:"refresh_before" desc:"Refresh the session's access token (with its refresh token; ask for offline_access) this long before it expires. A failed refresh ends the session. Default 1m."`
	// ForwardAccessToken sends the session's access token upstream.
	ForwardAccessToken bool `yaml:"forward_access_token" desc:"Send the session's access token to the upstream as Authorization: Bearer. With it, a session whose access token expired and cannot be refreshed ends. Default false."`
	// LoginTimeout bounds a login attempt (the login-state cookie's life).
	LoginTimeout config.Duration `yaml:"login_timeout" desc:"How long a started login may take (the life of its login-state cookie). Default 10m."`
}

// Client is one identity provider's OAuth client registration.
type Client struct {
	// Provider names an identity_providers entry: its issuer, keys,
	// algorithms and claim mapping.
	Provider string `yaml:"provider" desc:"Name of the identity_providers entry: its issuer (discovery), signing keys, algorithms, clock skew and claim mapping verify the ID token and build the identity. Required."`
	// Label is shown on the chooser page.
	Label string `yaml:"label" desc:"Text of the provider's button on the chooser page. Default: the provider name."`
	// ClientID is the OAuth client id (the ID token's aud).
	ClientID string `yaml:"client_id" desc:"OAuth client id registered at the provider; the ID token's aud must contain it. Required."`
	// ClientSecret authenticates the client at the token endpoint.
	ClientSecret string `yaml:"client_secret" desc:"Client secret; write it as ${ENV}. Never logged. Required unless client_secret_file or token_auth_method none."`
	// ClientSecretFile reads the secret from a file.
	ClientSecretFile string `yaml:"client_secret_file" desc:"File holding the client secret (trailing newline ignored), read at every load."`
	// TokenAuthMethod is how the client authenticates at the token endpoint.
	TokenAuthMethod string `yaml:"token_auth_method" enum:"client_secret_basic,client_secret_post,none" desc:"Client authentication at the token endpoint: client_secret_basic, client_secret_post, or none (a public client: PKCE only). Default client_secret_basic."`
	// Scopes are requested; openid is required.
	Scopes []string `yaml:"scopes" desc:"Scopes requested. Must contain openid; add offline_access for a refresh token. Default [openid, profile, email]."`
	// Endpoints override discovery.
	AuthorizationEndpoint string `yaml:"authorization_endpoint" desc:"Authorization endpoint. Default: from the provider's discovery document."`
	TokenEndpoint         string `yaml:"token_endpoint" desc:"Token endpoint. Default: from the provider's discovery document."`
	EndSessionEndpoint    string `yaml:"end_session_endpoint" desc:"RP-initiated logout endpoint. Default: from the provider's discovery document; none: logout ends only the gateway's session."`
	UserInfoEndpoint      string `yaml:"userinfo_endpoint" desc:"UserInfo endpoint. Default: from the provider's discovery document."`
	// UserInfo reads the user's claims from the UserInfo endpoint at
	// login and refresh, for providers that keep them out of the ID
	// token (OIDC Core 5.4 allows it when an access token is issued).
	UserInfo *bool `yaml:"userinfo" desc:"At login (and after each refresh that returns a new ID token), also read the user's claims from the provider's UserInfo endpoint with the access token, when the provider has one: providers may, as OIDC Core 5.4 allows, return profile and email claims there only. Its sub must be the ID token's; the ID token's own claims win; a UserInfo endpoint that fails fails the login (false if your provider's endpoint rejects the access tokens it issues to this client). Default true."`
	// ProviderLogout sends the browser on to the provider's end_session_endpoint.
	ProviderLogout *bool `yaml:"provider_logout" desc:"After logout ends the gateway's session, send the browser to the provider's end_session_endpoint (RP-initiated logout, with id_token_hint and post_logout_redirect_uri, which must be registered at the provider) so the provider's session ends too. false: logout ends only the gateway's session and the browser goes straight to post_logout_redirect (for a provider that keeps no login session, or whose client cannot register the post-logout redirect URI). Default true."`
}

// Defaults.
const (
	DefaultCookieName      = "__Host-gatehouse"
	insecureCookieName     = "gatehouse"
	DefaultCallbackPath    = "/.gatehouse/callback"
	DefaultLogoutPath      = "/.gatehouse/logout"
	DefaultBackChannelPath = "/.gatehouse/backchannel-logout"
	DefaultChooserPath     = "/.gatehouse/login"
	DefaultRedisPrefix     = "gatehouse:session:"
	defaultIdleTimeout     = time.Hour
	defaultAbsoluteTimeout = 12 * time.Hour
	defaultRefreshBefore   = time.Minute
	defaultLoginTimeout    = 10 * time.Minute
	storeCookie            = "cookie"
	storeRedis             = "redis"
	authBasic              = "client_secret_basic"
	authPost               = "client_secret_post"
	authNone               = "none"
	maxClients             = 16
)

// SetDefaults fills the defaults before the block is read.
func (o *Options) SetDefaults() {
	o.Store = storeCookie
	o.RedisPrefix = DefaultRedisPrefix
	o.CallbackPath = DefaultCallbackPath
	o.LogoutPath = DefaultLogoutPath
	o.BackChannelLogoutPath = DefaultBackChannelPath
	o.ChooserPath = DefaultChooserPath
	o.PostLogoutRedirect = "/"
	o.IdleTimeout = config.Duration(defaultIdleTimeout)
	o.AbsoluteTimeout = config.Duration(defaultAbsoluteTimeout)
	o.RefreshBefore = config.Duration(defaultRefreshBefore)
	o.LoginTimeout = config.Duration(defaultLoginTimeout)
}

// cookieName is the session cookie's name.
func (o *Options) cookieName() string {
	switch {
	case o.CookieName != "":
		return o.CookieName
	case o.InsecureCookie:
		return insecureCookieName
	}
	return DefaultCookieName
}

// scopes are the client's scopes, defaulted.
func (c *Client) scopes() []string {
	if len(c.Scopes) == 0 {
		return []string{"openid", "profile", "email"}
	}
	return c.Scopes
}

// userInfo: read the UserInfo endpoint (default true).
func (c *Client) userInfo() bool { return c.UserInfo == nil || *c.UserInfo }

// providerLogout: RP-initiated logout at the provider (default true).
func (c *Client) providerLogout() bool { return c.ProviderLogout == nil || *c.ProviderLogout }

func (c *Client) authMethod() string {
	if c.TokenAuthMethod == "" {
		return authBasic
	}
	return c.TokenAuthMethod
}

// secret reads the client secret (the file wins when both are set:
// validation refuses that).
func (c *Client) secret() (string, error) {
	if c.ClientSecretFile == "" {
		return c.ClientSecret, nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("authn/login: client secret file of %q: %w", c.Provider, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func init() {
	registry.Register(registry.Method{
		Name:      identity.MethodSession,
		Challenge: "Session",
		Options:   &Options{},
		Validate:  validate,
		Build:     build,
	})
}

// validate checks a route's session block.
func validate(m config.RouteMethod) config.Errors {
	o, _ := m.Options.(*Options)
	if o == nil {
		return config.Errors{m.Errorf("methods", "the session method needs a session block (clients, keys)")}
	}
	var errs config.Errors
	add := func(key, format string, args ...any) { errs = append(errs, m.Errorf("session."+key, format, args...)) }
	switch n := len(o.Clients); {
	case n == 0:
		add("clients", "at least one client is required")
	case n > maxClients:
		add("clients", "at most %d clients", maxClients)
	}
	seen := map[string]bool{}
	for i, c := range o.Clients {
		at := fmt.Sprintf("clients[%d].", i)
		pc := findProvider(m.Config, c.Provider)
		switch {
		case c.Provider == "":
			add(at+"provider", "is required")
		case pc == nil:
			add(at+"provider", "unknown identity provider %q", c.Provider)
		case seen[c.Provider]:
			add(at+"provider", "provider %q is listed twice", c.Provider)
		case len(m.Route.Authenticate.Providers) > 0 && !slices.Contains(m.Route.Authenticate.Providers, c.Provider):
			add(at+"provider", "%q is not among the route's providers", c.Provider)
		}
		if pc != nil && pc.StaticKeys != nil && c.AuthorizationEndpoint == "" {
			add(at+"authorization_endpoint", "provider %q has static keys, so no discovery: give authorization_endpoint and token_endpoint", c.Provider)
		}
		seen[c.Provider] = true
		if c.ClientID == "" {
			add(at+"client_id", "is required")
		}
		switch c.authMethod() {
		case authBasic, authPost:
			if c.ClientSecret == "" && c.ClientSecretFile == "" {
				add(at+"client_secret", "a client secret (or client_secret_file) is required for %s", c.authMethod())
			}
			if c.ClientSecret != "" && c.ClientSecretFile != "" {
				add(at+"client_secret_file", "give client_secret or client_secret_file, not both")
			}
		case authNone:
			if c.ClientSecret != "" || c.ClientSecretFile != "" {
				add(at+"client_secret", "token_auth_method none sends no secret: remove it")
			}
		default:
			add(at+"token_auth_method", "must be client_secret_basic, client_secret_post or none")
		}
		if !slices.Contains(c.scopes(), "openid") {
			add(at+"scopes", "must contain openid")
		}
		for _, s := range c.scopes() {
			if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
				add(at+"scopes", "scope %q is not a scope token", s)
			}
		}
		for key, u := range map[string]string{"authorization_endpoint": c.AuthorizationEndpoint, "token_endpoint": c.TokenEndpoint, "end_session_endpoint": c.EndSessionEndpoint, "userinfo_endpoint": c.UserInfoEndpoint} {
			if u == "" {
				continue
			}
			pu, err := url.Parse(u)
			insecure := pc != nil && pc.InsecureAllowHTTP
			if err != nil || pu.Host == "" || (pu.Scheme != "https" && !(insecure && pu.Scheme == "http")) {
				add(at+key, "must be an https URL (http only with the provider's insecure_allow_http)")
			}
		}
		if (c.AuthorizationEndpoint == "") != (c.TokenEndpoint == "") {
			add(at+"token_endpoint", "give authorization_endpoint and token_endpoint together, or neither (discovery)")
		}
	}
	if len(o.Keys) == 0 {
		add("keys", "at least one key is required (32 random bytes, base64)")
	} else if _, err := parseKeys(o.Keys); err != nil {
		add("keys", "%v", err)
	}
	switch o.Store {
	case storeCookie:
	case storeRedis:
		if len(m.Config.Redis.Addresses) == 0 {
			add("store", "store redis needs the top-level redis block")
		}
	default:
		add("store", "must be cookie or redis")
	}
	name := o.cookieName()
	switch {
	case !validCookieName(name):
		add("cookie_name", "%q is not a cookie name", name)
	case !o.InsecureCookie && !strings.HasPrefix(name, "__Host-"):
		add("cookie_name", "must start with __Host- (a cookie only this origin can set); insecure_cookie is for local plain-http development")
	case o.InsecureCookie && strings.HasPrefix(name, "__Host-"):
		add("cookie_name", "a __Host- cookie needs Secure: drop insecure_cookie or rename the cookie")
	}
	paths := map[string]string{"callback_path": o.CallbackPath, "logout_path": o.LogoutPath,
		"backchannel_logout_path": o.BackChannelLogoutPath, "chooser_path": o.ChooserPath}
	used := map[string]string{}
	for _, key := range []string{"callback_path", "logout_path", "backchannel_logout_path", "chooser_path"} {
		p := paths[key]
		if !cleanAbsPath(p) {
			add(key, "must be a clean absolute path without query")
			continue
		}
		if other, dup := used[p]; dup {
			add(key, "same path as %s", other)
		}
		used[p] = key
	}
	if !safeReturnPath(o.PostLogoutRedirect) {
		add("post_logout_redirect", "must be an absolute path on the route's origin (\"/\", \"/bye\")")
	}
	if o.AbsoluteTimeout <= 0 {
		add("absolute_timeout", "must be positive")
	}
	if o.IdleTimeout < 0 || o.RefreshBefore < 0 {
		add("idle_timeout", "timeouts cannot be negative")
	}
	if o.LoginTimeout <= 0 || o.LoginTimeout.Std() > time.Hour {
		add("login_timeout", "must be between 1s and 1h")
	}
	rv := m.Config.Revocation
	if rv.Enabled && rv.MaxTokenLifetime > 0 && o.AbsoluteTimeout > rv.MaxTokenLifetime {
		add("absolute_timeout", "is longer than revocation.max_token_lifetime (%s): a revoked session would come back when its entry expires", rv.MaxTokenLifetime)
	}
	if o.BackChannelLogout && o.Store == storeCookie && !rv.Enabled {
		// Back-channel logout and CAEP revocation of cookie sessions go
		// through the revocation list: without it, they cannot work.
		add("backchannel_logout", "cookie sessions are ended by back-channel logout through the revocation list: turn revocation.enabled on, or use store: redis")
	}
	return errs
}

func findProvider(c *config.Config, name string) *config.IdentityProvider {
	for i := range c.IdentityProviders {
		if c.IdentityProviders[i].Name == name {
			return &c.IdentityProviders[i]
		}
	}
	return nil
}

func validCookieName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	c := http.Cookie{Name: s, Value: "x"}
	return c.Valid() == nil
}

// cleanAbsPath: "/a/b", no query, no dot segments, no "//".
func cleanAbsPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#{}\\ ") || strings.Contains(p, "//") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

var _ authn.Authenticator = authenticator{}

// Shared resource kinds this method asks the pipeline for.
const (
	sharedRevocationList    = "revocation.list"
	sharedRevocationService = "revocation.service"
)

// resourceKind is the resource kind of a session service.
const resourceKind = "session.service"

// keySalt keeps secrets out of resource keys (which status pages show):
// equal secrets give equal keys within the process, nothing more.
var keySalt = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

func macString(s string) string {
	if s == "" {
		return ""
	}
	h := hmac.New(sha256.New, keySalt)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// build makes a route's authenticator over the service its session block
// defines (shared by every route with the same block, across reloads).
func build(env registry.Env) (authn.Authenticator, error) {
	o, _ := env.Options.(*Options)
	if o == nil {
		return nil, errors.New("authn/login: the session method needs a session block")
	}
	v, err := env.Shared(jwt.SharedVerifier)
	if err != nil {
		return nil, fmt.Errorf("authn/login: no identity provider is configured: %w", err)
	}
	verifier, ok := v.(*jwt.Verifier)
	if !ok || verifier == nil {
		return nil, fmt.Errorf("authn/login: shared %s is %T", jwt.SharedVerifier, v)
	}
	if o.Store == storeRedis && (env.Validating || env.Resources == nil) {
		return registry.NotEvaluated(identity.MethodSession, "sessions are kept in Redis"), nil
	}
	deps := serviceDeps{now: env.Now, log: env.Log, origin: env.Origin}
	if deps.origin == nil {
		deps.origin = jwt.DefaultOrigin
	}
	if l, err := env.Shared(sharedRevocationList); err == nil {
		deps.revList, _ = l.(*revocation.List)
	}
	if sv, err := env.Shared(sharedRevocationService); err == nil {
		deps.revSvc, _ = sv.(*revocation.Service)
	}
	// The key: every setting the service compiles, secrets as MACs.
	keyed := *o
	keyed.Keys = make([]string, len(o.Keys))
	for i, k := range o.Keys {
		keyed.Keys[i] = macString(k)
	}
	keyed.Clients = slices.Clone(o.Clients)
	var provs []config.IdentityProvider
	for i := range keyed.Clients {
		keyed.Clients[i].ClientSecret = macString(keyed.Clients[i].ClientSecret)
		if pc := findProvider(env.Config, keyed.Clients[i].Provider); pc != nil {
			provs = append(provs, *pc)
		}
	}
	settings := struct {
		Options    Options
		Providers  []config.IdentityProvider
		Redis      string
		Revocation config.Revocation
		Verifier   string
	}{keyed, provs, "", env.Config.Revocation, fmt.Sprintf("%p", verifier)}
	if o.Store == storeRedis {
		settings.Redis = redisconn.ResourceKey(env.Config.Redis)
	}
	open := func() (*service, func(), error) {
		if o.Store == storeRedis {
			rc, err := redisconn.Acquire(env.Resources, env.Config.Redis, redisconn.Options{Logger: env.Log})
			if err != nil {
				return nil, nil, fmt.Errorf("authn/login: redis: %w", err)
			}
			deps.redis, deps.redisPrefix = rc.Redis(), rc.Prefix()+o.RedisPrefix
		}
		s, err := newService(o, env.Config, verifier, deps)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	}
	var s *service
	if env.Resources != nil {
		s, _, err = resource.Get(env.Resources, resource.Key(resourceKind, settings), open)
	} else {
		s, _, err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("authn/login: route %q: %w", env.Route.Name, err)
	}
	a := authenticator{s: s}
	if len(s.clients) == 1 {
		a.single = s.clients[0].name
	}
	return a, nil
}
