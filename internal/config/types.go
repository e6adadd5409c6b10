// Package config holds Gatehouse's declarative configuration: the typed
// structure, a strict YAML decoder that reports every problem with its
// file:line:column, ${ENV} substitution, defaults and validation.
//
// The struct tags drive three things at once, so they must stay together:
//   - yaml:"name"   the key in the file (the only accepted spelling);
//   - desc:"…"      the description written into the JSON Schema;
//   - enum:"a,b"    the accepted values of a string field (schema and validation).
//
// Defaults are set by the Default* functions before decoding, so a key that
// is absent keeps its default and a key that is present (even with a zero
// value such as "0s") overrides it.
package config

// Config is the whole gateway configuration, as written in gatehouse.yaml.
type Config struct {
	// Listeners are the proxy's front doors. Default: one plain-HTTP listener on ":8080".
	Listeners []Listener `yaml:"listeners" desc:"Front-door listeners that accept client traffic. Default: one HTTP listener on :8080."`
	// Admin is the operations listener (health, readiness, metrics, pprof and the admin API).
	Admin Admin `yaml:"admin" desc:"The admin listener: /healthz, /readyz, /metrics, the admin API and (opt-in) pprof. Loopback only by default."`
	// Metrics are the Prometheus metrics served on the admin listener.
	Metrics Metrics `yaml:"metrics" desc:"Prometheus metrics, served at GET /metrics on the admin listener (docs/observability.md)."`
	// Tracing is OpenTelemetry tracing, exported over OTLP/HTTP. Off by default.
	Tracing Tracing `yaml:"tracing" desc:"OpenTelemetry tracing: a span per request with child spans for authentication, authorization and the upstream call, exported over OTLP/HTTP (docs/observability.md). Off by default."`
	// Redis is the shared store of the replicas (rate limits, brute-force counters). Off when it has no addresses.
	Redis Redis `yaml:"redis" desc:"The Redis shared by the gateway's replicas for rate limits and brute-force counters (docs/rate-limits.md). Default: none."`
	// RateLimits are the named rate-limit policies and brute-force protection.
	RateLimits RateLimits `yaml:"rate_limits" desc:"Rate-limit policies that routes refer to (routes[].rate_limit), their store, and brute-force protection of authentication (docs/rate-limits.md). Default: none."`
	// Forwarding controls which peers may set X-Forwarded-* and Forwarded.
	Forwarding Forwarding `yaml:"forwarding" desc:"How the client address and forwarding headers are derived."`
	// AccessLog is the per-request log line.
	AccessLog AccessLog `yaml:"access_log" desc:"One structured JSON line per request."`
	// Log is the gateway's own operational log (start, reload, errors).
	Log Log `yaml:"log" desc:"The gateway's operational log (startup, reloads, errors)."`
	// Lifecycle controls shutdown draining and configuration reloads.
	Lifecycle Lifecycle `yaml:"lifecycle" desc:"Graceful shutdown and hot reload."`
	// IdentityProviders are the trusted issuers of JWT access tokens.
	IdentityProviders []IdentityProvider `yaml:"identity_providers" desc:"Trusted OIDC/JWT issuers; several may be configured (federation)."`
	// DPoP holds the process-wide DPoP settings (the replay cache).
	DPoP DPoPSettings `yaml:"dpop" desc:"Process-wide DPoP settings: the replay cache of proofs (docs/dpop.md). Per-provider settings are identity_providers[].dpop."`
	// IdentityHeaders are the defaults for every route.
	IdentityHeaders IdentityHeaders `yaml:"identity_headers" desc:"Headers that carry the caller's identity upstream (routes may override)."`
	// IdentityAssertion is the signed identity assertion sent upstream.
	IdentityAssertion *IdentityAssertion `yaml:"identity_assertion" desc:"A signed identity assertion for backends: a short-lived JWT, signed with the gateway's own key and published at a JWKS endpoint, that carries the caller's identity upstream (docs/identity-assertion.md). Default none."`
	// APIKeys configures API-key authentication and its store.
	APIKeys APIKeys `yaml:"api_keys" desc:"API keys: store, key format and where keys are read from requests."`
	// Revocation is the list of revoked tokens, kept in the key store.
	Revocation Revocation `yaml:"revocation" desc:"The revocation list: tokens revoked by jti, hash, subject, client or issuer and subject, checked on every authenticated request (docs/revocation.md). Off by default."`
	// SharedSignals receives CAEP/SSF security events from transmitters.
	SharedSignals SharedSignals `yaml:"shared_signals" desc:"The Shared Signals (SSF/CAEP) receiver: transmitters push security events that revoke a subject's tokens (docs/revocation.md). Off without transmitters."`
	// LeakReports is the endpoint secret scanners report leaked API keys to.
	LeakReports LeakReports `yaml:"leak_reports" desc:"The endpoint that secret scanners report leaked API keys to; reported keys are revoked at once (docs/revocation.md). Off without a path."`
	// DecisionAPI is the forward-auth endpoint other proxies ask. Off when absent.
	DecisionAPI *DecisionAPI `yaml:"decision_api" desc:"The decision (forward-auth) API that nginx auth_request, Traefik ForwardAuth, Caddy forward_auth and Envoy ext_authz ask whether a request may pass: the same route match, authentication, authorization, limits and audit as the proxy path, answered 200 with the identity headers or with the refusal (docs/forward-auth.md). Off when absent."`
	// Policies are named authorization policies that routes refer to.
	Policies map[string]Policy `yaml:"policies" desc:"Named authorization policies, shared by routes (routes[].policy)."`
	// RequestHygiene is what every request must look like before it is routed.
	RequestHygiene RequestHygiene `yaml:"request_hygiene" desc:"Checks every request passes before routing: path encoding, methods, ambiguous headers (docs/request-hygiene.md). Strict by default."`
	// Audit is where authentication decisions are recorded.
	Audit Audit `yaml:"audit" desc:"Audit events: one per authentication decision."`
	// ProtectedResourceMetadata holds the RFC 9728 documents' defaults.
	ProtectedResourceMetadata *ProtectedResourceMetadata `yaml:"protected_resource_metadata" desc:"Defaults shared by the RFC 9728 metadata documents of routes with protected_resource (docs/endpoints.md). Turns nothing on by itself."`
	// Routes map requests to upstreams. Order matters only for ties (see docs/routing.md).
	Routes []Route `yaml:"routes" desc:"Routes, matched by host, path and method; the most specific wins, ties go to the first declared."`
}

