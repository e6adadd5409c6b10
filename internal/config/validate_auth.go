package config

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// asymmetricAlgorithms are accepted by default; symmetric ones must be
// listed explicitly (RFC 8725 §3.1: a verifier must not let the token pick).
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// HMACAlgorithms need a shared secret.
var HMACAlgorithms = []string{"HS256", "HS384", "HS512"}

// DefaultAlgorithms returns the algorithms accepted when none are listed.
func DefaultAlgorithms() []string { return slices.Clone(asymmetricAlgorithms) }

func validateAuth(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }

	providers := map[string]bool{}
	issuers := map[string]string{}
	for i, p := range c.IdentityProviders {
		path := fmt.Sprintf("identity_providers[%d]", i)
		switch {
		case p.Name == "":
			add(path+".name", "required")
		case !nameRE.MatchString(p.Name):
			add(path+".name", "%q: use letters, digits, '.', '_' and '-'", p.Name)
		case providers[p.Name]:
			add(path+".name", "duplicate provider name %q", p.Name)
		}
		providers[p.Name] = true
		if p.Issuer == "" {
			add(path+".issuer", "required")
		} else {
			if err := checkProviderURL(p.Issuer, p.InsecureAllowHTTP); err != nil {
				add(path+".issuer", "%v", err)
			}
			if other, dup := issuers[p.Issuer]; dup {
				// The token's iss selects the provider: two providers with
				// one issuer would make the choice ambiguous.
				add(path+".issuer", "issuer %q is already used by provider %q", p.Issuer, other)
			}
			issuers[p.Issuer] = p.Name
		}
		if len(p.Audiences) == 0 {
			add(path+".audiences", "at least one audience is required: without it a token minted for another service would be accepted")
		}
		if p.JWKSURI != "" {
			if err := checkProviderURL(p.JWKSURI, p.InsecureAllowHTTP); err != nil {
				add(path+".jwks_uri", "%v", err)
			}
			if p.StaticKeys != nil {
				add(path+".static_keys", "set either jwks_uri or static_keys, not both")
			}
		}
		hasHMACSecret := p.StaticKeys != nil && p.StaticKeys.HMACSecret != ""
		if p.StaticKeys != nil && len(p.StaticKeys.Files) == 0 && !hasHMACSecret {
			add(path+".static_keys", "give files or hmac_secret")
		}
		if hasHMACSecret && len(p.StaticKeys.HMACSecret) < 32 {
			add(path+".static_keys.hmac_secret", "must be at least 32 bytes (256 bits)")
		}
		listsHMAC := false
		for j, alg := range p.Algorithms {
			ap := fmt.Sprintf("%s.algorithms[%d]", path, j)
			switch {
			case strings.EqualFold(alg, "none"):
				add(ap, `"none" is never accepted: unsigned tokens prove nothing`)
			case slices.Contains(HMACAlgorithms, alg):
				listsHMAC = true
				need := map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[alg]
				if !hasHMACSecret {
					add(ap, "%s needs static_keys.hmac_secret", alg)
				} else if len(p.StaticKeys.HMACSecret) < need {
					// RFC 7518 §3.2: the key must be at least as long as the hash.
					add(ap, "%s needs an hmac_secret of at least %d bytes", alg, need)
				}
			case !slices.Contains(asymmetricAlgorithms, alg):
				add(ap, "%q is not a supported algorithm (%s, %s)", alg, strings.Join(asymmetricAlgorithms, " "), strings.Join(HMACAlgorithms, " "))
			}
		}
		if hasHMACSecret && !listsHMAC {
			add(path+".algorithms", "list HS256, HS384 or HS512 to use the hmac_secret (symmetric algorithms are never enabled implicitly)")
		}
		for j, sc := range p.Claims.Scopes {
			if sc == "" {
				add(fmt.Sprintf("%s.claims.scopes[%d]", path, j), "empty claim path")
			}
		}
		if p.MaxTokenSize < 1024 {
			add(path+".max_token_size", "must be at least 1KiB")
		}
		errs = append(errs, validateIntrospection(p, path+".introspection", f)...)
		errs = append(errs, validateDPoP(p.DPoP, path+".dpop", f)...)
		k := p.Keys
		if k.MinRefreshInterval > k.MaxRefreshInterval {
			add(path+".keys.min_refresh_interval", "must not exceed max_refresh_interval")
		}
		for _, d := range []struct {
			key string
			val Duration
		}{{"refresh_interval", k.RefreshInterval}, {"min_refresh_interval", k.MinRefreshInterval},
			{"max_refresh_interval", k.MaxRefreshInterval}, {"unknown_kid_interval", k.UnknownKIDInterval},
			{"max_stale", k.MaxStale}, {"fetch_timeout", k.FetchTimeout}} {
			if d.val == 0 {
				add(path+".keys."+d.key, "must be greater than 0")
			}
		}
		// Keys older than max_stale are refused: if the set waits longer
		// than that between refreshes, a healthy provider's keys go stale
		// between two fetches and its tokens get 503.
		switch {
		case k.MaxStale == 0:
		case k.MaxStale < k.RefreshInterval:
			add(path+".keys.max_stale", "%s is shorter than refresh_interval %s: keys would be refused as stale between two scheduled refreshes; raise max_stale or lower refresh_interval", k.MaxStale, k.RefreshInterval)
		case k.MaxStale < k.MinRefreshInterval:
			add(path+".keys.max_stale", "%s is shorter than min_refresh_interval %s: keys would be refused as stale between two refreshes; raise max_stale or lower min_refresh_interval", k.MaxStale, k.MinRefreshInterval)
		}
	}

	if c.DPoP.ReplayCache.MaxEntries < 1024 {
		add("dpop.replay_cache.max_entries", "must be at least 1024")
	}
	if c.DPoP.ReplayCache.Store == "redis" && !c.Redis.Enabled() {
		add("dpop.replay_cache.store", "redis needs the redis block (redis.addresses)")
	}
	errs = append(errs, validateIdentityHeaders(c.IdentityHeaders, "identity_headers", f)...)
	errs = append(errs, validateAPIKeys(c.APIKeys, f)...)
	errs = append(errs, validateRevocation(c, f)...)
	errs = append(errs, validateSignals(c, f)...)
	errs = append(errs, validateAssertion(c, f)...)
	errs = append(errs, validateAuthz(c, f)...)
	if c.Audit.Output == "" {
		add("audit.output", "must be stdout, stderr or a file path")
	}

	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Public && r.Authenticate != nil:
			add(path+".public", "a public route cannot also set authenticate")
		case !r.Public && r.Authenticate == nil:
			add(path, "route %q has no authentication: add authenticate, or set public: true (routes are authenticated by default)", r.Name)
		case r.Authenticate != nil:
			a := r.Authenticate
			ap := path + ".authenticate"
			if len(a.Methods) == 0 {
				add(ap+".methods", "at least one method is required")
			}
			seen := map[string]bool{}
			for j, m := range a.Methods {
				if !KnownMethod(m) {
					add(fmt.Sprintf("%s.methods[%d]", ap, j), "%q is not a known method (%s)", m, strings.Join(MethodNames(), ", "))
				}
				if seen[m] {
					add(fmt.Sprintf("%s.methods[%d]", ap, j), "%q listed twice", m)
				}
				seen[m] = true
			}
			if seen["jwt"] && len(c.IdentityProviders) == 0 {
				add(ap+".methods", "jwt needs at least one identity_providers entry")
			}
			for j, p := range a.Providers {
				if !providers[p] {
					add(fmt.Sprintf("%s.providers[%d]", ap, j), "unknown identity provider %q", p)
				}
			}
			if a.APIKeyQueryParam != "" && !seen["api_key"] {
				add(ap+".api_key_query_param", "applies to the api_key method, which is not listed")
			}
			if len(a.Providers) > 0 && !slices.ContainsFunc(a.Methods, readsProviders) {
				add(ap+".providers", "providers applies to the jwt method, which is not listed")
			}
			switch {
			case a.Primary == "":
			case !a.RequireAll:
				add(ap+".primary", "applies to require_all chains only (with any one method, the one that succeeds is the identity)")
			case !seen[a.Primary]:
				add(ap+".primary", "%q is not one of the route's methods", a.Primary)
			}
			errs = append(errs, validateMethods(c, f, i, &c.Routes[i])...)
			if a.RequireAll && a.AllowAnonymous {
				add(ap+".allow_anonymous", "cannot be combined with require_all")
			}
			if strings.ContainsAny(a.Realm, "\"\\\r\n") {
				add(ap+".realm", "must not contain quotes, backslashes or line breaks")
			}
		}
		if r.IdentityHeaders != nil {
			errs = append(errs, validateIdentityHeaders(*r.IdentityHeaders, path+".identity_headers", f)...)
		}
	}
	return errs
}

