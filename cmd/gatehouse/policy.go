package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/policytest"
)

// cmdPolicy dispatches "gatehouse policy …".
func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	const sub = "Usage: gatehouse policy test -c FILE CASES.yaml\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, sub)
		return exitUsage
	}
	switch args[0] {
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, sub)
		return exitOK
	}
	fmt.Fprintf(stderr, "gatehouse policy: unknown command %q\n%s", args[0], sub)
	return exitUsage
}

// policyTest runs a cases file against a configuration, offline: exit 0
// when every case passes, 1 on any mismatch, 2 on usage, configuration or
// cases-file errors.
func policyTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy test", "policy test [-c FILE] CASES.yaml\n\nRun the requests of CASES.yaml through route matching, authentication and\nauthorization of the configuration, with tokens and API keys made by the\nrunner and no upstream. Exit 1 if any case does not get its expected outcome.", stderr)
	path := fs.String("c", "gatehouse.yaml", "configuration file")
	var casesPath string
	if len(args) > 0 && !strings.HasPrefix(args[len(args)-1], "-") {
		casesPath, args = args[len(args)-1], args[:len(args)-1]
	}
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	if casesPath == "" {
		fmt.Fprintln(stderr, "gatehouse policy test: a cases file is required")
		fs.Usage()
		return exitUsage
	}
	cfg, file, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse policy test: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	cases, err := policytest.LoadCases(casesPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse policy test: %v\n", err)
		return exitUsage
	}
	rep, err := policytest.Run(cfg, file, cases)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse policy test: %v\n", err)
		return exitUsage
	}
	if err := rep.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "gatehouse policy test: %v\n", err)
		return exitError
	}
	if rep.Failed() > 0 {
		return exitError
	}
	return exitOK
}

// headerFlags collects repeated --header 'K: V' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, ":"); !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	*h = append(*h, v)
	return nil
}

