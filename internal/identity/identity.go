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
	// For a composite identity (an AND chain), the earliest expiry of all
	// its credentials.
	ExpiresAt time.Time
	// IssuedAt is when the credential was issued (a token's iat); zero if
	// unknown. Revocation by subject compares it ("tokens issued before").
	IssuedAt time.Time
	// TokenHash is the SHA-256 of the bearer token the credential was
	// presented as, for revocation by token hash; all zero for credentials
	// that are not tokens. Not secret: a hash of a high-entropy token
	// cannot be turned back into it. A fixed-size array, so setting and
	// comparing it costs no allocation.
	TokenHash [32]byte
	// CertThumbprint is the SHA-256 thumbprint of the client certificate
	// the credential was presented with (base64url, no padding, as the
	// x5t#S256 confirmation of RFC 8705); empty if none.
	CertThumbprint string
	// SessionID is the identity provider's session id (the ID token's
	// sid) of a browser session (method session); empty otherwise.
	// Revocation entries of kind session match it.
	SessionID string
	// KeyBinding is the credential's proof-of-possession confirmation
	// (a token's cnf claim, RFC 7800); zero if the credential is not bound.
	KeyBinding KeyBinding
	// Credentials is the evidence of every credential that authenticated
	// the request, in chain order, when more than one did (an AND chain:
	// a client certificate and a token). nil means the identity itself is
	// the only credential: use Evidence, which covers both cases. The
	// identity's own fields (subject, scopes, …) are the primary
	// credential's.
	Credentials []Credential
}

// KeyBinding is a proof-of-possession confirmation (RFC 7800 cnf): the
// key the credential is bound to.
type KeyBinding struct {
	// Kind is the confirmation method's member name: "x5t#S256" (a
	// certificate thumbprint, RFC 8705) or "jkt" (a JWK thumbprint, RFC
	// 9449). Empty: not bound. KeyBindingInvalid: the token names one of
	// these kinds with a value that is not a thumbprint, so nothing can
	// satisfy it (checks refuse it).
	Kind string
	// Value is the thumbprint, base64url as the token carries it.
	Value string
}

// KeyBindingInvalid marks a confirmation of a known kind whose value is
// not a well-formed thumbprint.
const KeyBindingInvalid = "invalid"

// Credential is the evidence one credential contributed to an identity:
// who it names and what it is bound to, never the secret itself.
type Credential struct {
	Method         Method
	CredentialID   string
	Subject        string
	Issuer         string
	Provider       string
	ClientID       string
	ExpiresAt      time.Time
	IssuedAt       time.Time
	TokenHash      [32]byte
	CertThumbprint string
	KeyBinding     KeyBinding
}

// Credential returns the identity's own credential evidence (its primary
// credential's, for a composite identity).
func (id *Identity) Credential() Credential {
	return Credential{Method: id.Method, CredentialID: id.CredentialID, Subject: id.Subject, Issuer: id.Issuer,
		Provider: id.Provider, ClientID: id.ClientID, ExpiresAt: id.ExpiresAt, IssuedAt: id.IssuedAt, TokenHash: id.TokenHash,
		CertThumbprint: id.CertThumbprint, KeyBinding: id.KeyBinding}
}

// Evidence returns every credential that authenticated the request, in
// chain order: Credentials for a composite identity, else the identity's
// own credential (made on demand: a single-method request pays for it only
// when something asks). nil for the anonymous identity.
func (id *Identity) Evidence() []Credential {
	if id.IsAnonymous() {
		return nil
	}
	if id.Credentials != nil {
		return id.Credentials
	}
	return []Credential{id.Credential()}
}

// Composite reports whether more than one credential authenticated the
// request.
func (id *Identity) Composite() bool { return id != nil && len(id.Credentials) > 1 }

// Compose returns the identity of an AND chain: a copy of ids[primary]
// (never the original, which an authenticator's cache may share) that
// carries the evidence of every credential of ids in order, and expires
// with the earliest of them. ids must not be empty; one identity is
// returned as it is.
func Compose(ids []*Identity, primary int) *Identity {
	if len(ids) == 1 {
		return ids[0]
	}
	out := *ids[primary]
	n := 0
	for _, id := range ids {
		n += max(len(id.Credentials), 1)
	}
	out.Credentials = make([]Credential, 0, n)
	for _, id := range ids {
		if id.Credentials != nil {
			out.Credentials = append(out.Credentials, id.Credentials...)
		} else {
			out.Credentials = append(out.Credentials, id.Credential())
		}
	}
	for _, c := range out.Credentials {
		if !c.ExpiresAt.IsZero() && (out.ExpiresAt.IsZero() || c.ExpiresAt.Before(out.ExpiresAt)) {
			out.ExpiresAt = c.ExpiresAt
		}
	}
	return &out
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