// reservedHeaders cannot carry identity: they are hop-by-hop, framing or
// already set by the gateway.
var reservedHeaders = []string{"Authorization", "Connection", "Content-Length", "Content-Type", "Cookie", "Forwarded",
	"Host", "Keep-Alive", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id"}

func validateIdentityHeaders(h IdentityHeaders, path string, f *File) Errors {
	var errs Errors
	check := func(key, name string) {
		if name == "" {
			return
		}
		if !headerNameRE.MatchString(name) {
			errs = append(errs, f.Errorf(path+"."+key, "%q is not a valid header name", name))
			return
		}
		if slices.Contains(reservedHeaders, http.CanonicalHeaderKey(name)) {
			errs = append(errs, f.Errorf(path+"."+key, "%q is reserved and cannot carry identity", name))
		}
	}
	for key, name := range map[string]string{"subject": h.Subject, "issuer": h.Issuer, "method": h.Method,
		"credentials": h.Credentials, "client_id": h.ClientID, "scopes": h.Scopes, "roles": h.Roles, "groups": h.Groups,
		"client_certificate": h.ClientCertificate} {
		check(key, name)
	}
	for claim, name := range h.Claims {
		check("claims."+claim, name)
	}
	return errs
}

// validateIntrospection checks a provider's introspection block.
func validateIntrospection(p IdentityProvider, path string, f *File) Errors {
	in := p.Introspection
	if in == nil {
		return nil
	}
	var errs Errors
	add := func(key, format string, args ...any) { errs = append(errs, f.Errorf(path+key, format, args...)) }
	if in.Endpoint != "" {
		if err := checkProviderURL(in.Endpoint, p.InsecureAllowHTTP); err != nil {
			add(".endpoint", "%v", err)
		}
	}
	if in.ClientID == "" {
		add(".client_id", "required: the endpoint answers only authenticated clients")
	}
	switch in.ClientAuth {
	case "client_secret_basic", "client_secret_post":
		if in.ClientSecret == "" {
			add(".client_secret", "required for %s", in.ClientAuth)
		}
		if in.PrivateKeyFile != "" {
			add(".private_key_file", "applies to private_key_jwt only")
		}
	case "private_key_jwt":
		if in.PrivateKeyFile == "" {
			add(".private_key_file", "required for private_key_jwt")
		}
		if in.ClientSecret != "" {
			add(".client_secret", "not used with private_key_jwt: remove it")
		}
	}
	if in.AssertionAudience != "" && in.ClientAuth != "private_key_jwt" {
		add(".assertion_audience", "applies to private_key_jwt only")
	}
	if in.Timeout <= 0 {
		add(".timeout", "must be greater than 0")
	}
	if in.CacheTTL < 0 || in.NegativeCacheTTL < 0 || in.StaleIfError < 0 {
		add("", "cache_ttl, negative_cache_ttl and stale_if_error cannot be negative")
	}
	if in.CacheSize < 1 {
		add(".cache_size", "must be at least 1")
	}
	if in.MaxConcurrent < 1 {
		add(".max_concurrent", "must be at least 1")
	}
	if in.RateLimit < 1 {
		add(".rate_limit", "must be at least 1")
	}
	return errs
}

func checkProviderURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return fmt.Errorf("%q: keys fetched over plain http can be forged in transit; use https (or insecure_allow_http for local development)", raw)
	default:
		return fmt.Errorf("%q: scheme must be https", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q: no credentials or fragment allowed", u.Redacted())
	}
	return nil
}

