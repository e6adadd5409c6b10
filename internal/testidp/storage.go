package testidp

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errUnsupported answers the flows this provider does not offer (JWT
// profile).
var errUnsupported = errors.New("testidp: not supported")

// issuedToken remembers a token from the token endpoint for introspection.
type issuedToken struct {
	subject  string
	audience []string
	scopes   []string
	issued   time.Time
	expires  time.Time
}

// storage is a minimal op.Storage: a confidential client that may use
// client_credentials, the browser-login client (login.go), keys from the
// Provider, and nothing persistent. It is
// per Provider, unlike the example storage's package-global client map.
type storage struct {
	p *Provider
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.Client                         = (*client)(nil)
	_ op.TokenRequest                   = (*tokenRequest)(nil)
	_ op.SigningKey                     = (*signingKey)(nil)
	_ op.Key                            = publicKey{}
)

// --- client authentication -------------------------------------------------

func (s *storage) checkSecret(clientID, secret string) error {
	idOK := subtle.ConstantTimeCompare([]byte(clientID), []byte(s.p.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.p.ClientSecret)) == 1
	if !idOK || !secretOK {
		return errors.New("testidp: invalid client credentials")
	}
	return nil
}

func (s *storage) checkSecret2(clientID, secret string) (*client, error) {
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(WebClientID)) == 1 {
		if err := s.checkSecret(s.p.ClientID, secret); err != nil {
			return nil, err
		}
		return &client{id: WebClientID, web: true, p: s.p}, nil
	}
	// The opaque client shares the secret; its id decides the token form.
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(OpaqueClientID)) == 1 {
		if err := s.checkSecret(s.p.ClientID, secret); err != nil {
			return nil, err
		}
		return &client{id: OpaqueClientID, opaque: true}, nil
	}
	if err := s.checkSecret(clientID, secret); err != nil {
		return nil, err
	}
	return &client{id: s.p.ClientID}, nil
}

func (s *storage) ClientCredentials(_ context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.checkSecret2(clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return &tokenRequest{subject: clientID, audience: []string{s.p.Audience}, scopes: scopes}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	if clientID == OpaqueClientID {
		return &client{id: OpaqueClientID, opaque: true}, nil
	}
	if clientID == WebClientID {
		return &client{id: WebClientID, web: true, p: s.p}, nil
	}
	if clientID == PublicClientID {
		return &client{id: PublicClientID, web: true, public: true, p: s.p}, nil
	}
	if clientID != s.p.ClientID {
		return nil, errors.New("testidp: unknown client")
	}
	return &client{id: s.p.ClientID}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, clientSecret string) error {
	_, err := s.checkSecret2(clientID, clientSecret)
	return err
}

// --- tokens ------------------------------------------------------------------

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	id := randomID(12)
	now := time.Now()
	s.p.mu.Lock()
	exp := now.Add(s.p.login.accessTTL)
	for jti, t := range s.p.tokens {
		if now.After(t.expires) {
			delete(s.p.tokens, jti)
		}
	}
	s.p.tokens[id] = issuedToken{
		subject:  req.GetSubject(),
		audience: req.GetAudience(),
		scopes:   req.GetScopes(),
		issued:   now,
		expires:  exp,
	}
	s.p.mu.Unlock()
	return id, exp, nil
}

// GetPrivateClaimsFromRequest puts the granted scopes into the access
// token: zitadel's CreateJWT does not add a scope claim by itself.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	if scopes := req.GetScopes(); len(scopes) > 0 {
		return map[string]any{"scope": strings.Join(scopes, " ")}, nil
	}
	return nil, nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.p.mu.Lock()
	t, ok := s.p.tokens[tokenID]
	s.p.mu.Unlock()
	if !ok || t.subject != subject || time.Now().After(t.expires) {
		return errors.New("testidp: token not active")
	}
	resp.Scope = t.scopes
	resp.ClientID = t.subject
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.expires)
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.NotBefore = oidc.FromTime(t.issued)
	resp.Subject = t.subject
	resp.Audience = t.audience
	resp.Issuer = s.p.Issuer
	resp.JWTID = tokenID
	return nil
}

// --- keys --------------------------------------------------------------------

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.current, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.p.alg}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	keys := make([]op.Key, len(s.p.keys))
	for i, k := range s.p.keys {
		keys[i] = publicKey{k}
	}
	return keys, nil
}

func (s *storage) Health(context.Context) error { return nil }

// RevokeToken forgets an access token (RFC 7009): introspection answers
// active=false from then on.
func (s *storage) RevokeToken(_ context.Context, tokenID, _, _ string) *oidc.Error {
	s.p.mu.Lock()
	delete(s.p.tokens, tokenID)
	s.p.mu.Unlock()
	return nil
}
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromToken answers the UserInfo endpoint for an access token
// it issued and that has not expired: the user's claims, as in ID tokens.
func (s *storage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.p.mu.Lock()
	t, ok := s.p.tokens[tokenID]
	s.p.login.userInfoCalls++
	other := s.p.login.userInfoSub
	s.p.mu.Unlock()
	if !ok || t.subject != subject || time.Now().After(t.expires) {
		return errors.New("testidp: unknown or expired access token")
	}
	ui.Subject = subject
	if other != "" {
		defer func() { ui.Subject = other }()
	}
	for _, u := range Users {
		if u.Subject == subject {
			ui.Email = u.Email
			ui.EmailVerified = true
			ui.AppendClaims("roles", u.Roles)
			ui.AppendClaims("groups", u.Groups)
		}
	}
	return nil
}

// GetKeyByIDAndClientID answers the key of a private_key_jwt client
// assertion (SetClientKey).
func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	k := s.p.clientKey
	if k == nil || clientID != s.p.ClientID || (keyID != "" && k.KeyID != keyID) {
		return nil, errors.New("testidp: unknown client key")
	}
	return k, nil
}
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}

// tokenRequest is the client_credentials request turned into a token.
type tokenRequest struct {
	subject  string
	audience []string
	scopes   []string
}

func (r *tokenRequest) GetSubject() string    { return r.subject }
func (r *tokenRequest) GetAudience() []string { return r.audience }
func (r *tokenRequest) GetScopes() []string   { return r.scopes }

// client is a registered client: confidential, client_credentials only;
// JWT access tokens, or opaque ones for OpaqueClientID.
type client struct {
	id     string
	opaque bool
	// web: WebClientID, the browser-login client (login.go); public:
	// PublicClientID, the same without a secret (PKCE only).
	web    bool
	public bool
	p      *Provider
}

func (c *client) GetID() string { return c.id }
func (c *client) RedirectURIs() []string {
	if !c.web {
		return nil
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.login.redirectURIs)
}
func (c *client) PostLogoutRedirectURIs() []string {
	if !c.web {
		return nil
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.login.postLogoutURIs)
}
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	if c.web {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}
func (c *client) GrantTypes() []oidc.GrantType {
	if c.web {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	}
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}
func (c *client) LoginURL(id string) string { return LoginPath + "?id=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType {
	if c.opaque {
		return op.AccessTokenTypeBearer
	}
	return op.AccessTokenTypeJWT
}
func (c *client) IDTokenLifetime() time.Duration       { return defaultTokenTTL }
func (c *client) DevMode() bool                        { return c.public } // http redirect URIs on loopback
func (c *client) IsScopeAllowed(string) bool           { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
