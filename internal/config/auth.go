package config

import "time"

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
	// Introspection makes the provider's opaque access tokens usable, by
	// token introspection (RFC 7662); see docs/introspection.md. nil: the
	// provider is not introspected.
	Introspection *ProviderIntrospection `yaml:"introspection" desc:"Token introspection (RFC 7662) at this provider, for opaque access tokens (the introspection method). Default: none."`
	// InsecureAllowHTTP permits http:// issuer and JWKS URLs. Only for
	// tests and local development: keys fetched over plain HTTP can be
	// replaced by anyone on the network path. Default false.
	InsecureAllowHTTP bool `yaml:"insecure_allow_http" desc:"Allow http:// issuer and JWKS URLs (local development only: keys could be tampered with in transit). Default false."`
	// TLS configures the discovery and JWKS fetches (see ProviderTLS).
	TLS *ProviderTLS `yaml:"tls" desc:"TLS of the discovery and JWKS fetches: a private CA, a client certificate, the minimum version (docs/authentication.md). Only for keys fetched over https. Default: the system roots."`
	// DPoP configures DPoP-bound tokens of this provider (RFC 9449). See
	// docs/dpop.md.
	DPoP DPoP `yaml:"dpop" desc:"DPoP-bound tokens (RFC 9449): whether the DPoP scheme is accepted or required for this provider's tokens, and how proofs are checked (docs/dpop.md). Default: off."`
	// CertificateBound is optional (a token carrying cnf.x5t#S256 must
	// match the client certificate; one without passes) or required (every
	// token must be bound to the client certificate, RFC 8705). Default
	// optional.
	CertificateBound string `yaml:"certificate_bound" enum:"optional,required" desc:"Certificate-bound tokens (RFC 8705): optional (a token with cnf.x5t#S256 is accepted only over a connection with that client certificate; one without passes) or required (every token must be bound to the connection's client certificate). Default optional."`
}

// DPoP configures DPoP proofs (RFC 9449) for one identity provider.
type DPoP struct {
	// Mode: off (only Bearer; a DPoP-bound token sent as Bearer is still
	// refused), allowed (Bearer and DPoP) or required (only DPoP). Default
	// off.
	Mode string `yaml:"mode" enum:"off,allowed,required" desc:"off: only the Bearer scheme (a DPoP-bound token, cnf.jkt, sent as Bearer is refused anyway); allowed: Bearer and DPoP; required: only DPoP-bound tokens with a valid proof. Default off."`
	// Algorithms a proof may be signed with. Default ES256 ES384 PS256
	// RS256 EdDSA. Asymmetric only.
	Algorithms []string `yaml:"algorithms" desc:"Algorithms a DPoP proof may be signed with (asymmetric only: ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA). Default ES256 ES384 PS256 RS256 EdDSA."`
	// MaxAge is how old a proof's iat may be. Default 60s.
	MaxAge Duration `yaml:"max_age" desc:"How old a proof's iat may be. Default 60s. With clock_skew, the window in which a captured proof could be replayed to another replica (the replay cache is per process)."`
	// ClockSkew is the leeway for iat. Default 30s.
	ClockSkew Duration `yaml:"clock_skew" desc:"Leeway for the proof's iat, both ways. Default 30s."`
	// Nonce turns server nonces on.
	Nonce *DPoPNonce `yaml:"nonce" desc:"Server nonces (RFC 9449 section 8): proofs must carry a nonce the gateway issued (DPoP-Nonce header). Default: off."`
}

// DPoPNonce configures stateless DPoP server nonces.
type DPoPNonce struct {
	// Secrets: the first signs new nonces, all are accepted (rotation).
	// Each at least 32 bytes; give them through ${ENV}.
	Secrets []string `yaml:"secrets" desc:"HMAC secrets of the nonces, each at least 32 bytes, through ${ENV}: the first makes new nonces, all are accepted (rotation). Every replica with the same secrets accepts the others' nonces. Required."`
	// Lifetime is the slot length; a nonce lives one to two of them.
	// Default 5m; at least 10s.
	Lifetime Duration `yaml:"lifetime" desc:"Nonce slot length: a nonce is accepted during its slot and the next. Default 5m; at least 10s."`
}

func (n *DPoPNonce) setDefaults() { n.Lifetime = Duration(DefaultDPoPNonceLifetime) }

// DPoPSettings are the process-wide DPoP settings.
type DPoPSettings struct {
	// ReplayCache remembers accepted proofs.
	ReplayCache DPoPReplayCache `yaml:"replay_cache" desc:"The cache of accepted DPoP proofs (one per process, shared by every provider and kept across reloads)."`
}

// DPoPReplayCache configures the replay cache of DPoP proofs.
type DPoPReplayCache struct {
	// Store is memory (one cache per process) or redis (one cache shared
	// by every replica through the redis block). Default memory.
	Store string `yaml:"store" enum:"memory,redis" desc:"Where accepted proofs are remembered: memory (per process: a proof captured in transit could be replayed once to each other replica within its window) or redis (shared by every replica through the redis block; Redis unreachable refuses DPoP requests with 503, never accepts an unchecked proof). Default memory."`
	// MaxEntries bounds the in-memory cache. Default 262144.
	MaxEntries int `yaml:"max_entries" desc:"Most proofs remembered, in memory (about 80 bytes each). When every entry is still inside its window, new proofs are refused with 503 (never forgotten early). Size it for the peak DPoP request rate times max_age plus twice clock_skew. Default 262144 (about 2,000 requests/s at the default window)."`
}