func validateAPIKeys(k APIKeys, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	switch k.Store.Type {
	case "embedded":
		if k.Store.Path == "" {
			add("api_keys.store.path", "required for the embedded store")
		}
	case "postgres":
		if k.Store.DSN == "" {
			add("api_keys.store.dsn", "required for the postgres store")
		}
	}
	ids := map[string]bool{}
	for i, s := range k.Static {
		p := fmt.Sprintf("api_keys.static[%d]", i)
		switch {
		case !nameRE.MatchString(s.ID):
			add(p+".id", "required: letters, digits, '.', '_' and '-'")
		case ids[s.ID]:
			add(p+".id", "duplicate static key id %q", s.ID)
		}
		ids[s.ID] = true
		if err := apikey.ValidateConsumerName(s.Consumer); err != nil {
			add(p+".consumer", "%v", err)
		}
		if _, err := ParseTokenHash(s.Hash); err != nil {
			add(p+".hash", "%v", strings.Replace(err.Error(), "gatehouse admin-token", "gatehouse keys hash", 1))
		}
	}
	if k.Store.Type == "static" && len(k.Static) == 0 {
		add("api_keys.static", "the static store needs at least one key")
	}
	if _, err := apikey.NewFormat(k.Prefix); err != nil {
		add("api_keys.prefix", "%v", err)
	}
	if k.Pepper != "" && len(k.Pepper) < 32 {
		add("api_keys.pepper", "must be at least 32 bytes (256 bits)")
	}
	if k.Header != "" && (!headerNameRE.MatchString(k.Header) || slices.Contains(reservedHeaders, http.CanonicalHeaderKey(k.Header))) {
		add("api_keys.header", "%q is not a usable header name", k.Header)
	}
	for i, s := range k.AuthorizationSchemes {
		if !headerNameRE.MatchString(s) {
			add(fmt.Sprintf("api_keys.authorization_schemes[%d]", i), "%q is not an authentication scheme token", s)
		}
	}
	if k.CacheTTL == 0 {
		add("api_keys.cache_ttl", "must be greater than 0")
	}
	if k.NegativeCacheTTL == 0 {
		add("api_keys.negative_cache_ttl", "must be greater than 0")
	}
	if k.LastUsedInterval == 0 {
		add("api_keys.last_used_interval", "must be greater than 0")
	}
	if k.LookupTimeout <= 0 {
		add("api_keys.lookup_timeout", "must be greater than 0: every lookup needs a deadline")
	}
	if k.MaxConcurrentLookups < 1 {
		add("api_keys.max_concurrent_lookups", "must be at least 1")
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"connect_timeout", k.Store.ConnectTimeout}, {"acquire_timeout", k.Store.AcquireTimeout}, {"statement_timeout", k.Store.StatementTimeout}} {
		if d.v <= 0 {
			add("api_keys.store."+d.name, "must be greater than 0: every call to the store needs a deadline")
		}
	}
	return errs
}