// Listener is one front-door socket.
type Listener struct {
	// Name identifies the listener in logs. Default: the address.
	Name string `yaml:"name" desc:"Name used in logs. Default: the address."`
	// Address is host:port. Default ":8080".
	Address string `yaml:"address" desc:"host:port to listen on, e.g. \":8080\" or \"127.0.0.1:8443\"."`
	// TLS, when set, makes this an HTTPS listener (TLS 1.2+, HTTP/2 enabled).
	TLS *TLS `yaml:"tls" desc:"Serve HTTPS (TLS 1.2 or later, HTTP/2 via ALPN). Omit for plain HTTP."`
	// Timeouts bound slow clients; see ListenerTimeouts.
	Timeouts ListenerTimeouts `yaml:"timeouts" desc:"Timeouts that protect against slow or idle clients."`
	// MaxHeaderBytes caps the size of request headers. Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes" desc:"Maximum size of the request line and headers. Default 64KiB."`
	// ForwardedClientCertificates, when set, reads the client certificate
	// from a header written by a TLS-terminating proxy in
	// forwarding.trusted_proxies, and verifies it. Default: none.
	ForwardedClientCertificates *ForwardedClientCertificates `yaml:"forwarded_client_certificates" desc:"Read the client certificate from a header set by a TLS-terminating load balancer (Envoy X-Forwarded-Client-Cert, or URL-encoded PEM as nginx and AWS ALB send), only on requests whose TCP peer is in forwarding.trusted_proxies, and verify it like a direct TLS client certificate; routes that need one list the mtls method (docs/mtls.md). The header is removed from every request. Default: none."`
}

