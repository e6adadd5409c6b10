// Package policytest runs a configuration's routes, authentication and
// policies against a file of test cases, offline: `gatehouse policy test`.
//
// Tokens are minted by the runner for test issuers declared in the cases
// file (their keys replace the identity provider's, so the production
// configuration is tested unchanged), API keys come from fixtures held in
// memory, and nothing is ever sent upstream: a request that would be
// forwarded counts as status 200.
package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Cases is a decoded cases file.
type Cases struct {
	// Issuers are test issuers: each gets a fresh RSA key, which replaces
	// the keys of the configured identity provider with the same issuer.
	Issuers []Issuer `yaml:"issuers"`
	// APIKeys are in-memory API keys the cases can present by name.
	APIKeys []APIKeyFixture `yaml:"api_keys"`
	// Cases are run in order.
	Cases []Case `yaml:"cases"`
}

// Issuer is a test issuer; Issuer must equal an identity provider's issuer.
type Issuer struct {
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"`
}

// APIKeyFixture is an API key the runner creates as a static key.
type APIKeyFixture struct {
	Name     string   `yaml:"name"`
	Consumer string   `yaml:"consumer"`
	Scopes   []string `yaml:"scopes"`
	Groups   []string `yaml:"groups"`
	// Routes restricts the key, as api_keys.static[].routes does.
	Routes []string `yaml:"routes"`
}

// Case is one request and its expected outcome. Token, APIKey and
// Credentials may be combined (a require_all route takes several);
// Identity excludes them. None sends the request without credentials.
type Case struct {
	Name    string  `yaml:"name"`
	Request Request `yaml:"request"`
	// Token is minted by the runner and sent as a bearer token.
	Token *Token `yaml:"token"`
	// APIKey names a fixture, sent in the configured API-key header.
	APIKey string `yaml:"api_key"`
	// Credentials are credentials of any registered method given as text,
	// each placed where its method reads it.
	Credentials []Presented `yaml:"credentials"`
	// Identity skips authentication: the policy sees this caller.
	Identity *Identity `yaml:"identity"`
	Expect   Expect    `yaml:"expect"`
}

// Presented is a credential of a registered method, given as text.
type Presented struct {
	Method string `yaml:"method"`
	Value  string `yaml:"value"`
}

// Request is the request of a case. Method defaults to GET, Host to
// "gatehouse.test".
type Request struct {
	Method  string            `yaml:"method"`
	Host    string            `yaml:"host"`
	Path    string            `yaml:"path"`
	Headers map[string]string `yaml:"headers"`
}

// Token is a token to mint. iss is the issuer's; iat, exp (5 minutes) and
// aud (the provider's first audience) are added unless given in Claims.
type Token struct {
	Issuer string         `yaml:"issuer"`
	Claims map[string]any `yaml:"claims"`
}

// Identity is a caller given directly. Method defaults to jwt. With
// Credentials, it is the identity of an AND chain: its own fields are the
// primary credential's, and Credentials the evidence of every credential
// in chain order (the primary one included).
type Identity struct {
	Subject  string         `yaml:"subject"`
	Issuer   string         `yaml:"issuer"`
	Provider string         `yaml:"provider"`
	Method   string         `yaml:"method"`
	ClientID string         `yaml:"client_id"`
	Scopes   []string       `yaml:"scopes"`
	Roles    []string       `yaml:"roles"`
	Groups   []string       `yaml:"groups"`
	Claims   map[string]any `yaml:"claims"`
	// Credentials makes the identity composite (require_all chains).
	Credentials []Credential `yaml:"credentials"`
}

// Credential is one credential of a composite identity. Method is
// required; expires_in (e.g. 10m) sets its expiry from now.
type Credential struct {
	Method         string `yaml:"method"`
	ID             string `yaml:"id"`
	Subject        string `yaml:"subject"`
	Issuer         string `yaml:"issuer"`
	Provider       string `yaml:"provider"`
	ExpiresIn      string `yaml:"expires_in"`
	CertThumbprint string `yaml:"cert_thumbprint"`
	// KeyBinding is the cnf confirmation: kind (x5t#S256, jkt) and value.
	KeyBinding struct {
		Kind  string `yaml:"kind"`
		Value string `yaml:"value"`
	} `yaml:"key_binding"`
}

// Expect is the expected outcome: a status, or allow (status 200 or not),
// and optionally the reason code (authz or authn reason, or problem slug).
type Expect struct {
	Status int    `yaml:"status"`
	Allow  *bool  `yaml:"allow"`
	Reason string `yaml:"reason"`
}