// validateAuthz checks what can be checked before compiling policies
// (that happens when the plan is built, with the same error locations).
func validateAuthz(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	checkMethods := func(path string, p Policy) {
		for i, m := range p.Methods {
			mp := fmt.Sprintf("%s.methods[%d]", path, i)
			if len(m.Methods) == 0 {
				add(mp+".methods", "at least one HTTP method is required")
			}
			for j, meth := range m.Methods {
				if !methodRE.MatchString(meth) {
					add(fmt.Sprintf("%s.methods[%d]", mp, j), "%q is not an upper-case HTTP method", meth)
				}
			}
		}
	}
	for name, p := range c.Policies {
		if !nameRE.MatchString(name) {
			add("policies."+name, "policy names use letters, digits, '.', '_' and '-'")
		}
		checkMethods("policies."+name, p)
	}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		hasPolicy := r.Policy != "" || r.Authorize != nil
		switch {
		case r.Policy != "" && r.Authorize != nil:
			add(path+".authorize", "set either policy (a named policy) or authorize (inline), not both")
		case r.Public && hasPolicy:
			add(path+".public", "a public route has no caller identity to authorize; remove the policy or authenticate the route")
		case r.Policy != "":
			if _, ok := c.Policies[r.Policy]; !ok {
				add(path+".policy", "unknown policy %q", r.Policy)
			}
		}
		if r.Authorize != nil {
			checkMethods(path+".authorize", *r.Authorize)
		}
	}
	return errs
}

// validateDPoP checks a provider's dpop block.
func validateDPoP(d DPoP, path string, f *File) Errors {
	var errs Errors
	add := func(key, format string, args ...any) { errs = append(errs, f.Errorf(path+"."+key, format, args...)) }
	for j, alg := range d.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, alg) {
			add(fmt.Sprintf("algorithms[%d]", j), "%q is not allowed for DPoP proofs (asymmetric only: %s)", alg, strings.Join(asymmetricAlgorithms, " "))
		}
	}
	if d.MaxAge <= 0 {
		add("max_age", "must be greater than 0")
	}
	if d.ClockSkew <= 0 {
		add("clock_skew", "must be greater than 0")
	}
	if n := d.Nonce; n != nil {
		if len(n.Secrets) == 0 {
			add("nonce.secrets", "at least one secret is required")
		}
		for j, s := range n.Secrets {
			if len(s) < 32 {
				add(fmt.Sprintf("nonce.secrets[%d]", j), "must be at least 32 bytes (256 bits)")
			}
		}
		if n.Lifetime < Duration(10*time.Second) {
			add("nonce.lifetime", "must be at least 10s")
		}
	}
	return errs
}

// validateRevocation checks the revocation section.
func validateRevocation(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	r := c.Revocation
	if r.MaxTokenLifetime < 0 {
		add("revocation.max_token_lifetime", "must not be negative")
	}
	if r.PollInterval <= 0 {
		add("revocation.poll_interval", "must be greater than 0")
	}
	if r.ResyncInterval <= 0 {
		add("revocation.resync_interval", "must be greater than 0")
	}
	if r.Enabled && c.APIKeys.Store.Type == "static" {
		add("revocation.enabled", "the revocation list is kept in api_keys.store, and the static type has no store: use embedded or postgres")
	}
	switch {
	case r.Feed == "postgres" && c.APIKeys.Store.Type != "postgres":
		add("revocation.feed", "postgres needs api_keys.store.type postgres")
	case r.Feed == "redis" && !c.Redis.Enabled():
		add("revocation.feed", "redis needs redis.addresses")
	case r.Feed == "redis" && c.APIKeys.Store.Type != "postgres":
		add("revocation.feed", "redis carries changes between processes sharing a postgres store; the %s store has one process", c.APIKeys.Store.Type)
	}
	return errs
}