// TLS configures an HTTPS listener. Certificates are re-read on reload.
type TLS struct {
	// CertFile is a PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file" desc:"PEM certificate chain, leaf first. Re-read on reload."`
	// KeyFile is the PEM private key matching CertFile.
	KeyFile string `yaml:"key_file" desc:"PEM private key for cert_file. Re-read on reload."`
	// MinVersion is the lowest TLS version accepted. Default "1.2".
	MinVersion string `yaml:"min_version" enum:"1.2,1.3" desc:"Lowest TLS version accepted. Default 1.2."`
	// ClientCertificates, when set, asks clients for a certificate
	// (mutual TLS). Routes that need one list the mtls method.
	ClientCertificates *ClientCertificates `yaml:"client_certificates" desc:"Ask clients for a TLS client certificate (mutual TLS) and verify it once per connection; routes that need one list the mtls method (docs/mtls.md). Omit for no client certificates."`
}

// ClientCertificates configures the client-certificate request of an HTTPS
// listener. The CA and CRL files are re-read from the same paths on reload,
// without dropping connections; the keys take effect after a restart.
type ClientCertificates struct {
	// CAFiles are PEM bundles of the trust anchors (and optional
	// intermediates). Required.
	CAFiles []string `yaml:"ca_files" desc:"PEM files of the CA certificates that issue client certificates: self-signed ones are the trust anchors, others are intermediates (used to build chains and to check the CRLs they sign, never anchors). Required. Re-read on reload."`
	// CRLFiles are revocation lists, checked for every certificate of the chain.
	CRLFiles []string `yaml:"crl_files" desc:"CRL files (PEM or DER), each signed by a certificate of ca_files, checked for every certificate of the chain. A CRL past its next update refuses the certificates it covers (cert_untrusted: revocation status unknown). Default: none. Re-read on reload."`
	// Mode is request (verify if presented) or require. Default request.
	Mode string `yaml:"mode" enum:"request,require" desc:"request: ask for a certificate, verify it if presented, and let every request through to its route (mtls routes refuse a missing or bad certificate with 401 and an audit event). require: fail the TLS handshake without a valid certificate (logged, no HTTP response). Default request."`
	// MinRSABits is the smallest RSA key accepted in the chain. Default 2048.
	MinRSABits int `yaml:"min_rsa_bits" desc:"Smallest RSA key accepted anywhere in the chain (cert_untrusted otherwise). Default 2048; at least 2048."`
	// MinECBits is the smallest elliptic-curve key accepted. Default 256.
	MinECBits int `yaml:"min_ec_bits" desc:"Smallest elliptic-curve key accepted anywhere in the chain, in bits of the curve (P-256 is 256). Default 256; at least 256."`
	// SignatureAlgorithms are the certificate signature algorithms accepted.
	SignatureAlgorithms []string `yaml:"signature_algorithms" desc:"Signature algorithms accepted on the chain's certificates (the anchor's self-signature excepted), as Go names them: SHA256-RSA, SHA384-RSA, SHA512-RSA, SHA256-RSAPSS, SHA384-RSAPSS, SHA512-RSAPSS, ECDSA-SHA256, ECDSA-SHA384, ECDSA-SHA512, Ed25519. Default: all of these (MD5 and SHA-1 are never accepted)."`
}

