package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReportsCELErrorsWithLocation: an invalid expression fails
// validate with file:line:column and the key path.
func TestValidateReportsCELErrorsWithLocation(t *testing.T) {
	for _, tc := range []struct{ name, expr, want string }{
		{"syntax error", `identity.subject ==`, "Syntax error"},
		{"unknown variable", `user.admin == true`, "undeclared reference"},
		{"not a boolean", `identity.subject`, "bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.yaml")
			src := `identity_providers:
  - {name: p, issuer: "https://i.example", audiences: [a]}
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [jwt]}
    authorize:
      expression: '` + tc.expr + `'
    upstream: {targets: ["builtin:echo"]}
`
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := runCLI([]string{"validate", "-c", path}, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1; stderr %s", code, errOut.String())
			}
			got := errOut.String()
			if !strings.Contains(got, path+":8:19: routes[0].authorize.expression: ") || !strings.Contains(got, tc.want) {
				t.Fatalf("stderr %q lacks the location or %q", got, tc.want)
			}
		})
	}
}
