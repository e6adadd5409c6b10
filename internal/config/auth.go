package config

// IdentityProvider is a trusted issuer of JWT access tokens (an OIDC
// provider such as Okta, Auth0, Keycloak, Entra ID, Cognito or Google).
// Several may be configured at once (federation): a token's iss selects its
// provider, and it is verified only with that provider's keys.
type IdentityProvider struct {
	// Name identifies the provider in routes, logs and audit events. Required.
	Name string `yaml:"name" desc:"Provider name used by routes and audit events. Required."`
	// Issuer must equal the token's iss exactly. With neither jwks_uri nor
	// static_keys, keys come from OIDC discovery at
	// <issuer>/.well-known/openid-configuration. Required.
	Issuer string `yaml:"issuer" desc:"Issuer URL; must equal the token's iss exactly. Keys come from OIDC discovery unless jwks_uri or static_keys is set. Required."`
	// Audiences accepted in aud (or in AudienceClaim); a token must carry
	// at least one. Required.
	Audiences []string `yaml:"audiences" desc:"Accepted audiences; the token's aud (or audience_claim) must contain one. Required."`
	// AudienceClaim is the claim checked against Audiences instead of aud,
	// for providers whose access tokens carry no aud (Amazon Cognito:
	// client_id). Default aud. Security: tokens without aud are accepted
	// only with this set, and then any token of the issuer whose
	// AudienceClaim holds one of Audiences passes; pin the token kind with
	// claim_values (Cognito: token_use: [access]).
	AudienceClaim string `yaml:"audience_claim" desc:"Claim checked against audiences instead of aud, for providers whose access tokens have no aud (Cognito: client_id). Default aud; aud is then not checked. Pin the token kind with claim_values (Cognito: token_use: [access])."`
	// JWKSURI fetches keys from this URL instead of discovery.
	JWKSURI string `yaml:"jwks_uri" desc:"Fetch signing keys from this JWKS URL instead of OIDC discovery."`
	// StaticKeys configures keys that are never fetched.
	StaticKeys *StaticKeys `yaml:"static_keys" desc:"Keys from files or an HMAC secret, never fetched."`
	// Algorithms allowed for this provider. Default: RS256 RS384 RS512
	// PS256 PS384 PS512 ES256 ES384 ES512 EdDSA (asymmetric only). HS256,
	// HS384 and HS512 must be listed explicitly and need static_keys.hmac_secret.
	// "none" is never accepted.
	Algorithms []string `yaml:"algorithms" desc:"Allowed signature algorithms. Default: all asymmetric (RS*, PS*, ES*, EdDSA). HS* only when listed and with an hmac_secret; none is never accepted."`
	// ClockSkew is the leeway applied to exp, nbf and iat. Default 30s.
	ClockSkew Duration `yaml:"clock_skew" desc:"Leeway for exp, nbf and iat. Default 30s."`
	// MaxTokenLifetime refuses tokens whose exp - iat is longer. Default 24h; 0 disables.
	MaxTokenLifetime Duration `yaml:"max_token_lifetime" desc:"Refuse tokens whose lifetime (exp - iat) is longer. Default 24h; 0 disables."`
	// RequiredType, if set, must equal the typ header (e.g. at+jwt, RFC 9068).
	RequiredType string `yaml:"required_type" desc:"Required typ header, e.g. at+jwt (RFC 9068). Default: not checked."`
	// RequiredClaims must be present in the token.
	RequiredClaims []string `yaml:"required_claims" desc:"Claims that must be present."`
	// ClaimValues: each claim must equal one of the listed values.
	ClaimValues map[string][]string `yaml:"claim_values" desc:"Claims that must equal one of the listed values (for array claims, one element must)."`
	// MaxTokenSize refuses larger tokens before parsing. Default 16KiB.
	MaxTokenSize ByteSize `yaml:"max_token_size" desc:"Largest token accepted, checked before parsing. Default 16KiB."`
	// Claims maps token claims to the identity.
	Claims ClaimsMapping `yaml:"claims" desc:"How token claims map to the caller's identity."`
	// Keys tunes fetching and caching of the provider's signing keys.
	Keys KeyCache `yaml:"keys" desc:"Signing key fetching and caching."`
	// InsecureAllowHTTP permits http:// issuer and JWKS URLs. Only for
	// tests and local development: keys fetched over plain HTTP can be
	// replaced by anyone on the network path. Default false.
	InsecureAllowHTTP bool `yaml:"insecure_allow_http" desc:"Allow http:// issuer and JWKS URLs (local development only: keys could be tampered with in transit). Default false."`
}

