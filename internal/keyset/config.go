package keyset

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultFetchTimeout       = 5 * time.Second
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultMinRefreshInterval = time.Minute
	DefaultMaxRefreshInterval = 24 * time.Hour
	DefaultUnknownKIDInterval = 30 * time.Second
	DefaultMaxStale           = 24 * time.Hour
	DefaultMaxKeys            = 100

	// MaxBodyBytes bounds JWKS and discovery responses; a larger body is a
	// failed fetch, so a hostile or broken endpoint cannot exhaust memory.
	MaxBodyBytes = 1 << 20
)

// Config describes where one identity provider's verification keys come from
// and how they are cached. Exactly one source must be set: Static, Discovery
// (with Issuer), or JWKSURI.
type Config struct {
	// Name identifies the provider in logs and health output. Default: the
	// issuer, the JWKS URL, or "static".
	Name string
	// Issuer is the provider's issuer URL. With Discovery, New fetches
	// "<Issuer>/.well-known/openid-configuration"; the document's "issuer"
	// must equal Issuer exactly (a mismatch is a failed fetch, never
	// silently accepted) and its "jwks_uri" is used. An https issuer may not
	// point at an http jwks_uri.
	Issuer string
	// Discovery enables OpenID Connect discovery from Issuer. Default: off.
	Discovery bool
	// DiscoveryURL, with Discovery, is the document to fetch instead of
	// "<Issuer>/.well-known/openid-configuration": another metadata
	// document with the same issuer and jwks_uri members, such as a
	// Shared Signals transmitter's /.well-known/ssf-configuration. Its
	// issuer must still equal Issuer.
	DiscoveryURL string
	// JWKSURI is an explicit JWKS URL, used without discovery.
	JWKSURI string
	// Static keys are used as they are, with no fetching at all. They may
	// include HMAC secrets (see HMACKey) and must not include private
	// asymmetric keys. Cannot be combined with Discovery or JWKSURI. A
	// static key without a kid also answers lookups for any kid that no
	// other static key has, because a PEM file carries no kid.
	Static []jose.JSONWebKey
	// HTTPClient fetches discovery and JWKS documents. Default: a client
	// with FetchTimeout, proxy settings from the environment, and no
	// redirects that change the scheme (an https fetch never follows a
	// redirect to http).
	HTTPClient *http.Client
	// TLS is the client TLS configuration of the default client: a private
	// CA (RootCAs), a client certificate for providers that require mutual
	// TLS, a minimum version. Ignored when HTTPClient is set. Default nil:
	// the system roots and no client certificate.
	TLS *tls.Config
	// UserAgent is sent with every discovery and JWKS request, so that the
	// provider's operators can tell Gatehouse's fetches apart (and see its
	// version). Default: UserAgent(""), "Gatehouse/<module version>".
	UserAgent string
	// FetchTimeout bounds each discovery or JWKS request. Default: 5s.
	FetchTimeout time.Duration
	// RefreshInterval is the time between background refreshes when the
	// JWKS response has no usable Cache-Control max-age. Default: 15m.
	RefreshInterval time.Duration
	// MinRefreshInterval is the lower bound applied to a Cache-Control
	// max-age (and the interval used for no-cache/no-store), so a provider
	// cannot make us poll it in a tight loop. It also caps the first retry
	// delay after a failed fetch (which starts at 1s). Default: 1m.
	MinRefreshInterval time.Duration
	// MaxRefreshInterval is the upper bound applied to a Cache-Control
	// max-age, so rotated-out keys do not linger for too long. Default: 24h.
	MaxRefreshInterval time.Duration
	// UnknownKIDInterval allows at most one refetch triggered by unknown
	// kids per interval. This is what stops a flood of tokens with made-up
	// kids from turning the gateway into an amplifier against the
	// provider. A lookup the limit refuses is answered ErrUnknownKID, but
	// the kid is not remembered (nothing was checked), and a refetch is
	// scheduled for the moment the interval has passed, so a key the
	// provider has just published is found then even if an attacker used
	// up the previous refetch. Nothing else is remembered about unknown
	// kids: no negative cache that a forged token could seed with the kid
	// of a key about to be published. Default: 30s.
	UnknownKIDInterval time.Duration
	// MaxStale is how long the last good keys keep serving after the last
	// successful fetch while refreshes fail. After that, lookups fail
	// closed with ErrUnavailable. Default: 24h.
	MaxStale time.Duration
	// MaxKeys refuses JWKS documents with more keys than this. Default: 100.
	MaxKeys int
	// Now is the clock used for staleness and rate limits. Default:
	// time.Now.
	Now func() time.Time
	// Log receives refresh failures and key changes. Default: slog.Default().
	Log *slog.Logger
	// OnFetch, if set, is called after every fetch (discovery and JWKS
	// together) with its error, nil on success, for metrics. It runs on
	// the fetching goroutine, after the result is published, and must not
	// block. A fetch cut short by Close is not reported.
	OnFetch func(err error)
}