// ForwardedClientCertificates configures client certificates forwarded by
// a TLS terminator in front of the listener. The certificate is verified
// again, per request, with this block's CAs, CRLs and key rules and the
// gateway's clock: the terminator is trusted to say which certificate the
// client presented, not to have checked it the gateway's way. The CA and
// CRL files are re-read on reload.
type ForwardedClientCertificates struct {
	// Header is the request header the proxy writes the certificate in.
	// Default X-Forwarded-Client-Cert.
	Header string `yaml:"header" desc:"Request header holding the forwarded certificate: X-Forwarded-Client-Cert (Envoy), or e.g. X-SSL-Client-Cert (nginx proxy_set_header with $ssl_client_escaped_cert), X-Amzn-Mtls-Clientcert (AWS ALB). Removed from every request, whoever sends it. Default X-Forwarded-Client-Cert."`
	// Format is xfcc (Envoy) or pem (URL-encoded PEM). Default xfcc.
	Format string `yaml:"format" enum:"xfcc,pem" desc:"xfcc: Envoy's X-Forwarded-Client-Cert; the last element (the nearest proxy's) is used and must carry Cert. pem: a URL-encoded PEM certificate, optionally followed by its intermediates (nginx $ssl_client_escaped_cert, AWS ALB X-Amzn-Mtls-Clientcert). Default xfcc."`
	// CAFiles are PEM bundles of the trust anchors (and optional
	// intermediates). Required.
	CAFiles []string `yaml:"ca_files" desc:"PEM files of the CA certificates that issue client certificates, as in tls.client_certificates. Required. Re-read on reload."`
	// CRLFiles are revocation lists, checked for every certificate of the chain.
	CRLFiles []string `yaml:"crl_files" desc:"CRL files (PEM or DER), each signed by a certificate of ca_files, checked for every certificate of the chain, as in tls.client_certificates. Default: none. Re-read on reload."`
	// MinRSABits is the smallest RSA key accepted in the chain. Default 2048.
	MinRSABits int `yaml:"min_rsa_bits" desc:"Smallest RSA key accepted anywhere in the chain. Default 2048; at least 2048."`
	// MinECBits is the smallest elliptic-curve key accepted. Default 256.
	MinECBits int `yaml:"min_ec_bits" desc:"Smallest elliptic-curve key accepted anywhere in the chain. Default 256; at least 256."`
	// SignatureAlgorithms are the certificate signature algorithms accepted.
	SignatureAlgorithms []string `yaml:"signature_algorithms" desc:"Signature algorithms accepted on the chain's certificates, as in tls.client_certificates. Default: all of SHA256-RSA, SHA384-RSA, SHA512-RSA, SHA256-RSAPSS, SHA384-RSAPSS, SHA512-RSAPSS, ECDSA-SHA256, ECDSA-SHA384, ECDSA-SHA512, Ed25519."`
}

// ListenerTimeouts are the http.Server timeouts of a listener.
type ListenerTimeouts struct {
	// ReadHeader bounds reading the request line and headers (slowloris). Default 10s.
	ReadHeader Duration `yaml:"read_header" desc:"Time allowed to read request headers. Default 10s."`
	// Read bounds reading the whole request, body included. Default 60s; 0 disables.
	Read Duration `yaml:"read" desc:"Time allowed to read the whole request including the body. Default 60s; 0 disables."`
	// Write bounds writing a response for requests that match no route.
	// Matched requests get a per-route write deadline derived from the route's
	// upstream request timeout, so streaming routes (timeout 0) are not cut. Default 60s.
	Write Duration `yaml:"write" desc:"Write deadline for responses Gatehouse produces itself; routed requests use their route's upstream request timeout instead. Default 60s."`
	// Idle bounds how long a keep-alive connection may wait for its next request. Default 120s.
	Idle Duration `yaml:"idle" desc:"How long an idle keep-alive connection is kept. Default 120s."`
}