// StaticKeys are verification keys given in the configuration.
type StaticKeys struct {
	// Files are JWK, JWK Set or PEM public key / certificate files.
	Files []string `yaml:"files" desc:"JWK, JWK Set or PEM public key/certificate files."`
	// HMACSecret is a shared secret for HS* algorithms, at least 32 bytes.
	// Give it through ${ENV}, never inline.
	HMACSecret string `yaml:"hmac_secret" desc:"Shared secret for HS256/384/512 (at least 32 bytes); use ${ENV}."`
}

// ClaimsMapping selects the claims that make up the identity.
type ClaimsMapping struct {
	// Subject claim path. Default sub.
	Subject string `yaml:"subject" desc:"Claim holding the subject. Default sub."`
	// ClientID claim path. Default client_id, then azp.
	ClientID string `yaml:"client_id" desc:"Claim holding the OAuth client id. Default client_id, then azp."`
	// Scopes is the claim path holding the scopes, or a list of paths tried
	// in order: the first claim present in the token is used, even if it is
	// empty (Auth0: [permissions, scope]). Default scope (space-separated),
	// then scp (array).
	Scopes ClaimPaths `yaml:"scopes" desc:"Claim holding scopes, or a list of claims tried in order (the first present in the token is used, even if empty), e.g. [permissions, scope] for Auth0. Default scope (space-separated), then scp (array)."`
	// Roles claim path, e.g. realm_access.roles (Keycloak), roles (Entra).
	Roles string `yaml:"roles" desc:"Claim path holding roles, e.g. realm_access.roles (Keycloak), roles (Entra ID)."`
	// Groups claim path, e.g. groups (Okta), cognito:groups (Cognito).
	Groups string `yaml:"groups" desc:"Claim path holding groups, e.g. groups (Okta), cognito:groups (Cognito)."`
	// Extra copies more claims into the identity: name → claim path.
	Extra map[string]string `yaml:"extra" desc:"More claims to copy into the identity, as name: claim.path."`
}

// ClaimPaths is one claim path, or a list of claim paths tried in order.
// The file may give a single string ("scope") or a list ([permissions,
// scope]); an empty string means the default.
type ClaimPaths []string

// oneOrMany marks the type for the decoder and the schema: a scalar is a
// list of one.
func (ClaimPaths) oneOrMany() {}

// KeyCache tunes a provider's key set. See docs/authentication.md.
type KeyCache struct {
	// RefreshInterval is used when the JWKS response has no Cache-Control max-age. Default 15m.
	RefreshInterval Duration `yaml:"refresh_interval" desc:"Refresh period when the JWKS has no Cache-Control max-age. Default 15m."`
	// MinRefreshInterval bounds a short max-age from below. Default 1m.
	MinRefreshInterval Duration `yaml:"min_refresh_interval" desc:"Lower bound on Cache-Control max-age. Default 1m."`
	// MaxRefreshInterval bounds a long max-age from above. Default 24h.
	MaxRefreshInterval Duration `yaml:"max_refresh_interval" desc:"Upper bound on Cache-Control max-age. Default 24h."`
	// UnknownKIDInterval: at most one refetch for unknown key ids per
	// interval. A lookup the limit refuses is not remembered; a refetch is
	// scheduled for when the interval has passed. Default 30s.
	UnknownKIDInterval Duration `yaml:"unknown_kid_interval" desc:"At most one refetch triggered by unknown key ids per interval; a refused one is scheduled for when the interval has passed (so a flood of forged kids delays a new key by one interval at most). Default 30s."`
	// NegativeCacheTTL is deprecated and ignored: unknown key ids are no
	// longer remembered (a forged token could otherwise make Gatehouse
	// refuse a key the provider publishes next). Accepted so that existing
	// files still load; a warning is logged when it is set.
	NegativeCacheTTL Duration `yaml:"negative_cache_ttl" desc:"Deprecated and ignored (unknown key ids are no longer remembered, so a forged token cannot block a key the provider publishes next); a warning is logged when set."`
	// MaxStale: how long the last good keys serve while the provider is
	// unreachable; then requests fail closed (503). Must not be shorter
	// than refresh_interval or min_refresh_interval. Default 24h.
	MaxStale Duration `yaml:"max_stale" desc:"How long the last good keys keep serving while the provider is unreachable; after that requests fail closed (503). Must not be shorter than refresh_interval or min_refresh_interval. Default 24h."`
	// FetchTimeout bounds one discovery or JWKS request. Default 5s.
	FetchTimeout Duration `yaml:"fetch_timeout" desc:"Timeout of one discovery or JWKS request. Default 5s."`
}

