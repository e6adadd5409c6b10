package config

import (
	"fmt"
	"strings"
)

// SharedSignals configures the Shared Signals (SSF 1.0 / CAEP 1.0)
// receiver (docs/revocation.md): a gateway-owned endpoint to which
// transmitters push Security Event Tokens (RFC 8935). Needs
// revocation.enabled: revoking events go through the revocation list.
type SharedSignals struct {
	// Path is where SETs are pushed, on every host. Required when
	// transmitters are configured.
	Path string `yaml:"path" desc:"The push endpoint's path, served on every host (e.g. /ssf/events). Required with transmitters."`
	// MaxAge refuses SETs issued longer ago. Default 24h.
	MaxAge Duration `yaml:"max_age" desc:"SETs whose iat is older are refused (invalid_request); also how long jti values are remembered against replay. Default 24h."`
	// Transmitters are the trusted transmitters.
	Transmitters []Transmitter `yaml:"transmitters" desc:"The trusted SSF transmitters (an IdP such as Okta or Entra, a security platform). None: no endpoint."`
}

// Transmitter is one SSF transmitter.
type Transmitter struct {
	// Name identifies it in audit events (provider). Required, unique.
	Name string `yaml:"name" desc:"Names the transmitter in audit events (provider). Required, unique."`
	// Issuer is the SETs' required iss. Required.
	Issuer string `yaml:"issuer" desc:"The transmitter's issuer: a SET's iss must equal it (invalid_issuer otherwise). Required."`
	// JWKSURI is where its signing keys are. One of jwks_uri and metadata.
	JWKSURI string `yaml:"jwks_uri" desc:"The transmitter's JWKS URL. Exactly one of jwks_uri and metadata."`
	// Metadata is its SSF configuration document, whose jwks_uri is used.
	Metadata string `yaml:"metadata" desc:"The transmitter's SSF configuration document (https://…/.well-known/ssf-configuration); its issuer must equal issuer and its jwks_uri gives the keys. Exactly one of jwks_uri and metadata."`
	// Audience: a SET's aud must contain one of these. Required.
	Audience []string `yaml:"audience" desc:"This receiver's audience values, as registered with the transmitter: a SET's aud must contain one (invalid_audience otherwise). Required."`
	// PushToken is the bearer token the transmitter pushes with. Required.
	PushToken string `yaml:"push_token" desc:"The bearer token the transmitter sends (Authorization: Bearer), compared in constant time; at least 16 bytes. Use ${ENV}. Required."`
	// Subjects maps subject identifiers to the gateway's subjects.
	Subjects TransmitterSubjects `yaml:"subjects" desc:"How the SETs' subject identifiers map to the subjects of the gateway's tokens."`
	// InsecureAllowHTTP permits http:// URLs (tests only).
	InsecureAllowHTTP bool `yaml:"insecure_allow_http" desc:"Allow http:// jwks_uri and metadata URLs (local development only: keys could be tampered with in transit). Default false."`
}

// TransmitterSubjects maps a transmitter's subject identifiers.
type TransmitterSubjects struct {
	// Formats accepted. Default [iss_sub].
	Formats []string `yaml:"formats" desc:"Subject identifier formats acted on: iss_sub, email, opaque. Events about a subject of another format are accepted and not acted on (ssf_subject_unmapped). Default [iss_sub]."`
	// Issuers an iss_sub subject may name. Default [issuer].
	Issuers []string `yaml:"issuers" desc:"The iss values an iss_sub subject may carry; others are not acted on. Default: the transmitter's issuer."`
	// TokenIssuer is the issuer of the tokens revocations name.
	TokenIssuer string `yaml:"token_issuer" desc:"The iss of the gateway's tokens that the subject's revocations apply to (when the IdP's token issuer differs from its SSF issuer, as with Okta authorization servers). Default: the iss_sub subject's iss; for email and opaque subjects, tokens of any issuer."`
}