// Admin is the operations listener.
type Admin struct {
	// Address is host:port. Default "127.0.0.1:9901". Exposing it beyond
	// loopback shows readiness details to the network.
	Address string `yaml:"address" desc:"host:port of the admin listener. Default 127.0.0.1:9901 (loopback only)."`
	// TokenHash is "sha256:<hex>" of the admin API token (see `gatehouse
	// admin-token`). Only the hash is configured; the token never is.
	TokenHash string `yaml:"token_hash" desc:"sha256:<hex> of the admin API token (gatehouse admin-token prints a token and its hash). Default: a token generated at start and written to token_file."`
	// TokenFile receives a token generated at start when token_hash is not
	// set (mode 0600), for the CLI on the same machine. Empty with no
	// token_hash disables the admin API. Default gatehouse-admin.token.
	TokenFile string `yaml:"token_file" desc:"Where a token generated at start is written (mode 0600) when token_hash is unset; the CLI reads it. Empty with no token_hash disables the admin API. Default gatehouse-admin.token."`
	// Disabled turns the admin listener off. Default false.
	Disabled bool `yaml:"disabled" desc:"Turn the admin listener off. Default false."`
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the admin listener, behind the admin token. Default
	// false. Security: profiles reveal internals (goroutine stacks, the
	// command line) and a CPU profile or trace costs CPU while it runs;
	// needs token_hash or token_file.
	Pprof bool `yaml:"pprof" desc:"Serve Go runtime profiles (net/http/pprof) under /debug/pprof/ on the admin listener, behind the admin token (Authorization: Bearer). Needs token_hash or token_file. Default false. Security: profiles show goroutine stacks and the command line, and a CPU profile or trace costs CPU while it runs."`
}

// Metrics configures the Prometheus metrics.
type Metrics struct {
	// Enabled collects metrics and serves them at GET /metrics on the
	// admin listener. Default true: the cost per request is a few atomic
	// additions (see docs/observability.md). Labels never hold request
	// data (paths, tokens, subjects).
	Enabled bool `yaml:"enabled" desc:"Collect Prometheus metrics and serve them at GET /metrics on the admin listener. Default true (a few atomic additions per request). Labels are route names, method and status classes, outcomes and reason codes, never paths, tokens or subjects."`
	// RequireToken makes GET /metrics ask for the admin token, like the
	// admin API. Default false: scrapers on the admin network read it
	// freely. Security: metrics show route names, provider names, traffic
	// and error rates; turn this on if the admin listener is reachable by
	// more than your monitoring.
	RequireToken bool `yaml:"require_token" desc:"Require the admin token (Authorization: Bearer) on GET /metrics. Needs admin.token_hash or admin.token_file. Default false. Security: metrics reveal route and provider names and traffic and error rates to whoever reaches the admin listener."`
}

// Tracing configures OpenTelemetry tracing. The gateway owns one tracer
// provider for its whole life: a reload that changes these settings is
// reported and takes effect after a restart.
type Tracing struct {
	// Enabled records spans and exports them. Default false: no tracer
	// exists and requests do no tracing work at all.
	Enabled bool `yaml:"enabled" desc:"Record a span per request (with child spans for authentication, authorization and the upstream call) and export them over OTLP/HTTP. Default false: no tracing work at all. Changing tracing settings takes effect after a restart."`
	// Endpoint is the collector's OTLP/HTTP URL. A URL without a path gets
	// /v1/traces. Required when enabled.
	Endpoint string `yaml:"endpoint" desc:"The collector's OTLP/HTTP URL, e.g. https://otel-collector:4318 (a URL without a path gets /v1/traces). Required when enabled. https unless insecure is set."`
	// Insecure allows an http:// endpoint. Default false. Security: spans
	// (route names, paths, decisions) and the headers below cross the
	// network in clear text.
	Insecure bool `yaml:"insecure" desc:"Allow an http:// (plain-text) endpoint. Default false. Security: spans (routes, paths, authentication reasons) and the collector headers travel unencrypted."`
	// Headers are sent with every export, for the collector's own
	// authentication; write secrets as ${ENV}. They are never logged.
	Headers map[string]string `yaml:"headers" desc:"HTTP headers sent with every export (collector authentication, e.g. Authorization: Bearer ${OTEL_TOKEN}). Write secrets as ${ENV}. Default none. Never logged."`
	// SamplingRatio is the share of new traces recorded (0 to 1), parent-
	// based: a trace continued from a trusted proxy keeps that proxy's
	// decision. Default 1 (every request); lower it under load.
	SamplingRatio float64 `yaml:"sampling_ratio" desc:"Share of new traces that are recorded, 0 to 1; parent-based: a trace continued from a trusted proxy keeps its sampled flag. Default 1 (every request); lower it (e.g. 0.01) at high request rates."`
	// ServiceName is the service.name resource attribute. Default "gatehouse".
	ServiceName string `yaml:"service_name" desc:"The service.name resource attribute of every span. Default gatehouse."`
	// Timeout bounds one export and the flush at shutdown. Default 10s.
	Timeout Duration `yaml:"timeout" desc:"Bound on one export to the collector, and on the flush of pending spans at shutdown. Default 10s."`
}

