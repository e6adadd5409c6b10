package pipeline

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestInspectNeverDropsAMethod: a plan built without its API-key store (as
// validate builds it) still has the api_key method; inspecting a request
// that carries a key says the method was not evaluated, instead of
// answering as if it did not exist.
func TestInspectNeverDropsAMethod(t *testing.T) {
	cfg, file, err := config.Parse("t.yaml", []byte(`
listeners: [{name: main, address: "127.0.0.1:0"}]
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["http://127.0.0.1:9"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Disabled, cfg.AccessLog.Disabled = true, true
	for _, tc := range []struct {
		name string
		keys func(t *testing.T) *APIKeys
	}{
		{"no store at all", func(*testing.T) *APIKeys { return nil }},
		{"offline runtime", func(t *testing.T) *APIKeys {
			k, err := OfflineAPIKeys(cfg.APIKeys, "test: store not opened")
			if err != nil {
				t.Fatal(err)
			}
			return k
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true, APIKeys: tc.keys(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			key, _ := apikey.Format{}.Generate()
			r := httptest.NewRequest("GET", "http://gatehouse.test/orders/1", nil)
			r.Header.Set("X-API-Key", key)
			out := p.Inspect(r, nil, true)
			if out.NotEvaluated == "" || out.Reason != "not_evaluated" || out.Status == 200 || out.Status == 401 {
				t.Fatalf("outcome %+v: the api_key method must be reported as not evaluated", out)
			}
			if !strings.Contains(strings.Join(out.Steps, "\n"), "NOT EVALUATED") {
				t.Fatalf("steps do not say so:\n%s", strings.Join(out.Steps, "\n"))
			}
		})
	}
}