// cmdExplain prints how the gateway would decide one request: the route,
// each authenticator tried, and each policy rule. Tokens are verified with
// the configured providers' keys, so a JWKS may be fetched.
func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explain", "explain [-c FILE] [--method M] [--host H] [--header 'K: V']... [--credential METHOD=VALUE]... [--token T] [--api-key K] [--identity-json JSON] PATH\n\nExplain the decision for one request: the route chosen (or why none),\neach authenticator tried and its outcome, and each policy rule evaluated.\nNothing is sent upstream.", stderr)
	path := fs.String("c", "gatehouse.yaml", "configuration file")
	method := fs.String("method", http.MethodGet, "request method")
	host := fs.String("host", "gatehouse.test", "request host")
	token := fs.String("token", "", "bearer token to present")
	key := fs.String("api-key", "", "API key to present (in the configured header)")
	idJSON := fs.String("identity-json", "", `caller to authorize without authentication, e.g. '{"subject":"u1","roles":["admin"]}'`)
	var (
		headers headerFlags
		creds   listFlags
	)
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	fs.Var(&creds, "credential", "credential to present, as METHOD=VALUE, placed where the method reads it (repeatable: one per method of an AND chain); --token T is jwt=T, --api-key K is api_key=K")
	var reqPath string
	if len(args) > 0 && strings.HasPrefix(args[len(args)-1], "/") {
		reqPath, args = args[len(args)-1], args[:len(args)-1]
	}
	if code, stop := parse(fs, args, stdout); stop {
		return code
	}
	if reqPath == "" {
		fmt.Fprintln(stderr, "gatehouse explain: a request PATH starting with / is required")
		fs.Usage()
		return exitUsage
	}
	if *idJSON != "" && (*token != "" || *key != "" || len(creds) > 0) {
		fmt.Fprintln(stderr, "gatehouse explain: --identity-json skips authentication: give no --token, --api-key or --credential with it")
		return exitUsage
	}
	presented, err := parseCredentials(creds, *token, *key)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse explain: %v\n", err)
		return exitUsage
	}
	var id *identity.Identity
	if *idJSON != "" {
		var in struct {
			Subject, Issuer, Provider, Method string
			ClientID                          string `json:"client_id"`
			Scopes, Roles, Groups             []string
			Claims                            map[string]any
			// Credentials makes a composite identity (an AND chain).
			Credentials []struct {
				Method, ID, Subject, Issuer, Provider string
				CertThumbprint                        string                       `json:"cert_thumbprint"`
				KeyBinding                            struct{ Kind, Value string } `json:"key_binding"`
			}
		}
		dec := json.NewDecoder(strings.NewReader(*idJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fmt.Fprintf(stderr, "gatehouse explain: --identity-json: %v\n", err)
			return exitUsage
		}
		id = &identity.Identity{Subject: in.Subject, Issuer: in.Issuer, Provider: in.Provider, Method: identity.Method(in.Method),
			ClientID: in.ClientID, Scopes: in.Scopes, Roles: in.Roles, Groups: in.Groups, Claims: in.Claims}
		if id.Method == "" {
			id.Method = identity.MethodJWT
		}
		for _, c := range in.Credentials {
			if _, ok := registry.Lookup(identity.Method(c.Method)); !ok {
				fmt.Fprintf(stderr, "gatehouse explain: --identity-json: credentials: %q is not a known method\n", c.Method)
				return exitUsage
			}
			id.Credentials = append(id.Credentials, identity.Credential{Method: identity.Method(c.Method), CredentialID: c.ID,
				Subject: c.Subject, Issuer: c.Issuer, Provider: c.Provider, CertThumbprint: c.CertThumbprint,
				KeyBinding: identity.KeyBinding{Kind: c.KeyBinding.Kind, Value: c.KeyBinding.Value}})
		}
	}
	cfg, file, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse explain: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	c := *cfg
	c.Audit.Disabled, c.AccessLog.Disabled = true, true
	opts := pipeline.Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true}
	var keysNote string
	if routesUse(&c, "api_key") {
		keys, note := explainAPIKeys(c.APIKeys, c.Admin, presented[identity.MethodAPIKey])
		defer keys.Close()
		opts.APIKeys, keysNote = keys, note
	}
	plan, err := pipeline.Build(&c, file, opts)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse explain: %v\n", err)
		return exitUsage
	}
	defer plan.Close()

	r := httptest.NewRequest(*method, "http://"+*host+reqPath, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	for _, m := range slices.Sorted(maps.Keys(presented)) {
		method, _ := registry.Lookup(m) // parseCredentials checked it
		if err := method.Present(r, presented[m], &c); err != nil {
			fmt.Fprintf(stderr, "gatehouse explain: --credential %s: %v\n", m, err)
			return exitUsage
		}
	}
	out := plan.Inspect(r, id, true)
	fmt.Fprintf(stdout, "%s %s%s\n", *method, *host, reqPath)
	if keysNote != "" {
		fmt.Fprintf(stdout, "  %s\n", keysNote)
	}
	for _, s := range out.Steps {
		fmt.Fprintf(stdout, "  %s\n", s)
	}
	if out.NotEvaluated != "" {
		fmt.Fprintf(stderr, "gatehouse explain: %s; the gateway's answer is unknown\n", strings.TrimPrefix(out.NotEvaluated, "pipeline: "))
		return exitError
	}
	return exitOK
}

// listFlags collects a repeatable flag's values as given.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ", ") }
func (l *listFlags) Set(v string) error { *l = append(*l, v); return nil }