// Forwarding configures trust in forwarding headers.
type Forwarding struct {
	// TrustedProxies lists the IPs and CIDRs of proxies in front of Gatehouse.
	// Only when the TCP peer is one of them are X-Forwarded-For, -Proto, -Host
	// and Forwarded from the request believed. Default: none (never trusted).
	TrustedProxies []string `yaml:"trusted_proxies" desc:"IPs or CIDRs of proxies in front of Gatehouse whose forwarding headers are believed. Default: none."`
}

// AccessLog configures the per-request log.
type AccessLog struct {
	// Disabled turns the access log off. Default false.
	Disabled bool `yaml:"disabled" desc:"Turn the access log off. Default false."`
	// Output is "stdout", "stderr" or a file path (appended). Default "stdout".
	Output string `yaml:"output" desc:"stdout, stderr, or a file path to append to. Default stdout."`
	// RedactQueryParams are query parameter names whose values are replaced
	// by "REDACTED" in the logged query, in addition to the built-in list
	// (access_token, api_key, apikey, key, token, id_token, refresh_token,
	// code, client_secret, password, secret, signature, sig, pass, pwd,
	// session, sid, phpsessid, and names ending with token, secret,
	// password, signature, assertion, apikey and the like: see
	// docs/operations.md).
	RedactQueryParams []string `yaml:"redact_query_params" desc:"Extra query parameter names whose values are never logged (added to a built-in list of credential names)."`
}

// Log configures the operational log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level" enum:"debug,info,warn,error" desc:"Minimum level. Default info."`
	// Format is json or text. Default json.
	Format string `yaml:"format" enum:"json,text" desc:"Output format. Default json."`
}

// Lifecycle configures shutdown and reload.
type Lifecycle struct {
	// DrainTimeout is how long in-flight requests may run after SIGTERM/SIGINT. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout" desc:"How long in-flight requests may finish after SIGTERM or SIGINT. Default 30s."`
	// WatchConfig reloads the configuration when its file changes. Default true.
	WatchConfig *bool `yaml:"watch_config" desc:"Reload when the config file changes (SIGHUP always reloads). Default true."`
}