// LoadCases reads and checks a cases file; unknown fields are errors.
func LoadCases(path string) (*Cases, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policytest: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Cases
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("policytest: %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("policytest: %s: %w", path, err)
	}
	return &c, nil
}

func (c *Cases) check() error {
	var errs []error
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		switch {
		case is.Name == "" || is.Issuer == "":
			errs = append(errs, fmt.Errorf("issuers[%d]: name and issuer are required", i))
		case issuers[is.Name]:
			errs = append(errs, fmt.Errorf("issuers[%d]: duplicate name %q", i, is.Name))
		}
		issuers[is.Name] = true
	}
	keys := map[string]bool{}
	for i, k := range c.APIKeys {
		switch {
		case k.Name == "" || k.Consumer == "":
			errs = append(errs, fmt.Errorf("api_keys[%d]: name and consumer are required", i))
		case keys[k.Name]:
			errs = append(errs, fmt.Errorf("api_keys[%d]: duplicate name %q", i, k.Name))
		}
		keys[k.Name] = true
	}
	if len(c.Cases) == 0 {
		errs = append(errs, errors.New("cases: none given"))
	}
	names := map[string]bool{}
	for i, tc := range c.Cases {
		p := fmt.Sprintf("cases[%d]", i)
		if tc.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", p))
		} else if names[tc.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name %q", p, tc.Name))
		}
		names[tc.Name] = true
		if tc.Request.Path == "" {
			errs = append(errs, fmt.Errorf("%s.request.path: required", p))
		}
		n := 0
		if tc.Token != nil {
			n++
			if !issuers[tc.Token.Issuer] {
				errs = append(errs, fmt.Errorf("%s.token.issuer: no test issuer named %q", p, tc.Token.Issuer))
			}
		}
		if tc.APIKey != "" {
			n++
			if !keys[tc.APIKey] {
				errs = append(errs, fmt.Errorf("%s.api_key: no fixture named %q", p, tc.APIKey))
			}
		}
		seen := map[string]bool{}
		for j, c := range tc.Credentials {
			cp := fmt.Sprintf("%s.credentials[%d].method", p, j)
			n++
			m, ok := registry.Lookup(identity.Method(c.Method))
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: %q is not a known method (%s)", cp, c.Method, joinMethods(registry.Names())))
			case m.Present == nil:
				errs = append(errs, fmt.Errorf("%s: the %s method's credential cannot be given as text", cp, c.Method))
			case seen[c.Method] || c.Method == string(identity.MethodJWT) && tc.Token != nil || c.Method == string(identity.MethodAPIKey) && tc.APIKey != "":
				errs = append(errs, fmt.Errorf("%s: %s given twice", cp, c.Method))
			}
			seen[c.Method] = true
		}
		if tc.Identity != nil {
			errs = append(errs, checkIdentity(p+".identity", tc.Identity)...)
			if n > 0 {
				errs = append(errs, fmt.Errorf("%s: identity skips authentication: give no token, api_key or credentials with it", p))
			}
		}
		if tc.Expect.Status == 0 && tc.Expect.Allow == nil {
			errs = append(errs, fmt.Errorf("%s.expect: give status or allow", p))
		}
	}
	return errors.Join(errs...)
}

// checkIdentity validates the method names of a given identity through
// the registry of credential methods.
func checkIdentity(p string, in *Identity) []error {
	var errs []error
	known := func(path, m string) {
		if _, ok := registry.Lookup(identity.Method(m)); !ok && m != string(identity.MethodAnonymous) {
			errs = append(errs, fmt.Errorf("%s: %q is not a known method (%s)", path, m, joinMethods(registry.Names())))
		}
	}
	if in.Method != "" {
		known(p+".method", in.Method)
	}
	for i, c := range in.Credentials {
		cp := fmt.Sprintf("%s.credentials[%d]", p, i)
		if c.Method == "" {
			errs = append(errs, fmt.Errorf("%s.method: required", cp))
		} else {
			known(cp+".method", c.Method)
		}
		if c.ExpiresIn != "" {
			if _, err := time.ParseDuration(c.ExpiresIn); err != nil {
				errs = append(errs, fmt.Errorf("%s.expires_in: %v", cp, err))
			}
		}
	}
	if len(in.Credentials) == 1 {
		errs = append(errs, fmt.Errorf("%s.credentials: give two or more (an AND chain), or none", p))
	}
	return errs
}

func joinMethods(ms []identity.Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}