// source says where keys come from.
type source int

const (
	sourceStatic source = iota
	sourceDiscovery
	sourceJWKSURI
)

// withDefaults validates cfg and returns a copy with defaults applied.
func (cfg Config) withDefaults() (Config, source, error) {
	var src source
	switch {
	case len(cfg.Static) > 0 && (cfg.Discovery || cfg.JWKSURI != ""):
		return cfg, 0, errors.New("keyset: static keys cannot be combined with discovery or jwks_uri")
	case cfg.Discovery && cfg.JWKSURI != "":
		return cfg, 0, errors.New("keyset: set either discovery or jwks_uri, not both")
	case len(cfg.Static) > 0:
		src = sourceStatic
	case cfg.Discovery:
		if cfg.Issuer == "" {
			return cfg, 0, errors.New("keyset: discovery needs an issuer")
		}
		if err := checkHTTPURL(cfg.Issuer); err != nil && cfg.DiscoveryURL == "" {
			return cfg, 0, fmt.Errorf("keyset: issuer: %w", err)
		}
		if cfg.DiscoveryURL != "" {
			if err := checkHTTPURL(cfg.DiscoveryURL); err != nil {
				return cfg, 0, fmt.Errorf("keyset: discovery URL: %w", err)
			}
		}
		src = sourceDiscovery
	case cfg.JWKSURI != "":
		if err := checkHTTPURL(cfg.JWKSURI); err != nil {
			return cfg, 0, fmt.Errorf("keyset: jwks_uri: %w", err)
		}
		src = sourceJWKSURI
	default:
		return cfg, 0, errors.New("keyset: no key source: set static keys, discovery with an issuer, or jwks_uri")
	}

	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"fetch_timeout", &cfg.FetchTimeout, DefaultFetchTimeout},
		{"refresh_interval", &cfg.RefreshInterval, DefaultRefreshInterval},
		{"min_refresh_interval", &cfg.MinRefreshInterval, DefaultMinRefreshInterval},
		{"max_refresh_interval", &cfg.MaxRefreshInterval, DefaultMaxRefreshInterval},
		{"unknown_kid_interval", &cfg.UnknownKIDInterval, DefaultUnknownKIDInterval},
		{"max_stale", &cfg.MaxStale, DefaultMaxStale},
	} {
		if *d.v < 0 {
			return cfg, 0, fmt.Errorf("keyset: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MinRefreshInterval > cfg.MaxRefreshInterval {
		return cfg, 0, fmt.Errorf("keyset: min_refresh_interval %s exceeds max_refresh_interval %s",
			cfg.MinRefreshInterval, cfg.MaxRefreshInterval)
	}
	if cfg.MaxKeys < 0 {
		return cfg, 0, errors.New("keyset: max_keys must not be negative")
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if src == sourceStatic && len(cfg.Static) > cfg.MaxKeys {
		return cfg, 0, fmt.Errorf("keyset: %d static keys exceed max_keys %d", len(cfg.Static), cfg.MaxKeys)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = UserAgent("")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Name == "" {
		switch src {
		case sourceDiscovery:
			cfg.Name = cfg.Issuer
		case sourceJWKSURI:
			cfg.Name = redactURL(cfg.JWKSURI)
		default:
			cfg.Name = "static"
		}
	}
	return cfg, src, nil
}

// UserAgent returns the User-Agent header of key fetches for a Gatehouse
// version ("v1.2.3", or "v1.2.3 (abcdef123456)" as `gatehouse version`
// prints it): "Gatehouse/v1.2.3". The version is cut to its first word and
// to the characters of an HTTP token; "" means the module version from the
// build information, or "dev".
func UserAgent(version string) string {
	version = strings.TrimSpace(version)
	if version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			version = bi.Main.Version
		}
	}
	version, _, _ = strings.Cut(version, " ")
	version = strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("!#$%&'*+-.^_`|~", r):
			return r
		}
		return -1
	}, version)
	if version == "" {
		version = "dev"
	}
	return "Gatehouse/" + version
}

// checkHTTPURL accepts absolute http and https URLs with a host.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be http or https", redactURL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", redactURL(raw))
	}
	return nil
}

// redactURL hides any password in a URL meant for logs and health output.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "invalid URL"
	}
	return u.Redacted()
}

// newHTTPClient is the default client: bounded in time, proxy from the
// environment, and no scheme-changing redirects.
func newHTTPClient(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		// ForceAttemptHTTP2 (set on the default transport) keeps HTTP/2
		// with a custom TLS config.
		tr.TLSClientConfig = tlsConfig.Clone()
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("keyset: too many redirects")
			}
			if req.URL.Scheme != via[0].URL.Scheme {
				return fmt.Errorf("keyset: refusing redirect from %s to %s", via[0].URL.Scheme, req.URL.Scheme)
			}
			return nil
		},
	}
}