// Authenticate is a route's authentication requirement.
type Authenticate struct {
	// Methods accepted, tried in order: the registered credential methods
	// (jwt, api_key, …; see docs/extending.md). Required.
	Methods []string `yaml:"methods" desc:"Accepted credential methods, tried in order (jwt, api_key). Required."`
	// Providers restricts jwt to these identity providers. Default: all.
	Providers []string `yaml:"providers" desc:"Identity providers accepted on this route (jwt). Default: all."`
	// RequireAll turns the list into an AND: every method must succeed. Default false (any one).
	RequireAll bool `yaml:"require_all" desc:"Every listed method must succeed (AND) instead of any one (OR). Default false."`
	// AllowAnonymous lets requests without any credential through as anonymous. A bad credential is still refused. Default false.
	AllowAnonymous bool `yaml:"allow_anonymous" desc:"Let requests with no credential through as anonymous; a bad credential is still refused. Default false."`
	// APIKeyQueryParam also reads API keys from this query parameter. Keys
	// in URLs end up in browser history and proxy logs: a warning is logged
	// at load. Default: none.
	APIKeyQueryParam string `yaml:"api_key_query_param" desc:"Also read API keys from this query parameter (discouraged: URLs leak into logs and history; a warning is logged). Default: none."`
	// Primary names the method whose identity (subject, issuer, scopes,
	// roles, groups, claims) an AND chain answers with; the others are
	// evidence beside it. Default: the last listed method.
	Primary string `yaml:"primary" desc:"With require_all: the method whose subject, scopes, roles, groups and claims make the caller's identity; the other credentials are kept as evidence. Default: the last listed method."`
	// Realm in WWW-Authenticate. Default gatehouse.
	Realm string `yaml:"realm" desc:"Realm in WWW-Authenticate challenges. Default gatehouse."`
	// MethodOptions holds the decoded blocks of registered methods
	// (routes[].authenticate.<method>), by method name; see Options.
	MethodOptions map[string]any `yaml:"-"`
}

// IdentityHeaders are the headers that carry the caller's identity to the
// upstream. Client-sent headers with these names are always removed,
// whether or not the request authenticated, so they cannot be spoofed. An
// empty name turns that header off.
type IdentityHeaders struct {
	Subject  string `yaml:"subject" desc:"Header carrying the subject. Default X-Auth-Subject."`
	Issuer   string `yaml:"issuer" desc:"Header carrying the issuer. Default X-Auth-Issuer."`
	Method   string `yaml:"method" desc:"Header carrying the authentication method. Default X-Auth-Method."`
	ClientID string `yaml:"client_id" desc:"Header carrying the client id. Default X-Auth-Client-Id."`
	Scopes   string `yaml:"scopes" desc:"Header carrying scopes, space-separated. Default X-Auth-Scopes."`
	Roles    string `yaml:"roles" desc:"Header carrying roles, comma-separated. Default X-Auth-Roles."`
	Groups   string `yaml:"groups" desc:"Header carrying groups, comma-separated. Default X-Auth-Groups."`
	// Credentials carries the evidence of every credential that
	// authenticated the request (an RFC 8941 structured-field list, one
	// member per credential). Default: none.
	Credentials string `yaml:"credentials" desc:"Header carrying every credential's evidence (method, id, subject, issuer, expiry, certificate thumbprint, key binding) as an RFC 8941 structured-field list. Default: none (not sent)."`
	// Claims maps identity claims (claims.extra names) to header names.
	Claims map[string]string `yaml:"claims" desc:"Identity claims (from claims.extra) to send, as claim: Header-Name; arrays are comma-separated."`
	// ClientCertificate, when set, forwards the verified client certificate
	// that authenticated the request (mtls) in Envoy's XFCC form. Default:
	// none.
	ClientCertificate string `yaml:"client_certificate" desc:"Header carrying the verified client certificate of an mtls request to the upstream in Envoy's X-Forwarded-Client-Cert form (Hash, Cert as URL-encoded PEM, Subject, URI, DNS), e.g. X-Forwarded-Client-Cert. Sent only when the certificate took part in authentication. Default: none (not sent)."`
	// ForwardAuthorization sends the client's Authorization header upstream. Default false (stripped).
	ForwardAuthorization bool `yaml:"forward_authorization" desc:"Send the client's Authorization header upstream. Default false: stripped, the identity headers speak for the caller."`
}

// Audit configures the audit event sink.
type Audit struct {
	// Disabled turns audit events off. Default false.
	Disabled bool `yaml:"disabled" desc:"Turn audit events off. Default false."`
	// Output is stdout, stderr or a file path (appended). Default stdout.
	Output string `yaml:"output" desc:"stdout, stderr, or a file path to append to. Default stdout."`
}