// parseCredentials reads the --credential METHOD=VALUE flags (and the
// --token and --api-key shortcuts) into one value per method, checking
// each method in the registry.
func parseCredentials(creds []string, token, key string) (map[identity.Method]string, error) {
	out := map[identity.Method]string{}
	add := func(m identity.Method, v string) error {
		method, ok := registry.Lookup(m)
		switch {
		case !ok:
			names := make([]string, 0)
			for _, n := range registry.Names() {
				names = append(names, string(n))
			}
			return fmt.Errorf("--credential: %q is not a known method (%s)", m, strings.Join(names, ", "))
		case method.Present == nil:
			return fmt.Errorf("--credential: the %s method's credential cannot be given as text", m)
		}
		if _, dup := out[m]; dup {
			return fmt.Errorf("--credential: %s given twice", m)
		}
		out[m] = v
		return nil
	}
	for _, c := range creds {
		m, v, ok := strings.Cut(c, "=")
		if !ok || m == "" {
			return nil, fmt.Errorf("--credential %q: give METHOD=VALUE", c)
		}
		if err := add(identity.Method(strings.TrimSpace(m)), v); err != nil {
			return nil, err
		}
	}
	if token != "" {
		if err := add(identity.MethodJWT, token); err != nil {
			return nil, err
		}
	}
	if key != "" {
		if err := add(identity.MethodAPIKey, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// routesUse reports whether a route accepts the authentication method.
func routesUse(c *config.Config, method string) bool {
	for _, rc := range c.Routes {
		if !rc.Public && slices.Contains(rc.Authenticate.Methods, method) {
			return true
		}
	}
	return false
}

// explainAPIKeys opens the configured key store read-only, so that explain
// judges keys as the gateway does, and returns a line saying where keys
// come from. When a running gateway holds the embedded store, the
// presented key is looked up through that gateway's admin API instead. A
// store it cannot reach either way yields a runtime that judges static and
// malformed keys and reports every other key as not evaluated: explain
// then says so and exits 1, never drops the method.
func explainAPIKeys(cfg config.APIKeys, admin config.Admin, presented string) (*pipeline.APIKeys, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := pipeline.OpenAPIKeysReadOnly(ctx, cfg)
	if err == nil {
		switch cfg.Store.Type {
		case "static":
			return keys, "api keys: static keys of the configuration"
		case "postgres":
			return keys, fmt.Sprintf("api keys: PostgreSQL store (schema %s), read-only", cfg.Store.Schema)
		default:
			return keys, fmt.Sprintf("api keys: embedded store %s, opened read-only", cfg.Store.Path)
		}
	}
	why := err.Error()
	if cfg.Store.Type != "postgres" && errors.Is(err, apikey.ErrUnavailable) {
		// A running gateway holds the file (bbolt allows one writer and no
		// reader beside it): ask that gateway, through its admin API.
		why = fmt.Sprintf("the embedded store %s is locked by a running gateway", cfg.Store.Path)
		if presented != "" {
			keys, note, aerr := lookupThroughAdmin(ctx, cfg, admin, presented)
			if aerr == nil {
				return keys, note
			}
			why += "; asking its admin API failed: " + aerr.Error()
		}
	}
	offline, oerr := pipeline.OfflineAPIKeys(cfg, why)
	if oerr != nil {
		// The configuration was validated: the format and pepper are fine.
		panic(oerr)
	}
	return offline, "api keys: NOT AVAILABLE: " + why + "; only static and malformed keys can be judged"
}

// lookupThroughAdmin asks the running gateway's admin API (address and
// token as the keys commands find them) which stored key presented is, and
// returns a runtime that judges exactly that key.
func lookupThroughAdmin(ctx context.Context, cfg config.APIKeys, admin config.Admin, presented string) (*pipeline.APIKeys, string, error) {
	if admin.Disabled {
		return nil, "", errors.New("the admin listener is disabled")
	}
	token := strings.TrimSpace(os.Getenv(adminTokenEnv))
	if token == "" && admin.TokenFile != "" {
		t, err := readTokenFile(admin.TokenFile)
		if err != nil {
			return nil, "", err
		}
		token = t
	}
	if token == "" {
		return nil, "", fmt.Errorf("no admin token (set $%s, or run where the gateway wrote admin.token_file)", adminTokenEnv)
	}
	base := adminURL(admin.Address)
	client := &adminclient.Client{BaseURL: base, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
	note := "api keys: the embedded store " + cfg.Store.Path + " is in use by a running gateway; key looked up through its admin API at " + base
	found, err := client.LookupKey(ctx, presented)
	var ae *adminclient.APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		keys, err := pipeline.SnapshotAPIKeys(cfg, nil, nil)
		return keys, note + " (no such key)", err
	case err != nil:
		return nil, "", err
	}
	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		return nil, "", err
	}
	fk, fc := found.Key, found.Consumer
	k := &apikey.Key{ID: fk.ID, ConsumerID: fk.ConsumerID, Hash: hasher.Hash(presented), Hint: fk.Hint, Name: fk.Name,
		Scopes: fk.Scopes, Routes: fk.Routes, Tier: fk.RateLimitTier, Status: apikey.Status(fk.Status), CreatedAt: fk.CreatedAt,
		ExpiresAt: fk.ExpiresAt, RevokedAt: fk.RevokedAt, RotatedTo: fk.RotatedTo, LastUsedAt: fk.LastUsedAt}
	c := &apikey.Consumer{ID: fc.ID, Name: fc.Name, Groups: fc.Groups, Tags: fc.Tags, Metadata: fc.Metadata, CreatedAt: fc.CreatedAt}
	keys, err := pipeline.SnapshotAPIKeys(cfg, k, c)
	return keys, note, err
}
