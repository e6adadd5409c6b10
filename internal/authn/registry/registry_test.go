package registry_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// scripted is a credential method that exists only in this test: it
// proves that a new method plugs in with its package (this file) and one
// Register call, and no edit anywhere else — its typed block is decoded
// and validated by the configuration, the pipeline builds it and
// challenges with its scheme, its credential header never reaches the
// upstream, and explain can present its credential.
const scripted identity.Method = "scripted"

// scriptedOptions is routes[].authenticate.scripted.
type scriptedOptions struct {
	Header string   `yaml:"header" desc:"Header carrying the script token. Default X-Script."`
	Accept []string `yaml:"accept" desc:"Accepted tokens. Required."`
}

func (o *scriptedOptions) SetDefaults() { o.Header = "X-Script" }

type scriptedAuthenticator struct{ opts *scriptedOptions }

func (a scriptedAuthenticator) Method() identity.Method { return scripted }

func (a scriptedAuthenticator) Authenticate(r *http.Request) (*identity.Identity, error) {
	v := r.Header.Get(a.opts.Header)
	switch {
	case v == "":
		return nil, authn.ErrNoCredential
	case !slices.Contains(a.opts.Accept, v):
		return nil, &authn.Failure{Method: scripted, Reason: "script_rejected", Description: "Unknown script token."}
	}
	return &identity.Identity{Method: scripted, Subject: "script:" + v, Issuer: "scripts", CredentialID: "sc-" + v}, nil
}

func init() {
	registry.Register(registry.Method{
		Name:      scripted,
		Challenge: "Script",
		Options:   &scriptedOptions{},
		Validate: func(m config.RouteMethod) config.Errors {
			o, _ := m.Options.(*scriptedOptions)
			if o == nil {
				return config.Errors{m.Errorf("", "the scripted method needs a scripted: block")}
			}
			if len(o.Accept) == 0 {
				return config.Errors{m.Errorf("scripted.accept", "at least one token is required")}
			}
			return nil
		},
		Build: func(env registry.Env) (authn.Authenticator, error) {
			return scriptedAuthenticator{opts: env.Options.(*scriptedOptions)}, nil
		},
		CredentialHeaders: func(c *config.Config) []string {
			var out []string
			for _, r := range c.Routes {
				if o, ok := r.Authenticate.Options(string(scripted)).(*scriptedOptions); ok {
					out = append(out, o.Header)
				}
			}
			return out
		},
		Present: func(r *http.Request, value string, _ *config.Config) error {
			r.Header.Set("X-Script", value)
			return nil
		},
	})
}

const scriptedConfig = `routes:
  - name: scripts
    match: {path_prefix: /s}
    authenticate:
      methods: [scripted]
      scripted:
        accept: [open-sesame]
    upstream: {targets: ["http://127.0.0.1:1"]}
`

func TestRegistryLists(t *testing.T) {
	names := registry.Names()
	for _, want := range []identity.Method{identity.MethodAPIKey, identity.MethodJWT, scripted} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() = %v, lacks %s", names, want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() not sorted: %v", names)
	}
	for _, tc := range []struct {
		m      identity.Method
		scheme string
	}{{identity.MethodJWT, "Bearer"}, {identity.MethodAPIKey, "ApiKey"}, {scripted, "Script"}, {"nope", "Bearer"}} {
		if got := registry.Challenge(tc.m); got != tc.scheme {
			t.Errorf("Challenge(%s) = %q, want %q", tc.m, got, tc.scheme)
		}
	}
	if !slices.Contains(config.MethodNames(), string(scripted)) {
		t.Errorf("config does not know the registered method: %v", config.MethodNames())
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	build := func(registry.Env) (authn.Authenticator, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		m    registry.Method
	}{
		{"twice", registry.Method{Name: scripted, Challenge: "Script", Build: build}},
		{"no challenge", registry.Method{Name: "x1", Build: build}},
		{"no build", registry.Method{Name: "x2", Challenge: "X"}},
		{"options not a struct pointer", registry.Method{Name: "x3", Challenge: "X", Build: build, Options: scriptedOptions{}}},
		{"name of an authenticate key", registry.Method{Name: "realm", Challenge: "X", Build: build}},
		{"upper-case name", registry.Method{Name: "Bad", Challenge: "X", Build: build}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			registry.Register(tc.m)
		})
	}
}

func TestScriptedConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings of the error; none: valid
	}{
		{"valid", scriptedConfig, nil},
		{"unknown key in the block", strings.Replace(scriptedConfig, "accept: [open-sesame]", "accept: [open-sesame]\n        bogus: 1", 1),
			[]string{`gatehouse.yaml:8:9: routes[0].authenticate.scripted.bogus: unknown key "bogus"`}},
		{"wrong type in the block", strings.Replace(scriptedConfig, "accept: [open-sesame]", "accept: {a: b}", 1),
			[]string{`gatehouse.yaml:7:17: routes[0].authenticate.scripted.accept: expected a list`}},
		{"validation of the block", strings.Replace(scriptedConfig, "accept: [open-sesame]", "accept: []", 1),
			[]string{`gatehouse.yaml:7:17: routes[0].authenticate.scripted.accept: at least one token is required`}},
		{"method listed without its block", strings.Replace(scriptedConfig, "      scripted:\n        accept: [open-sesame]\n", "", 1),
			[]string{`gatehouse.yaml:5:7: routes[0].authenticate: the scripted method needs a scripted: block`}},
		{"block of a method not listed", strings.Replace(scriptedConfig, "methods: [scripted]", "methods: [api_key]", 1),
			[]string{`gatehouse.yaml:7:9: routes[0].authenticate.scripted: applies to the scripted method, which is not listed`}},
		{"a block for a method without options", strings.Replace(scriptedConfig, "      scripted:\n", "      api_key: {header: X-Key}\n      scripted:\n", 1),
			[]string{`gatehouse.yaml:6:7: routes[0].authenticate.api_key: the api_key method takes no options block here`}},
		{"duplicate block", strings.Replace(scriptedConfig, "accept: [open-sesame]\n", "accept: [open-sesame]\n      scripted: {accept: [x]}\n", 1),
			[]string{`routes[0].authenticate.scripted: duplicate key "scripted"`}},
		{"unknown method names the registered ones", strings.Replace(scriptedConfig, "methods: [scripted]", "methods: [scripted, magic]", 1),
			// Every registered method is named, sorted (the list grows
			// with each method compiled in).
			[]string{`"magic" is not a known method (` + strings.Join(registeredNames(), ", ") + `)`}},
		{"primary outside an AND chain", strings.Replace(scriptedConfig, "methods: [scripted]", "methods: [scripted]\n      primary: scripted", 1),
			[]string{`routes[0].authenticate.primary: applies to require_all chains only`}},
		{"primary not listed", strings.Replace(scriptedConfig, "methods: [scripted]", "methods: [scripted]\n      require_all: true\n      primary: jwt", 1),
			[]string{`routes[0].authenticate.primary: "jwt" is not one of the route's methods`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := config.Parse("gatehouse.yaml", []byte(tc.yaml), func(string) (string, bool) { return "", false })
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				o, ok := cfg.Routes[0].Authenticate.Options(string(scripted)).(*scriptedOptions)
				if !ok || o.Header != "X-Script" || !slices.Equal(o.Accept, []string{"open-sesame"}) {
					t.Fatalf("options %#v", cfg.Routes[0].Authenticate.Options(string(scripted)))
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestScriptedInSchema(t *testing.T) {
	var s struct {
		Properties struct {
			Routes struct {
				Items struct {
					Properties struct {
						Authenticate struct {
							Properties map[string]struct {
								Properties map[string]any `json:"properties"`
							} `json:"properties"`
						} `json:"authenticate"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"routes"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(config.JSONSchema(), &s); err != nil {
		t.Fatal(err)
	}
	block, ok := s.Properties.Routes.Items.Properties.Authenticate.Properties[string(scripted)]
	if !ok || block.Properties["accept"] == nil || block.Properties["header"] == nil {
		t.Fatalf("schema of routes[].authenticate lacks the scripted block: %+v", s.Properties.Routes.Items.Properties.Authenticate.Properties)
	}
}

// TestScriptedThroughListener builds a plan with the scripted method and
// serves it on a real listener in front of a real upstream.
func TestScriptedThroughListener(t *testing.T) {
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		_, _ = io.WriteString(w, "upstream")
	}))
	defer up.Close()
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(strings.Replace(scriptedConfig, "http://127.0.0.1:1", up.URL, 1)+"audit: {disabled: true}\naccess_log: {disabled: true}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Build(cfg, file, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plan.ServeHTTP(w, r, "main") }))
	defer gw.Close()

	for _, tc := range []struct {
		name      string
		token     string
		status    int
		challenge string
	}{
		{"no credential", "", 401, `Script realm="gatehouse"`},
		{"bad credential", "nope", 401, `Script realm="gatehouse"`},
		{"good credential", "open-sesame", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			req, _ := http.NewRequest("GET", gw.URL+"/s/x", nil)
			if tc.token != "" {
				req.Header.Set("X-Script", tc.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("challenge %q, want %q", got, tc.challenge)
			}
			if tc.status != 200 {
				return
			}
			if seen.Get("X-Auth-Method") != "scripted" || seen.Get("X-Auth-Subject") != "script:open-sesame" {
				t.Errorf("identity headers: %v", seen)
			}
			if seen.Get("X-Script") != "" {
				t.Error("the credential header reached the upstream")
			}
		})
	}

	// explain: the method places its credential on the synthetic request.
	m, ok := registry.Lookup(scripted)
	if !ok {
		t.Fatal("not registered")
	}
	r := httptest.NewRequest("GET", "http://gatehouse.test/s/x", nil)
	if err := m.Present(r, "open-sesame", cfg); err != nil {
		t.Fatal(err)
	}
	out := plan.Inspect(r, nil, true)
	if out.Status != 200 || !slices.Contains(out.Steps, `authenticate: scripted: ok, subject="script:open-sesame"`) {
		t.Fatalf("explain: %d %q", out.Status, out.Steps)
	}
}

// TestNotEvaluated: a method that cannot be evaluated offline refuses
// with an error that says why, never an identity.
func TestNotEvaluated(t *testing.T) {
	a := registry.NotEvaluated("mtls", "no CA bundle")
	id, err := a.Authenticate(httptest.NewRequest("GET", "/", nil))
	var ne *registry.NotEvaluatedError
	if id != nil || !errors.As(err, &ne) || ne.Why != "no CA bundle" || a.Method() != "mtls" {
		t.Fatalf("%v %v", id, err)
	}
}

func registeredNames() []string {
	var out []string
	for _, n := range registry.Names() {
		out = append(out, string(n))
	}
	return out
}
