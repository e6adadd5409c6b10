package policytest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Result is one case's outcome.
type Result struct {
	Name     string
	Expected string
	Got      string
	Pass     bool
	// Detail says what differed, for a failure.
	Detail string
}

// Report is the outcome of a run, in case order.
type Report struct{ Results []Result }

// Failed is the number of failed cases.
func (r Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.Pass {
			n++
		}
	}
	return n
}

// Print writes the results as a table and a summary line.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tEXPECTED\tGOT\tRESULT")
	for _, res := range r.Results {
		verdict := "PASS"
		if !res.Pass {
			verdict = "FAIL: " + res.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Name, res.Expected, res.Got, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d case(s), %d passed, %d failed\n", len(r.Results), len(r.Results)-r.Failed(), r.Failed())
	return err
}

// tokenLifetime is the lifetime of minted tokens without an exp claim.
const tokenLifetime = 5 * time.Minute

// testIssuer is a test issuer's signing key and the provider it stands for.
type testIssuer struct {
	signer   jose.Signer
	issuer   string
	audience string
	audClaim string // where audience goes: aud, or the provider's audience_claim
}

// Run runs every case against cfg, which is not modified: the copy the
// runner builds has its identity providers' keys replaced by the runner's
// (no key is ever fetched), its API keys held in memory, and audit and
// access logs disabled. An error means the run could not be set up.
func Run(cfg *config.Config, file *config.File, cases *Cases) (Report, error) {
	dir, err := os.MkdirTemp("", "gatehouse-policytest-")
	if err != nil {
		return Report{}, fmt.Errorf("policytest: %w", err)
	}
	defer os.RemoveAll(dir)

	c := *cfg
	c.Audit.Disabled, c.AccessLog.Disabled = true, true
	issuers, err := replaceProviderKeys(&c, cases.Issuers, dir)
	if err != nil {
		return Report{}, err
	}
	plaintext, err := addKeyFixtures(&c, cases.APIKeys)
	if err != nil {
		return Report{}, err
	}
	keys, err := pipeline.OpenAPIKeys(context.Background(), c.APIKeys, slog.New(slog.DiscardHandler))
	if err != nil {
		return Report{}, fmt.Errorf("policytest: %w", err)
	}
	defer keys.Close()
	plan, err := pipeline.Build(&c, file, pipeline.Options{Stdout: io.Discard, Stderr: io.Discard, APIKeys: keys, Validating: true})
	if err != nil {
		return Report{}, err
	}
	defer plan.Close()

	var rep Report
	for _, tc := range cases.Cases {
		r, id, err := request(&c, tc, issuers, plaintext)
		if err != nil {
			return Report{}, fmt.Errorf("policytest: case %q: %w", tc.Name, err)
		}
		rep.Results = append(rep.Results, judge(tc, plan.Inspect(r, id, false)))
	}
	return rep, nil
}

// replaceProviderKeys gives every identity provider a static key from the
// runner, so nothing is fetched: a test issuer's key for the provider with
// its issuer, a throwaway key for the others.
func replaceProviderKeys(c *config.Config, test []Issuer, dir string) (map[string]*testIssuer, error) {
	c.IdentityProviders = slices.Clone(c.IdentityProviders)
	out := map[string]*testIssuer{}
	for _, is := range test {
		i := slices.IndexFunc(c.IdentityProviders, func(p config.IdentityProvider) bool { return p.Issuer == is.Issuer })
		if i < 0 {
			return nil, fmt.Errorf("policytest: test issuer %q: no identity provider has issuer %q", is.Name, is.Issuer)
		}
		if algs := c.IdentityProviders[i].Algorithms; len(algs) > 0 && !slices.Contains(algs, "RS256") {
			return nil, fmt.Errorf("policytest: test issuer %q: provider %q does not accept RS256", is.Name, c.IdentityProviders[i].Name)
		}
		out[is.Name] = &testIssuer{issuer: is.Issuer}
		if aud := c.IdentityProviders[i].Audiences; len(aud) > 0 {
			out[is.Name].audience = aud[0]
			out[is.Name].audClaim = cmp.Or(c.IdentityProviders[i].AudienceClaim, "aud")
		}
	}
	for i := range c.IdentityProviders {
		pc := &c.IdentityProviders[i]
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("policytest: %w", err)
		}
		kid := "policytest-" + strconv.Itoa(i)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
		data, err := json.Marshal(set)
		if err != nil {
			return nil, fmt.Errorf("policytest: %w", err)
		}
		path := filepath.Join(dir, kid+".json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("policytest: %w", err)
		}
		pc.JWKSURI, pc.StaticKeys = "", &config.StaticKeys{Files: []string{path}}
		for name, is := range out {
			if is.issuer != pc.Issuer || is.signer != nil {
				continue
			}
			opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
			if out[name].signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts); err != nil {
				return nil, fmt.Errorf("policytest: %w", err)
			}
		}
	}
	return out, nil
}