// Route maps matching requests to an upstream.
type Route struct {
	// Name is unique and appears in logs and audit events. Required.
	Name string `yaml:"name" desc:"Unique route name, used in logs. Required."`
	// Match selects the requests this route handles.
	Match Match `yaml:"match" desc:"Which requests this route handles. Required."`
	// Upstream is where matched requests are proxied.
	Upstream Upstream `yaml:"upstream" desc:"Where matched requests go. Required, unless direct_response is set (exactly one of the two)."`
	// DirectResponse makes the gateway answer the route itself
	// (docs/endpoints.md); no upstream then.
	DirectResponse *DirectResponse `yaml:"direct_response" desc:"Answer this route's requests from the gateway with a fixed response (health page, maintenance notice, 410) instead of proxying; authentication and policy still run. Set either upstream or direct_response."`
	// ProtectedResource serves this route's RFC 9728 metadata document
	// and names it in its 401 challenges (docs/endpoints.md). Default none.
	ProtectedResource *ProtectedResource `yaml:"protected_resource" desc:"Describe this route as an OAuth 2.0 protected resource (RFC 9728): the gateway serves its metadata document, without authentication, at /.well-known/oauth-protected-resource plus the resource's path, and its 401 challenges carry resource_metadata. Default none."`
	// Public routes need no authentication. Routes are authenticated by
	// default: a route must either set authenticate or say public: true.
	Public bool `yaml:"public" desc:"No authentication on this route. Every route must set either public: true or authenticate."`
	// Authenticate lists the credentials this route accepts.
	Authenticate *Authenticate `yaml:"authenticate" desc:"The credentials this route accepts."`
	// Policy names a policy from the top-level policies.
	Policy string `yaml:"policy" desc:"Name of a policy under policies; alternative to an inline authorize block."`
	// Authorize is this route's own policy.
	Authorize *Policy `yaml:"authorize" desc:"This route's authorization policy (scopes, roles, groups, claims, per-method rules, CEL)."`
	// Tags group routes, e.g. for API keys restricted to route tags.
	Tags []string `yaml:"tags" desc:"Route tags; API keys may be restricted to route names or tags."`
	// AllowEncodedSlash lets this route's paths contain %2F and %5C. Default false.
	AllowEncodedSlash bool `yaml:"allow_encoded_slash" desc:"Accept %2F and %5C (an encoded / or \\) in this route's paths; otherwise 400. The route is still chosen on the decoded path. Only for backends that treat such a segment as data: one that decodes it and then splits or normalizes the path serves a different path than the one authorized. Default false."`
	// AllowPathParams lets this route's paths contain ';' (matrix or path
	// parameters, ;jsessionid=). Default false.
	AllowPathParams bool `yaml:"allow_path_params" desc:"Accept ; in this route's paths (path parameters such as ;jsessionid=); otherwise 400. Servlet containers and some frameworks strip /a;x/ to /a/, so /public;x/../admin can mean a path other than the one routed. Default false."`
	// MethodOverride makes X-HTTP-Method-Override (and X-HTTP-Method,
	// X-Method-Override) on a POST the method that is routed, authorized
	// and sent upstream. Default false: the headers are removed.
	MethodOverride bool `yaml:"method_override" desc:"Honour X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override on a POST to this route: the overriding method is the one matched, authorized and sent upstream (the header is removed). Default false: the headers are removed from every request, so a backend cannot run a DELETE that was authorized as a POST."`
	// IdentityHeaders overrides the top-level identity_headers for this route.
	IdentityHeaders *IdentityHeaders `yaml:"identity_headers" desc:"Override the top-level identity_headers for this route."`
	// IdentityAssertion turns the signed identity assertion on or off for
	// this route and names its audience.
	IdentityAssertion *RouteAssertion `yaml:"identity_assertion" desc:"Send a signed identity assertion upstream on this route (needs the top-level identity_assertion), with its audience (docs/identity-assertion.md). Default: identity_assertion.all_routes."`
	// RateLimit names the route's rate-limit policy (rate_limits.policies).
	RateLimit string `yaml:"rate_limit" desc:"Name of a policy under rate_limits.policies that limits this route's callers (429 past it), checked after authorization. Default none."`
	// MaxInFlight bounds the requests in flight to the upstream.
	MaxInFlight int `yaml:"max_in_flight" desc:"Most requests of this route in flight to the upstream at once, in each replica; past it 503 with Retry-After (never queued). Default 0: no bound."`
	// MaxBodyBytes caps request bodies; larger ones get 413. Default 10MiB; 0 means no limit.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes" desc:"Largest request body accepted; larger gets 413. Default 10MiB; 0 means no limit."`
	// WebSocket lets WebSocket upgrades (GET with "Upgrade: websocket")
	// through to the upstream once the handshake request has passed
	// authentication and authorization. Default false: every upgrade
	// request (WebSocket, h2c or any other protocol) is forwarded as an
	// ordinary request with its Upgrade header removed, and an upstream's
	// 101 answer is refused with 502. Security: after the switch the
	// gateway sees no more requests on that connection, so enable it only
	// on routes whose upstream speaks WebSocket.
	WebSocket bool `yaml:"websocket" desc:"Allow WebSocket upgrades (Upgrade: websocket on a GET) to this route's upstream. Default false: upgrades of any protocol are stripped and never tunnelled; after a switch the gateway sees no further requests on the connection."`
	// DecisionOnly makes the route exist only for the decision API: no
	// upstream, and 404 on the proxy listeners. Default false.
	DecisionOnly bool `yaml:"decision_only" desc:"The route is decided by the decision API only (decision_api; docs/forward-auth.md): it has no upstream (leave upstream out), and requests reaching it on the proxy path are answered 404 before authentication. Default false."`
	// CORS is this route's cross-origin policy (docs/cors.md). Default
	// none: no CORS headers, preflights are routed like any OPTIONS request.
	CORS *CORS `yaml:"cors" desc:"Cross-origin resource sharing for browsers: the gateway answers preflights itself (without authentication, never forwarded) and sets Access-Control-* headers on every answer, replacing the upstream's. Default none: no CORS headers; a preflight is an ordinary OPTIONS request (authenticated like any other)."`
}