// ProviderIntrospection is how the gateway asks a provider whether a
// token is active (RFC 7662): where, as which client, and how long the
// answer is remembered. Every setting here is part of the key of the
// provider's introspection cache, so a reload that changes none of them
// keeps the cache warm.
type ProviderIntrospection struct {
	// Endpoint is the introspection URL. Default: introspection_endpoint
	// of the provider's discovery document (OpenID Connect discovery, then
	// RFC 8414 metadata), fetched on first use.
	Endpoint string `yaml:"endpoint" desc:"Introspection endpoint URL. Default: introspection_endpoint from the provider's discovery document (<issuer>/.well-known/openid-configuration, then RFC 8414 oauth-authorization-server), fetched on first use."`
	// ClientID is the gateway's client at the provider. Required.
	ClientID string `yaml:"client_id" desc:"The gateway's OAuth client id at the provider. Required."`
	// ClientAuth is how the gateway authenticates to the endpoint.
	ClientAuth string `yaml:"client_auth" enum:"client_secret_basic,client_secret_post,private_key_jwt" desc:"Client authentication at the endpoint: client_secret_basic, client_secret_post or private_key_jwt (RFC 7523, signed with private_key_file). Default client_secret_basic."`
	// ClientSecret for client_secret_basic and client_secret_post; give it
	// through ${ENV}.
	ClientSecret string `yaml:"client_secret" desc:"Client secret for client_secret_basic and client_secret_post; use ${ENV}, never inline."`
	// PrivateKeyFile signs private_key_jwt assertions: a PEM (PKCS#8,
	// PKCS#1 or SEC 1) or JWK private key, RSA, EC or Ed25519.
	PrivateKeyFile string `yaml:"private_key_file" desc:"Private key (PEM or JWK; RSA, EC P-256/384/521 or Ed25519) that signs private_key_jwt client assertions. Required for private_key_jwt."`
	// PrivateKeyID is the kid header of the assertions. Default: the JWK's
	// kid, else none.
	PrivateKeyID string `yaml:"private_key_id" desc:"kid header of private_key_jwt assertions. Default: the JWK's kid, else none."`
	// AssertionAudience is the aud of private_key_jwt assertions. Default:
	// the provider's issuer (RFC 7523 section 3: the authorization
	// server's identity).
	AssertionAudience string `yaml:"assertion_audience" desc:"aud of private_key_jwt assertions. Default: the provider's issuer (its identity, RFC 7523 section 3); some servers want the endpoint URL instead."`
	// ResponseFormat json (RFC 7662) or jwt (RFC 9701: a signed answer,
	// verified with the provider's signing keys). Default json.
	ResponseFormat string `yaml:"response_format" enum:"json,jwt" desc:"json: plain RFC 7662 answers; jwt: ask for signed answers (RFC 9701, application/token-introspection+jwt) and accept nothing else, verified with the provider's signing keys (discovery, jwks_uri or static_keys). Default json."`
	// Timeout bounds one introspection call. Default 3s.
	Timeout Duration `yaml:"timeout" desc:"Timeout of one introspection call (and of the discovery fetch); an expired call answers 503. Default 3s."`
	// CacheTTL is the longest an active answer is reused: a token revoked
	// at the provider is refused within this bound. Default 60s.
	CacheTTL Duration `yaml:"cache_ttl" desc:"Longest time an active answer is reused; never past the token's exp. A token revoked at the provider is refused within this bound. Default 60s; 0 disables caching of active answers."`
	// NegativeCacheTTL is how long an inactive (or refused) answer is
	// reused. Default 10s.
	NegativeCacheTTL Duration `yaml:"negative_cache_ttl" desc:"How long an inactive or refused answer is reused, so that a flood of one bad token costs one call. Default 10s; 0 disables."`
	// CacheSize bounds the cache: when full, the entry that expires soonest
	// is evicted. Default 10000.
	CacheSize int `yaml:"cache_size" desc:"Most cached answers; when full, the one expiring soonest is evicted. Default 10000."`
	// StaleIfError serves an active answer up to this long past its cache
	// expiry (never past the token's exp) while the provider is
	// unreachable. Default 0: fail closed at once.
	StaleIfError Duration `yaml:"stale_if_error" desc:"While the endpoint is unreachable, keep serving an active answer up to this long past its cache expiry (never past the token's exp). Default 0: fail closed (503) at once. A token revoked during an outage keeps working this much longer."`
	// MaxConcurrent bounds the calls in flight to the endpoint. Default 16.
	MaxConcurrent int `yaml:"max_concurrent" desc:"Most introspection calls in flight at once; more wait (within timeout) and then answer 503. Default 16."`
	// RateLimit bounds the calls per second to the endpoint. Default 100.
	RateLimit int `yaml:"rate_limit" desc:"Most introspection calls per second (burst of the same size); more wait (within timeout) and then answer 503. Default 100."`
}

func (p *ProviderIntrospection) setDefaults() {
	p.ClientAuth = "client_secret_basic"
	p.ResponseFormat = "json"
	p.Timeout = Duration(3 * time.Second)
	p.CacheTTL = Duration(60 * time.Second)
	p.NegativeCacheTTL = Duration(10 * time.Second)
	p.CacheSize = 10000
	p.MaxConcurrent = 16
	p.RateLimit = 100
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