// addKeyFixtures makes the API-key store static and adds one key per
// fixture, returning the plaintext keys by fixture name.
func addKeyFixtures(c *config.Config, fixtures []APIKeyFixture) (map[string]string, error) {
	format, err := apikey.NewFormat(c.APIKeys.Prefix)
	if err != nil {
		return nil, fmt.Errorf("policytest: %w", err)
	}
	var pepper []byte
	if c.APIKeys.Pepper != "" {
		pepper = []byte(c.APIKeys.Pepper)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		return nil, fmt.Errorf("policytest: %w", err)
	}
	c.APIKeys.Store.Type = "static"
	c.APIKeys.Static = slices.Clone(c.APIKeys.Static)
	out := make(map[string]string, len(fixtures))
	for _, f := range fixtures {
		key, err := format.Generate()
		if err != nil {
			return nil, fmt.Errorf("policytest: %w", err)
		}
		out[f.Name] = key
		c.APIKeys.Static = append(c.APIKeys.Static, config.StaticAPIKey{
			ID: "policytest-" + f.Name, Consumer: f.Consumer, Hash: "sha256:" + hex.EncodeToString(hasher.Hash(key)),
			Scopes: f.Scopes, Groups: f.Groups, Routes: f.Routes,
		})
	}
	return out, nil
}

// request builds a case's request, and its identity for identity cases.
func request(c *config.Config, tc Case, issuers map[string]*testIssuer, keys map[string]string) (*http.Request, *identity.Identity, error) {
	method, host := tc.Request.Method, tc.Request.Host
	if method == "" {
		method = http.MethodGet
	}
	if host == "" {
		host = "gatehouse.test"
	}
	r := httptest.NewRequest(method, "http://"+host+tc.Request.Path, nil)
	for k, v := range tc.Request.Headers {
		r.Header.Set(k, v)
	}
	if tc.Token != nil {
		tok, err := issuers[tc.Token.Issuer].mint(tc.Token.Claims)
		if err != nil {
			return nil, nil, err
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if tc.APIKey != "" {
		header := c.APIKeys.Header
		if header == "" {
			header = "X-API-Key"
		}
		r.Header.Set(header, keys[tc.APIKey])
	}
	for _, p := range tc.Credentials {
		m, _ := registry.Lookup(identity.Method(p.Method)) // checked when loaded
		if err := m.Present(r, p.Value, c); err != nil {
			return nil, nil, fmt.Errorf("credentials: %s: %w", p.Method, err)
		}
	}
	switch {
	case tc.Identity != nil:
		in := tc.Identity
		id := &identity.Identity{
			Subject: in.Subject, Issuer: in.Issuer, Provider: in.Provider, Method: identity.Method(in.Method),
			ClientID: in.ClientID, Scopes: in.Scopes, Roles: in.Roles, Groups: in.Groups, Claims: in.Claims,
			ExpiresAt: time.Now().Add(tokenLifetime),
		}
		if id.Method == "" {
			id.Method = identity.MethodJWT
		}
		if len(in.Credentials) > 0 {
			id.Credentials = make([]identity.Credential, len(in.Credentials))
			for i, c := range in.Credentials {
				ic := identity.Credential{Method: identity.Method(c.Method), CredentialID: c.ID, Subject: c.Subject,
					Issuer: c.Issuer, Provider: c.Provider, CertThumbprint: c.CertThumbprint,
					KeyBinding: identity.KeyBinding{Kind: c.KeyBinding.Kind, Value: c.KeyBinding.Value}}
				if c.ExpiresIn != "" {
					d, _ := time.ParseDuration(c.ExpiresIn) // checked when loaded
					ic.ExpiresAt = time.Now().Add(d)
					if ic.ExpiresAt.Before(id.ExpiresAt) {
						id.ExpiresAt = ic.ExpiresAt // a composite expires with its first credential
					}
				}
				id.Credentials[i] = ic
			}
		}
		return r, id, nil
	}
	return r, nil, nil
}

// mint signs a token with the given claims, adding iss, iat, exp and aud
// when absent.
func (t *testIssuer) mint(claims map[string]any) (string, error) {
	if t.signer == nil {
		return "", fmt.Errorf("test issuer %q has no key", t.issuer)
	}
	now := time.Now()
	all := map[string]any{"iss": t.issuer, "iat": now.Unix(), "exp": now.Add(tokenLifetime).Unix()}
	if t.audience != "" {
		all[t.audClaim] = t.audience
	}
	for k, v := range claims {
		all[k] = v
	}
	payload, err := json.Marshal(all)
	if err != nil {
		return "", err
	}
	jws, err := t.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// judge compares an outcome with a case's expectation.
func judge(tc Case, got pipeline.Outcome) Result {
	res := Result{Name: tc.Name, Pass: true}
	var want []string
	var diffs []string
	if s := tc.Expect.Status; s != 0 {
		want = append(want, strconv.Itoa(s))
		if got.Status != s {
			diffs = append(diffs, fmt.Sprintf("status %d, want %d", got.Status, s))
		}
	}
	if a := tc.Expect.Allow; a != nil {
		want = append(want, "allow="+strconv.FormatBool(*a))
		if (got.Status == http.StatusOK) != *a {
			diffs = append(diffs, fmt.Sprintf("allow %t, want %t", got.Status == http.StatusOK, *a))
		}
	}
	if r := tc.Expect.Reason; r != "" {
		want = append(want, r)
		if got.Reason != r {
			diffs = append(diffs, fmt.Sprintf("reason %s, want %s", got.Reason, r))
		}
	}
	if got.NotEvaluated != "" {
		// Never a pass by accident: the outcome is not the gateway's.
		diffs = append(diffs, got.NotEvaluated)
	}
	res.Expected = strings.Join(want, " ")
	res.Got = strconv.Itoa(got.Status) + " " + got.Reason
	if got.Rule != "" {
		res.Got += " (" + got.Rule + ")"
	}
	if got.Route != "" {
		res.Got += " @" + got.Route
	}
	if len(diffs) > 0 {
		res.Pass, res.Detail = false, strings.Join(diffs, "; ")
	}
	return res
}
