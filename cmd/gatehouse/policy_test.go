package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyTestExamples(t *testing.T) {
	var out, errb bytes.Buffer
	code := runCLI([]string{"policy", "test", "-c", "../../examples/policy.yaml", "../../examples/policy-cases.yaml"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "0 failed") {
		t.Errorf("want every case to pass:\n%s", out.String())
	}
}

func TestPolicyTestMismatch(t *testing.T) {
	cases := filepath.Join(t.TempDir(), "cases.yaml")
	data := `# policy_cases
issuers: [{name: idp, issuer: https://idp.example.com}]
cases:
  - name: wrong expectation
    request: {method: GET, path: /users/alice}
    token: {issuer: idp, claims: {sub: bob, scope: "users:read"}}
    expect: {allow: true}
`
	if err := os.WriteFile(cases, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runCLI([]string{"policy", "test", "-c", "../../examples/policy.yaml", cases}, &out, &errb)
	if code != exitError {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "wrong expectation") || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("want a FAIL row:\n%s", out.String())
	}
}

func TestPolicyTestUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "cases.yaml")
	if err := os.WriteFile(bad, []byte("cases:\n  - name: x\n    request: {path: /}\n    expect: {status: 200}\n    bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no cases file", []string{"policy", "test", "-c", "../../examples/policy.yaml"}},
		{"unknown field", []string{"policy", "test", "-c", "../../examples/policy.yaml", bad}},
		{"missing config", []string{"policy", "test", "-c", "nonexistent.yaml", "../../examples/policy-cases.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runCLI(tc.args, &out, &errb); code != exitUsage {
				t.Errorf("exit %d, want 2\nstderr:\n%s", code, errb.String())
			}
		})
	}
}

func TestExplainUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown method", []string{"--credential", "magic=x", "/users/a"}, `"magic" is not a known method (api_key, basic, introspection, jwt`},
		{"no value", []string{"--credential", "jwt", "/users/a"}, "give METHOD=VALUE"},
		{"one method twice", []string{"--credential", "jwt=a", "--token", "b", "/users/a"}, "jwt given twice"},
		{"identity and a credential", []string{"--identity-json", `{"subject":"a"}`, "--credential", "jwt=a", "/users/a"}, "--identity-json skips authentication"},
		{"identity with an unknown method", []string{"--identity-json", `{"subject":"a","credentials":[{"method":"magic"},{"method":"jwt"}]}`, "/users/a"}, `"magic" is not a known method`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"explain", "-c", "../../examples/policy.yaml"}, tc.args...)
			if code := runCLI(args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errb.String())
			}
		})
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "identity denied by a rule",
			args: []string{"--method", "DELETE", "--identity-json", `{"subject":"bob","roles":["user"]}`, "/users/alice"},
			want: []string{"route: users", "authenticate: skipped", "methods[1].roles.any_of: FAIL", "expression: FAIL", "result: 403 role_missing"},
		},
		{
			name: "no credential",
			args: []string{"--method", "DELETE", "/admin/users/1"},
			want: []string{"route: admin", "authenticate: jwt: no credential", "authenticate: api_key: no credential", "result: 401 credential_missing"},
		},
		{
			name: "HEAD is explained as GET",
			args: []string{"--method", "HEAD", "--identity-json", `{"subject":"alice","scopes":["profile"]}`, "/users/alice"},
			want: []string{"route: users", "methods[0]: pass (applies to HEAD)", "methods[0].scopes.any_of: FAIL", "result: 403 scope_missing"},
		},
		{
			name: "request hygiene",
			args: []string{"--method", "GET", "/catalogue/a;b"},
			want: []string{"request hygiene: refused: path-parameter", "result: 400 path-parameter"},
		},
		{
			name: "no route",
			args: []string{"/nowhere"},
			want: []string{"route: none matches", "result: 404"},
		},
		{
			name: "wrong method",
			args: []string{"--method", "POST", "/catalogue/x"},
			want: []string{"not method POST", "result: 405"},
		},
		{
			name: "a credential of a registered method",
			args: []string{"--method", "DELETE", "--credential", "jwt=opaque-token", "/admin/users/1"},
			want: []string{"route: admin", "authenticate: jwt: no credential of this kind", "result: 401 token_unsupported"},
		},
		{
			name: "composite identity",
			args: []string{"--method", "DELETE", "--identity-json",
				`{"subject":"bob","roles":["admin"],"credentials":[{"method":"api_key","id":"k1","subject":"c1"},{"method":"jwt","subject":"bob","key_binding":{"kind":"jkt","value":"abc"}}]}`, "/users/alice"},
			want: []string{"(method api_key,jwt)", `given credential api_key subject="c1" id="k1"`, `given credential jwt subject="bob" cnf.jkt=abc`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"explain", "-c", "../../examples/policy.yaml"}, tc.args...)
			if code := runCLI(args, &out, &errb); code != exitOK {
				t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