// Match selects requests. All given conditions must hold.
type Match struct {
	// Hosts are exact host names or "*.example.com" wildcards (one or more
	// labels). Empty: any host. Ports in the Host header are ignored.
	Hosts []string `yaml:"hosts" desc:"Exact hosts or *.suffix wildcards; empty matches any host."`
	// Path matches the whole path exactly; {name} matches one segment.
	Path string `yaml:"path" desc:"Exact path, {name} matches one segment. Set path or path_prefix."`
	// PathPrefix matches the path and everything below it, on segment boundaries.
	PathPrefix string `yaml:"path_prefix" desc:"Path prefix on segment boundaries ({name} matches one segment). Set path or path_prefix."`
	// Methods restricts HTTP methods; empty: any. A path match with the wrong method gets 405.
	Methods []string `yaml:"methods" desc:"Allowed HTTP methods; empty allows any. Wrong method on a matching path gives 405."`
}

// Upstream is a set of equivalent backends.
type Upstream struct {
	// Targets are base URLs (http or https), used round-robin; their path is
	// prepended to the request path. "builtin:echo" is the demo echo backend.
	Targets []string `yaml:"targets" desc:"Backend base URLs, used round-robin. builtin:echo is the demo backend that echoes the request it received. Required."`
	// StripPrefix removes this prefix from the request path before forwarding.
	StripPrefix string `yaml:"strip_prefix" desc:"Remove this literal prefix from the path before forwarding."`
	// AddPrefix is prepended to the (stripped) path before forwarding.
	AddPrefix string `yaml:"add_prefix" desc:"Prepend this prefix to the path (after strip_prefix)."`
	// PreserveHost sends the client's Host header upstream instead of the target's. Default false.
	PreserveHost bool `yaml:"preserve_host" desc:"Send the client's Host header instead of the target's. Default false."`
	// Timeouts bound the upstream exchange.
	Timeouts UpstreamTimeouts `yaml:"timeouts" desc:"Upstream timeouts; a timeout gives 504."`
	// TLS configures the connections to https targets (see UpstreamTLS).
	TLS *UpstreamTLS `yaml:"tls" desc:"TLS to https targets: a private CA, a client certificate (mutual TLS), the server name, the minimum version (docs/mtls.md). Only with https targets. Default: the system roots, no client certificate."`
}

// UpstreamTimeouts bound the exchange with a backend. A timeout answers 504.
type UpstreamTimeouts struct {
	// Dial bounds establishing the TCP (and TLS) connection. Default 5s.
	Dial Duration `yaml:"dial" desc:"Time to connect to a target. Default 5s."`
	// ResponseHeader bounds the wait for response headers after the request was sent. Default 30s.
	ResponseHeader Duration `yaml:"response_header" desc:"Time to wait for response headers. Default 30s."`
	// Request bounds the whole exchange including the response body. Default 60s.
	// Set 0 for streaming (SSE) and WebSocket routes, which must outlive it.
	Request Duration `yaml:"request" desc:"Time for the whole exchange, body included. Default 60s; 0 disables (SSE, WebSocket)."`
}
