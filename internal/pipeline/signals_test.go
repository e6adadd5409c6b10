package pipeline

import (
	"io"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestSecurityEndpointsMount: the Shared Signals and leak-report
// endpoints are mounted on every host (a request reaches them, not the
// catch-all route), and a route claiming one of their paths is a
// configuration error.
func TestSecurityEndpointsMount(t *testing.T) {
	const signals = `
revocation: {enabled: true}
api_keys: {store: {type: embedded, path: /tmp/never-opened.db}}
shared_signals:
  path: /ssf/events
  transmitters:
    - name: t
      issuer: https://t.example
      jwks_uri: https://t.example/jwks
      audience: [a]
      push_token: push-token-0123456789
leak_reports: {path: /leaks, bearer_token: ` + "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" + `}
`
	for _, tc := range []struct {
		name, routes, wantErr string
	}{
		{"under a catch-all", "routes:\n  - {name: all, public: true, match: {path_prefix: /}, upstream: {targets: [\"builtin:echo\"]}}\n", ""},
		{"a route takes the SSF path", "routes:\n  - {name: ssf, public: true, match: {path: /ssf/events}, upstream: {targets: [\"builtin:echo\"]}}\n", "two owners"},
		{"a route takes the leak path", "routes:\n  - {name: leaks, public: true, match: {path_prefix: /leaks}, upstream: {targets: [\"builtin:echo\"]}}\n", "two owners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, file, err := config.Parse("test.yaml", []byte(signals+tc.routes), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			url := listen(t, p)
			for path, want := range map[string]int{"/ssf/events": 401, "/leaks": 401} {
				res, err := noRedirect(t).Post(url+path, "application/json", strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != want {
					t.Errorf("POST %s = %d, want %d", path, res.StatusCode, want)
				}
			}
		})
	}
}
