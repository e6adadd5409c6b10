package introspect_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Reset sets the clock to the real time: call it after minting a token,
// whose nbf (whole seconds) must not be after the clock.
func (c *clock) Reset() {
	c.mu.Lock()
	c.t = time.Now()
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// gatewayYAML is a configuration with one provider (the test IdP) that
// introspects; block is the provider's introspection block (indented by
// 6), routeExtra more keys of the route's authenticate.
func gatewayYAML(idp *testidp.Provider, block, methods, routeExtra, upstream string) string {
	if upstream == "" {
		upstream = "http://127.0.0.1:1"
	}
	return `identity_providers:
  - name: idp
    issuer: ` + idp.Issuer + `
    audiences: [` + idp.Audience + `]
    insecure_allow_http: true
    clock_skew: 0s
    introspection:
      client_id: ` + idp.ClientID + `
` + block + `
routes:
  - name: api
    match: {path_prefix: /}
    authenticate:
      methods: ` + methods + `
` + routeExtra + `
    upstream: {targets: ["` + upstream + `"]}
audit: {disabled: true}
access_log: {disabled: true}
`
}

func parse(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("gatehouse.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}

// basicBlock authenticates with client_secret_basic.
func basicBlock(idp *testidp.Provider, more string) string {
	return "      client_secret: " + idp.ClientSecret + "\n" + more
}

// introspector builds the provider's introspector on clk.
func introspector(t testing.TB, idp *testidp.Provider, block string, clk *clock, obs introspect.ProviderObserver) *introspect.Introspector {
	t.Helper()
	cfg := parse(t, gatewayYAML(idp, block, "[introspection]", "", ""))
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	in, err := introspect.NewIntrospector(cfg.IdentityProviders[0], introspect.Deps{Now: now, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func authenticate(a authn.Authenticator, token string) (*identity.Identity, error) {
	return a.Authenticate(bearer(token))
}

// reasonOf is the failure's reason, the unavailable error's (prefixed
// "503:"), or "" for success.
func reasonOf(err error) string {
	var f *authn.Failure
	var u *authn.UnavailableError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &f):
		return string(f.Reason)
	case errors.As(err, &u):
		return "503:" + string(u.Reason)
	}
	return "other:" + err.Error()
}

// countingObserver counts what an Introspector reports.
type countingObserver struct {
	mu      sync.Mutex
	hits    int
	misses  int
	results map[introspect.Result]int
}

func (o *countingObserver) CacheLookup(hit bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if hit {
		o.hits++
	} else {
		o.misses++
	}
}

func (o *countingObserver) Call(_ time.Duration, r introspect.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.results == nil {
		o.results = map[introspect.Result]int{}
	}
	o.results[r]++
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") + "\n"
}