// LeakReports configures the endpoint that secret scanners report leaked
// API keys to (docs/revocation.md).
type LeakReports struct {
	// Path is the endpoint's path, on every host. Empty: no endpoint.
	Path string `yaml:"path" desc:"The endpoint's path, served on every host (e.g. /leaks/api-keys). Empty: no endpoint."`
	// BearerToken authenticates reporters.
	BearerToken string `yaml:"bearer_token" desc:"A report must carry Authorization: Bearer with this value (constant-time compare; at least 32 bytes; use ${ENV}). At least one of bearer_token and hmac_secret; with both, both are required."`
	// HMACSecret authenticates reports by signature.
	HMACSecret string `yaml:"hmac_secret" desc:"A report must carry signature_header: sha256=<hex HMAC-SHA-256 of the body under this secret> (at least 32 bytes; use ${ENV})."`
	// SignatureHeader names the signature header.
	SignatureHeader string `yaml:"signature_header" desc:"The header that carries the HMAC signature. Default X-Gatehouse-Signature-256."`
	// MaxKeys bounds one report.
	MaxKeys int `yaml:"max_keys" desc:"Most entries in one report (a longer one is refused, 400). Default 100."`
}

// validateSignals checks shared_signals and leak_reports.
func validateSignals(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	s := c.SharedSignals
	if len(s.Transmitters) > 0 {
		if !strings.HasPrefix(s.Path, "/") {
			add("shared_signals.path", "an absolute path is required")
		}
		if !c.Revocation.Enabled {
			add("shared_signals.transmitters", "revoking events go through the revocation list: set revocation.enabled")
		}
	}
	if s.MaxAge < 0 {
		add("shared_signals.max_age", "must not be negative")
	}
	names := map[string]bool{}
	for i, t := range s.Transmitters {
		p := fmt.Sprintf("shared_signals.transmitters[%d]", i)
		if t.Name == "" {
			add(p+".name", "is required")
		} else if names[t.Name] {
			add(p+".name", "duplicate name %q", t.Name)
		}
		names[t.Name] = true
		if t.Issuer == "" {
			add(p+".issuer", "is required")
		}
		switch {
		case (t.JWKSURI == "") == (t.Metadata == ""):
			add(p, "exactly one of jwks_uri and metadata is required")
		case t.JWKSURI != "":
			if err := checkProviderURL(t.JWKSURI, t.InsecureAllowHTTP); err != nil {
				add(p+".jwks_uri", "%v", err)
			}
		default:
			if err := checkProviderURL(t.Metadata, t.InsecureAllowHTTP); err != nil {
				add(p+".metadata", "%v", err)
			}
		}
		if len(t.Audience) == 0 {
			add(p+".audience", "at least one value is required")
		}
		if len(t.PushToken) < 16 {
			add(p+".push_token", "at least 16 bytes are required")
		}
		for j, fm := range t.Subjects.Formats {
			switch fm {
			case "iss_sub", "email", "opaque":
			default:
				add(fmt.Sprintf("%s.subjects.formats[%d]", p, j), "must be iss_sub, email or opaque")
			}
		}
	}
	l := c.LeakReports
	if l.Path != "" {
		if !strings.HasPrefix(l.Path, "/") {
			add("leak_reports.path", "an absolute path is required")
		}
		if l.BearerToken == "" && l.HMACSecret == "" {
			add("leak_reports", "bearer_token or hmac_secret is required")
		}
		if c.APIKeys.Store.Type == "static" {
			add("leak_reports.path", "leaked keys are revoked in api_keys.store, and the static type has no store: use embedded or postgres")
		}
	}
	if l.BearerToken != "" && len(l.BearerToken) < 32 {
		add("leak_reports.bearer_token", "at least 32 bytes are required")
	}
	if l.HMACSecret != "" && len(l.HMACSecret) < 32 {
		add("leak_reports.hmac_secret", "at least 32 bytes are required")
	}
	if l.MaxKeys < 0 || l.MaxKeys > 1000 {
		add("leak_reports.max_keys", "must be between 1 and 1000")
	}
	return errs
}
