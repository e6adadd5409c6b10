package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/adminapi"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
)

// isolate runs the test in an empty directory (no gatehouse.yaml, no token
// file) with $GATEHOUSE_ADMIN_TOKEN unset.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(adminTokenEnv, "")
	return dir
}

// realAdmin serves the real admin API over an embedded store in a
// temporary directory and returns its URL and a valid token.
func realAdmin(t *testing.T) (url, token string) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	token, hash := newAdminToken()
	sum, err := hex.DecodeString(strings.TrimPrefix(hash, "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	h := adminapi.New(adminapi.Config{Service: &keymgmt.Service{Store: store}, TokenHash: sum, Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, token
}

func TestKeysHelp(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		args []string
		want string // on stdout
	}{
		{[]string{"--help"}, "  keys         Create, list"},
		{[]string{"consumers", "--help"}, "Usage: gatehouse consumers <command>"},
		{[]string{"consumers", "help"}, "Usage: gatehouse consumers <command>"},
		{[]string{"consumers", "create", "--help"}, "Usage: gatehouse consumers create --name NAME"},
		{[]string{"consumers", "list", "-h"}, "Usage: gatehouse consumers list"},
		{[]string{"consumers", "show", "--help"}, "Usage: gatehouse consumers show ID|NAME"},
		{[]string{"consumers", "delete", "--help"}, "Usage: gatehouse consumers delete ID|NAME"},
		{[]string{"keys", "--help"}, "Usage: gatehouse keys <command>"},
		{[]string{"keys", "create", "--help"}, "Usage: gatehouse keys create --consumer ID|NAME"},
		{[]string{"keys", "list", "--help"}, "Usage: gatehouse keys list [--consumer ID|NAME]"},
		{[]string{"keys", "show", "--help"}, "Usage: gatehouse keys show KEY_ID"},
		{[]string{"keys", "show", "k_1", "--help"}, "Usage: gatehouse keys show KEY_ID"},
		{[]string{"keys", "rotate", "--help"}, "Usage: gatehouse keys rotate KEY_ID [--grace 24h]"},
		{[]string{"keys", "revoke", "--help"}, "Usage: gatehouse keys revoke KEY_ID"},
		{[]string{"admin-token", "--help"}, "Usage: gatehouse admin-token"},
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

func TestKeysUsageErrors(t *testing.T) {
	isolate(t)
	t.Setenv(adminTokenEnv, "gha_unused") // usage is checked before any call
	for _, tc := range []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"consumers without command", []string{"consumers"}, "Usage: gatehouse consumers <command>"},
		{"keys without command", []string{"keys"}, "Usage: gatehouse keys <command>"},
		{"unknown consumers command", []string{"consumers", "rename"}, `gatehouse consumers: unknown command "rename"`},
		{"unknown keys command", []string{"keys", "delete"}, `gatehouse keys: unknown command "delete"`},
		{"create consumer without name", []string{"consumers", "create"}, "gatehouse consumers create: --name is required"},
		{"bad metadata", []string{"consumers", "create", "--name", "a", "--meta", "novalue"}, `want key=value, got "novalue"`},
		{"duplicate metadata", []string{"consumers", "create", "--name", "a", "--meta", "k=1", "--meta", "k=2"}, `key "k" given twice`},
		{"list with argument", []string{"consumers", "list", "extra"}, `gatehouse consumers list: unexpected argument "extra"`},
		{"show without id", []string{"consumers", "show"}, "gatehouse consumers show: missing ID|NAME"},
		{"delete without id", []string{"consumers", "delete", "--json"}, "gatehouse consumers delete: missing ID|NAME"},
		{"create key without consumer", []string{"keys", "create", "--name", "ci"}, "gatehouse keys create: --consumer is required"},
		{"bad expiry", []string{"keys", "create", "--consumer", "a", "--expires-in", "30d"}, `--expires-in "30d": want a positive duration`},
		{"negative expiry", []string{"keys", "create", "--consumer", "a", "--expires-in", "-1h"}, `--expires-in "-1h"`},
		{"empty scope", []string{"keys", "create", "--consumer", "a", "--scope", ""}, "empty value"},
		{"show key without id", []string{"keys", "show"}, "gatehouse keys show: missing KEY_ID"},
		{"show two keys", []string{"keys", "show", "k_1", "k_2"}, `gatehouse keys show: unexpected argument "k_2"`},
		{"rotate without id", []string{"keys", "rotate", "--grace", "1h"}, "gatehouse keys rotate: missing KEY_ID"},
		{"bad grace", []string{"keys", "rotate", "k_1", "--grace", "soon"}, `--grace "soon"`},
		{"revoke without id", []string{"keys", "revoke"}, "gatehouse keys revoke: missing KEY_ID"},
		{"unknown flag", []string{"keys", "list", "--all"}, "flag provided but not defined: -all"},
		{"flag without value", []string{"keys", "list", "--consumer"}, "flag needs an argument: -consumer"},
		{"bad admin URL", []string{"keys", "list", "--admin", "127.0.0.1:9901"}, `--admin "127.0.0.1:9901": want http://host:port`},
		{"admin-token with argument", []string{"admin-token", "extra"}, `gatehouse admin-token: unexpected argument "extra"`},
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

	t.Run("no token anywhere", func(t *testing.T) {
		t.Setenv(adminTokenEnv, "")
		code, stdout, stderr := cli(t, "keys", "list", "--admin", "http://127.0.0.1:1")
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "no admin token") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// echoRoute completes a configuration that only needs to be valid.
const echoRoute = "routes:\n  - {name: echo, public: true, match: {path_prefix: /}, upstream: {targets: [\"builtin:echo\"]}}\n"

var secretRE = regexp.MustCompile(`gate_live_[0-9A-Za-z_]+`)

// TestKeysLifecycle drives the real admin API through the command line.
func TestKeysLifecycle(t *testing.T) {
	isolate(t)
	url, token := realAdmin(t)
	t.Setenv(adminTokenEnv, token)
	run := func(t *testing.T, args ...string) (stdout, stderr string) {
		t.Helper()
		code, stdout, stderr := cli(t, append(args, "--admin", url)...)
		if code != exitOK {
			t.Fatalf("gatehouse %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, token) {
			t.Fatalf("gatehouse %s printed the admin token", strings.Join(args, " "))
		}
		return stdout, stderr
	}

	out, _ := run(t, "consumers", "create", "--name", "acme", "--group", "partners", "--tag", "eu", "--meta", "team=payments", "--meta", "env=prod")
	if !regexp.MustCompile(`(?m)^Created consumer acme \(c_\S+\)\.$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^Groups:\s+partners$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^Metadata:\s+env=prod,team=payments$`).MatchString(out) {
		t.Errorf("consumers create:\n%s", out)
	}
	run(t, "consumers", "create", "--name", "globex-corporation")

	out, _ = run(t, "consumers", "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("consumers list:\n%s", out)
	}
	// Columns are aligned: NAME starts at the same offset on every line.
	col := strings.Index(lines[0], "NAME")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "acme ") && !strings.HasPrefix(l[col:], "globex-corporation ") {
			t.Errorf("consumers list is not aligned:\n%s", out)
		}
	}

	out, _ = run(t, "consumers", "show", "acme", "--json")
	var consumer struct {
		ID, Name string
		Groups   []string
	}
	if err := json.Unmarshal([]byte(out), &consumer); err != nil || consumer.Name != "acme" || len(consumer.Groups) != 1 {
		t.Fatalf("consumers show --json: %v\n%s", err, out)
	}

	// keys create prints the secret exactly once, with the warning.
	out, stderr := run(t, "keys", "create", "--consumer", "acme", "--name", "ci", "--scope", "orders:read", "--scope", "orders:write", "--expires-in", "720h")
	secret := secretRE.FindString(out)
	if secret == "" || strings.Count(out, secret) != 1 || strings.Contains(stderr, secret) {
		t.Fatalf("keys create: secret not printed exactly once on stdout:\n%s", out)
	}
	if !strings.Contains(out, secretNotice) || !regexp.MustCompile(`(?m)^Scopes:\s+orders:read,orders:write$`).MatchString(out) {
		t.Errorf("keys create:\n%s", out)
	}
	keyID := regexp.MustCompile(`(?m)^ID:\s+(k_\S+)$`).FindStringSubmatch(out)
	if keyID == nil {
		t.Fatalf("keys create shows no key id:\n%s", out)
	}

	out, _ = run(t, "keys", "list", "--consumer", "acme")
	if !regexp.MustCompile(`(?m)^ID\s+CONSUMER\s+NAME\s+HINT\s+STATUS\s+SCOPES\s+EXPIRES\s+LAST USED$`).MatchString(out) ||
		!strings.Contains(out, keyID[1]) || strings.Contains(out, secret) {
		t.Errorf("keys list:\n%s", out)
	}
	out, _ = run(t, "keys", "list", "--consumer", "globex-corporation")
	if strings.Count(out, "\n") != 1 {
		t.Errorf("keys list of a consumer without keys:\n%s", out)
	}

	out, _ = run(t, "keys", "show", keyID[1])
	if !regexp.MustCompile(`(?m)^Status:\s+active$`).MatchString(out) || strings.Contains(out, secret) {
		t.Errorf("keys show:\n%s", out)
	}

	out, _ = run(t, "keys", "rotate", keyID[1], "--grace", "0s")
	newSecret := secretRE.FindString(out)
	if newSecret == "" || newSecret == secret || strings.Count(out, newSecret) != 1 || !strings.Contains(out, secretNotice) {
		t.Fatalf("keys rotate: new secret not printed exactly once:\n%s", out)
	}
	if !strings.Contains(out, "The old key "+keyID[1]+" has stopped working.") {
		t.Errorf("keys rotate --grace 0s:\n%s", out)
	}
	newID := regexp.MustCompile(`(?m)^ID:\s+(k_\S+)$`).FindStringSubmatch(out)

	out, _ = run(t, "keys", "rotate", newID[1], "--grace", "1h", "--json")
	var rotated struct {
		Key      struct{ ID string }
		Secret   string
		Previous struct {
			ID        string
			ExpiresAt *string `json:"expires_at"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.Previous.ID != newID[1] || rotated.Previous.ExpiresAt == nil || !strings.HasPrefix(rotated.Secret, "gate_live_") {
		t.Errorf("keys rotate --json: %v\n%s", err, out)
	}

	out, _ = run(t, "keys", "revoke", rotated.Key.ID)
	if !regexp.MustCompile(`(?m)^Status:\s+revoked$`).MatchString(out) || !regexp.MustCompile(`(?m)^Revoked:\s+\S+$`).MatchString(out) {
		t.Errorf("keys revoke:\n%s", out)
	}

	out, _ = run(t, "keys", "list", "--json")
	var keys struct{ Keys []struct{ ID string } }
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys.Keys) != 3 {
		t.Errorf("keys list --json: %v\n%s", err, out)
	}

	run(t, "consumers", "delete", "acme")
	code, stdout, stderr := cli(t, "consumers", "show", "acme", "--admin", url)
	if code != exitError || stdout != "" || !strings.Contains(stderr, "(HTTP 404)") {
		t.Errorf("show of a deleted consumer: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Validation errors list every invalid field.
	code, _, stderr = cli(t, "consumers", "create", "--name", "bad name!", "--group", "x y", "--admin", url)
	if code != exitError || !strings.Contains(stderr, "(HTTP 400)") || !strings.Contains(stderr, "\n  name: ") || !strings.Contains(stderr, "\n  groups[0]: ") {
		t.Errorf("invalid consumer: exit %d\nstderr:\n%s", code, stderr)
	}

	// A wrong token is refused, and neither token is printed.
	t.Setenv(adminTokenEnv, "gha_wrong-token")
	code, stdout, stderr = cli(t, "consumers", "list", "--admin", url)
	if code != exitError || stdout != "" || !strings.Contains(stderr, "(HTTP 401)") || !strings.Contains(stderr, "check the admin token") ||
		strings.Contains(stderr, "gha_wrong-token") {
		t.Errorf("wrong token: exit %d\nstderr:\n%s", code, stderr)
	}
}

// fakeAdmin answers every request with one canned answer and records the
// Authorization headers it received.
type fakeAdmin struct {
	status      int
	contentType string
	body        string

	mu    sync.Mutex
	auths []string
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", f.contentType)
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

func (f *fakeAdmin) lastAuth() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auths) == 0 {
		return ""
	}
	return f.auths[len(f.auths)-1]
}

func TestKeysErrorRendering(t *testing.T) {
	isolate(t)
	const token = "gha_secret-admin-token"
	t.Setenv(adminTokenEnv, token)
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        []string // on stderr
	}{
		{
			name: "problem with fields", status: 400, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:invalid-request","title":"Invalid request","status":400,"detail":"one or more fields are invalid","errors":[{"field":"scopes[0]","message":"must be printable"},{"field":"expires_in","message":"must be positive"}]}`,
			want: []string{"gatehouse: Invalid request (HTTP 400): one or more fields are invalid\n", "  scopes[0]: must be printable\n", "  expires_in: must be positive\n"},
		},
		{
			name: "conflict", status: 409, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:conflict","title":"Conflict","status":409,"detail":"key was already rotated"}`,
			want: []string{"gatehouse: Conflict (HTTP 409): key was already rotated\n"},
		},
		{
			name: "unavailable", status: 503, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:store-unavailable","title":"Key store unavailable","status":503}`,
			want: []string{"gatehouse: Key store unavailable (HTTP 503)\n"},
		},
		{
			name: "not a problem", status: 502, contentType: "text/plain", body: "upstream down",
			want: []string{"gatehouse: Bad Gateway (HTTP 502): upstream down\n"},
		},
		{
			name: "unauthorized", status: 401, contentType: "application/problem+json",
			body: `{"type":"urn:gatehouse:problem:admin-unauthorized","title":"Admin token missing or invalid","status":401}`,
			want: []string{"gatehouse: Admin token missing or invalid (HTTP 401)\n", "check the admin token"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeAdmin{status: tc.status, contentType: tc.contentType, body: tc.body})
			defer srv.Close()
			code, stdout, stderr := cli(t, "keys", "create", "--consumer", "acme", "--admin", srv.URL)
			if code != exitError {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty, got:\n%s", stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, token) {
				t.Errorf("stderr shows the admin token:\n%s", stderr)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		code, stdout, stderr := cli(t, "consumers", "list", "--admin", srv.URL)
		if code != exitError || stdout != "" || !strings.Contains(stderr, "gatehouse: admin API at "+srv.URL) || strings.Contains(stderr, token) {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

// TestAdminTokenPrecedence checks where the URL and token come from:
// $GATEHOUSE_ADMIN_TOKEN, then --token-file, then admin.token_file of the
// configuration (default gatehouse-admin.token in the working directory).
func TestAdminTokenPrecedence(t *testing.T) {
	fake := &fakeAdmin{status: 200, contentType: "application/json", body: `{"consumers":[]}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")

	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		env      string
		files    map[string]string // in the working directory
		args     []string
		wantAuth string
		wantCode int
		wantErr  string
	}{
		{name: "environment first", env: "gha_env",
			files: map[string]string{"flag.token": "gha_flag\n", "gatehouse-admin.token": "gha_default\n"},
			args:  []string{"--admin", srv.URL, "--token-file", "flag.token"}, wantAuth: "Bearer gha_env"},
		{name: "token file flag second",
			files: map[string]string{"flag.token": "  gha_flag\n", "gatehouse-admin.token": "gha_default\n"},
			args:  []string{"--admin", srv.URL, "--token-file", "flag.token"}, wantAuth: "Bearer gha_flag"},
		{name: "default token file last",
			files: map[string]string{"gatehouse-admin.token": "gha_default\n"},
			args:  []string{"--admin", srv.URL}, wantAuth: "Bearer gha_default"},
		{name: "address and token file from the configuration",
			files: map[string]string{
				"gatehouse.yaml": "admin:\n  address: \"0.0.0.0:" + port + "\"\n  token_file: my.token\n" + echoRoute,
				"my.token":       "gha_configured\n", "gatehouse-admin.token": "gha_default\n"},
			wantAuth: "Bearer gha_configured"},
		{name: "configuration named with -c",
			files: map[string]string{"other.yaml": "admin:\n  address: \"127.0.0.1:" + port + "\"\n" + echoRoute, "gatehouse-admin.token": "gha_default\n"},
			args:  []string{"-c", "other.yaml"}, wantAuth: "Bearer gha_default"},
		{name: "missing token file flag", env: "",
			args: []string{"--admin", srv.URL, "--token-file", "absent.token"}, wantCode: exitError, wantErr: "admin token file: open absent.token"},
		{name: "empty token file",
			files: map[string]string{"empty.token": "\n"},
			args:  []string{"--admin", srv.URL, "--token-file", "empty.token"}, wantCode: exitError, wantErr: "admin token file empty.token is empty"},
		{name: "missing configuration named with -c", env: "gha_env",
			args: []string{"-c", "absent.yaml"}, wantCode: exitError, wantErr: "reading absent.yaml"},
		{name: "admin listener disabled", env: "gha_env",
			files:    map[string]string{"gatehouse.yaml": "admin:\n  disabled: true\n" + echoRoute},
			wantCode: exitError, wantErr: "the admin listener is disabled in gatehouse.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolate(t)
			t.Setenv(adminTokenEnv, tc.env)
			for name, content := range tc.files {
				write(t, filepath.Join(dir, name), content)
			}
			fake.mu.Lock()
			fake.auths = nil
			fake.mu.Unlock()
			code, stdout, stderr := cli(t, append([]string{"consumers", "list"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout, stderr)
			}
			if tc.wantErr != "" {
				if !strings.Contains(stderr, tc.wantErr) {
					t.Errorf("stderr does not contain %q:\n%s", tc.wantErr, stderr)
				}
				return
			}
			if got := fake.lastAuth(); got != tc.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tc.wantAuth)
			}
			if strings.Contains(stdout+stderr, strings.TrimPrefix(tc.wantAuth, "Bearer ")) {
				t.Errorf("the admin token was printed:\n%s%s", stdout, stderr)
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		code, stdout, stderr := cli(t, "admin-token")
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("want 2 lines, got:\n%s", stdout)
		}
		token, hash := lines[0], lines[1]
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "gha_"))
		if !strings.HasPrefix(token, "gha_") || err != nil || len(raw) != 32 {
			t.Errorf("token %q: want gha_ and 32 base64url bytes (%v)", token, err)
		}
		sum := sha256.Sum256([]byte(token))
		if want := "sha256:" + hex.EncodeToString(sum[:]); hash != want {
			t.Errorf("hash %q, want %q", hash, want)
		}
		if seen[token] {
			t.Error("the same token twice")
		}
		seen[token] = true
	}
	// The hash is what the configuration accepts.
	_, hash := newAdminToken()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("admin:\n  token_hash: %q\n"+echoRoute, hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, "validate", "-c", cfg); code != exitOK {
		t.Errorf("a configuration with the printed hash is invalid:\n%s", stderr)
	}
}
