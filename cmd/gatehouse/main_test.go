package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
)

// cli runs the command line in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runCLI(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // on stdout
	}{
		{[]string{"--help"}, "Usage:\n  gatehouse <command> [flags]"},
		{[]string{"-h"}, "Usage:\n  gatehouse <command> [flags]"},
		{[]string{"help"}, "Usage:\n  gatehouse <command> [flags]"},
		{[]string{"run", "--help"}, "Usage: gatehouse run [-c FILE]"},
		{[]string{"run", "-h"}, "Usage: gatehouse run [-c FILE]"},
		{[]string{"validate", "--help"}, "Usage: gatehouse validate -c FILE"},
		{[]string{"validate", "-h"}, "Usage: gatehouse validate -c FILE"},
		{[]string{"schema", "--help"}, "Usage: gatehouse schema"},
		{[]string{"schema", "-h"}, "Usage: gatehouse schema"},
		{[]string{"version", "--help"}, "Usage: gatehouse version"},
		{[]string{"version", "-h"}, "Usage: gatehouse version"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.args...)
			if code != exitOK {
				t.Errorf("exit code %d, want 0", code)
			}
			if !strings.Contains(stdout, tc.want) {
				t.Errorf("stdout does not contain %q:\n%s", tc.want, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr should be empty, got:\n%s", stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"no command", nil, "Usage:\n  gatehouse <command>"},
		{"unknown command", []string{"serve"}, `gatehouse: unknown command "serve"`},
		{"unknown flag on run", []string{"run", "--config", "x.yaml"}, "flag provided but not defined: -config"},
		{"unknown flag on validate", []string{"validate", "-x"}, "flag provided but not defined: -x"},
		{"flag without its value", []string{"validate", "-c"}, "flag needs an argument: -c"},
		{"unknown flag on schema", []string{"schema", "--pretty"}, "flag provided but not defined: -pretty"},
		{"unknown flag on version", []string{"version", "-v"}, "flag provided but not defined: -v"},
		{"extra argument to run", []string{"run", "-c", "x.yaml", "extra"}, `gatehouse run: unexpected argument "extra"`},
		{"extra argument to validate", []string{"validate", "x.yaml"}, `gatehouse validate: unexpected argument "x.yaml"`},
		{"extra argument to schema", []string{"schema", "extra"}, `gatehouse schema: unexpected argument "extra"`},
		{"extra argument to version", []string{"version", "extra"}, `gatehouse version: unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not contain %q:\n%s", tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty, got:\n%s", stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := cli(t, "version")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "gatehouse ") || !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("want one line starting with \"gatehouse \", got %q", stdout)
	}
	if strings.TrimSpace(strings.TrimPrefix(stdout, "gatehouse ")) == "" {
		t.Fatalf("no version after the name: %q", stdout)
	}
}

func TestSchema(t *testing.T) {
	code, stdout, stderr := cli(t, "schema")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Fatalf("output is not valid JSON:\n%s", stdout)
	}
	if stdout != string(config.JSONSchema()) {
		t.Fatal("output differs from config.JSONSchema()")
	}
	committed, err := os.ReadFile("../../docs/gatehouse.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(committed) {
		t.Fatal("output differs from docs/gatehouse.schema.json; run: go test ./internal/config -run TestSchemaInSync -update")
	}
}

func TestValidateQuickstart(t *testing.T) {
	const path = "../../examples/quickstart.yaml"
	code, stdout, stderr := cli(t, "validate", "-c", path)
	if code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	if !strings.HasPrefix(stdout, path+": valid (") {
		t.Fatalf("stdout = %q", stdout)
	}
}

// TestValidateExamples checks that every shipped example that is a gateway
// configuration passes `gatehouse validate`, which also compiles it.
func TestValidateExamples(t *testing.T) {
	// examples/partner-mtls.yaml reads its certificates from
	// GATEHOUSE_MTLS_DIR, as its comment shows: dev-ca makes them.
	mtlsDir := filepath.Join(t.TempDir(), "ca")
	if code, _, stderr := cli(t, "dev-ca", "-dir", mtlsDir); code != exitOK {
		t.Fatalf("dev-ca: %s", stderr)
	}
	t.Setenv("GATEHOUSE_MTLS_DIR", mtlsDir)
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	validated := 0
	for _, f := range files {
		if !isGatewayConfig(t, f) {
			continue
		}
		validated++
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, stdout, stderr := cli(t, "validate", "-c", f)
			if code != exitOK {
				t.Fatalf("exit code %d:\n%s", code, stderr)
			}
			if !strings.HasPrefix(stdout, f+": valid (") {
				t.Fatalf("stdout = %q", stdout)
			}
		})
	}
	if validated == 0 {
		t.Fatal("no example gateway configuration found in ../../examples")
	}
}

// isGatewayConfig tells gateway configurations from other YAML files that
// may live in examples/ (such as policy test cases): a gateway config is a
// mapping with a top-level routes key.
func isGatewayConfig(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return true // not parseable: let validate say why
	}
	_, hasRoutes := top["routes"]
	_, isPolicyCases := top["policy_cases"]
	return hasRoutes && !isPolicyCases
}

// errorLineRE is the form of every reported problem: file:line:column: message.
var errorLineRE = regexp.MustCompile(`^.+:\d+:\d+: \S.*$`)

// TestValidateReportsEveryError writes broken files with several problems
// each and checks that validate reports all of them, each at its place.
func TestValidateReportsEveryError(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // every error line, in order, after "FILE:"
	}{
		{
			name: "decoding errors",
			src: `listner: []
admin:
  adress: "127.0.0.1:9901"
log: {level: loud, format: json}
lifecycle:
  drain_timeout: 30
routes:
  - name: a
    match: {path_prefix: /, hosts: example.com}
    upstream: {targets: ["builtin:echo"]}
    max_body_bytes: 1.5MiB
    max_body_bytes: 1MiB
`,
			want: []string{
				`1:1: listner: unknown key "listner" (did you mean "listeners"?)`,
				`3:3: admin.adress: unknown key "adress" (did you mean "address"?)`,
				`4:14: log.level: "loud" is not one of: debug, info, warn, error`,
				`6:18: lifecycle.drain_timeout: invalid duration "30" (use a number with a unit, e.g. 5s, 250ms, 1m)`,
				`9:36: routes[0].match.hosts: expected a list, got the value "example.com"`,
				`11:21: routes[0].max_body_bytes: "1.5MiB": invalid size (use bytes or a unit: 512KiB, 10MiB, 1GB)`,
				`12:5: routes[0].max_body_bytes: duplicate key "max_body_bytes"`,
			},
		},
		{
			name: "validation errors",
			src: `listeners:
  - address: "localhost"
routes:
  - name: "bad name!"
    match: {path: /a, path_prefix: /b}
    upstream:
      targets: ["http://user:hunter2@backend:8080"]
      timeouts: {dial: 0s}
  - name: second
    match:
      path: /items/{id}
      methods: [get]
    upstream:
      targets: []
`,
			want: []string{
				`2:14: listeners[0].address: "localhost" is not host:port`,
				`4:5: routes[0]: route "bad name!" has no authentication: add authenticate, or set public: true (routes are authenticated by default)`,
				`4:11: routes[0].name: "bad name!": use letters, digits, '.', '_' and '-' (at most 64)`,
				`5:12: routes[0].match: set either path or path_prefix, not both`,
				`7:17: routes[0].upstream.targets[0]: "http://REDACTED@backend:8080": credentials in the URL are not allowed`,
				`8:24: routes[0].upstream.timeouts.dial: must be greater than 0`,
				`9:5: routes[1]: route "second" has no authentication: add authenticate, or set public: true (routes are authenticated by default)`,
				`12:17: routes[1].match.methods[0]: "get" is not an upper-case HTTP method (e.g. GET)`,
				`14:16: routes[1].upstream.targets: at least one target is required`,
			},
		},
		{
			name: "invalid YAML",
			src:  "log:\n  level: info\n   format: json\nroutes: []\n",
			want: []string{`3:1: invalid YAML: yaml: line 3: mapping values are not allowed in this context`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.yaml")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cli(t, "validate", "-c", path)
			if code != exitError {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty, got %q", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			want := make([]string, 0, len(tc.want)+1)
			for _, w := range tc.want {
				want = append(want, path+":"+w)
			}
			want = append(want, strconv.Itoa(len(tc.want))+" error(s)")
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
			}
			for _, l := range lines[:len(lines)-1] {
				if !errorLineRE.MatchString(l) || !strings.HasPrefix(l, path+":") {
					t.Errorf("not in file:line:column form: %q", l)
				}
			}
			if strings.Contains(stderr, "hunter2") {
				t.Error("a credential from the file was printed")
			}
		})
	}
}

func TestValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	code, stdout, stderr := cli(t, "validate", "-c", path)
	if code != exitError {
		t.Errorf("exit code %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout should be empty, got %q", stdout)
	}
	if !strings.Contains(stderr, path) {
		t.Errorf("stderr does not name the file:\n%s", stderr)
	}
}

// TestRunRefusesInvalidConfig checks that run stops before binding anything
// when the file is invalid or missing.
func TestRunRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("routes: []\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"invalid", broken, broken + `:2:1: bogus: unknown key "bogus"`},
		{"missing", filepath.Join(dir, "absent.yaml"), "absent.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "run", "-c", tc.path)
			if code != exitError {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty, got %q", stdout)
			}
			if !strings.Contains(stderr, "gatehouse: invalid configuration:") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", stderr, tc.want)
			}
		})
	}
}
