// Package identity is the caller's identity, the one value every credential
// type produces (JWT, API key, introspection, mTLS, session) and every later
// stage consumes (authorization, rate limiting, identity headers, audit).
// It has no dependencies so that every package can use it.
package identity

import (
	"slices"
	"time"
)

// Method names how a caller authenticated. The values are stable: they
// appear in configuration, audit events and identity headers.
type Method string

// Authentication methods.
const (
	MethodJWT           Method = "jwt"
	MethodAPIKey        Method = "api_key"
	MethodIntrospection Method = "introspection"
	MethodMTLS          Method = "mtls"
	MethodSession       Method = "session"
	// MethodAnonymous is the identity of a request that presented no
	// credential on a route that allows anonymous access.
	MethodAnonymous Method = "anonymous"
)

// Identity is who is calling. It is immutable once an authenticator has
// returned it: stages read it and never change it.
type Identity struct {
	// Subject identifies the caller within its issuer: a user id (sub), a
	// consumer id, a certificate subject.
	Subject string
	// Issuer is who vouched for the subject (the token's iss, "gatehouse"
	// for API keys).
	Issuer string
	// Provider is the configured name of the identity source.
	Provider string
	// Method is how the caller authenticated.
	Method Method
	// CredentialID identifies the credential (jti, API key id, certificate
	// fingerprint) for audit and revocation; never the secret itself.
	CredentialID string
	// ClientID is the OAuth client the token was issued to (client_id/azp).
	ClientID string
	// Scopes are OAuth scopes granted to the credential.
	Scopes []string
	// Roles are the caller's roles (realm_access.roles, roles, …).
	Roles []string
	// Groups are the caller's groups (groups, cognito:groups, consumer groups).
	Groups []string
	// Claims holds the claims selected by configuration for policies and
	// identity headers, keyed by the name they were selected under.
	Claims map[string]any
	// ExpiresAt is when the credential stops being valid; zero if never.
	ExpiresAt time.Time
}

// Anonymous is the identity of an unauthenticated request on a route that
// allows anonymous access.
var Anonymous = &Identity{Method: MethodAnonymous}

// IsAnonymous reports whether the identity is the anonymous one.
func (id *Identity) IsAnonymous() bool { return id == nil || id.Method == MethodAnonymous }

// HasScope reports whether the credential was granted scope s.
func (id *Identity) HasScope(s string) bool { return id != nil && slices.Contains(id.Scopes, s) }

// HasRole reports whether the caller has role r.
func (id *Identity) HasRole(r string) bool { return id != nil && slices.Contains(id.Roles, r) }

// InGroup reports whether the caller is in group g.
func (id *Identity) InGroup(g string) bool { return id != nil && slices.Contains(id.Groups, g) }
