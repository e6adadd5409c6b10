package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/authn/basic"
)

// runUsers runs "gatehouse users …" with stdin as the password input.
func runUsers(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	old := usersStdin
	usersStdin = strings.NewReader(stdin)
	defer func() { usersStdin = old }()
	var out, errOut bytes.Buffer
	code := runCLI(append([]string{"users"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func usersOf(t *testing.T, path string) map[string]*basic.User {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	users, err := basic.ParseUsersFile(data)
	if err != nil {
		t.Fatalf("the CLI wrote a file the gateway refuses: %v", err)
	}
	m := map[string]*basic.User{}
	for _, u := range users {
		m[u.Name] = u
	}
	return m
}

func TestUsersCLI(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users")

	// hash: stdin in, PHC out; a password on the command line is refused.
	code, out, errOut := runUsers(t, "pa55word\n", "hash")
	h, err := basic.ParseHash(strings.TrimSpace(out))
	if code != 0 || err != nil || !h.Verify([]byte("pa55word")) || h.Params != basic.DefaultParams {
		t.Fatalf("users hash: %d %q %q %v", code, out, errOut, err)
	}
	if code, _, _ := runUsers(t, "", "hash", "pa55word"); code != exitUsage {
		t.Fatalf("users hash with the password as an argument: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runUsers(t, "", "hash"); code != exitError {
		t.Fatalf("users hash with no password: exit %d", code)
	}
	if code, _, _ := runUsers(t, "x\n", "hash", "--memory", "1024"); code != exitUsage {
		t.Fatalf("users hash with weak parameters: exit %d", code)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"add alice", "alice-pw\n", []string{"add", "--file", file, "--name", "alice", "--roles", "admin,ops", "--scopes", "orders:read"}, 0},
		{"add bob", "bob-pw\n", []string{"add", "--file", file, "--name", "bob"}, 0},
		{"add twice", "x\n", []string{"add", "--file", file, "--name", "bob"}, exitError},
		{"add bad name", "x\n", []string{"add", "--file", file, "--name", "a:b"}, exitUsage},
		{"add plaintext hash", "", []string{"add", "--file", file, "--name", "carol", "--hash", "hunter2"}, exitError},
		{"add without file", "x\n", []string{"add", "--name", "carol"}, exitUsage},
		{"set-password", "new-pw\n", []string{"set-password", "--file", file, "--name", "alice"}, 0},
		{"set-password unknown", "x\n", []string{"set-password", "--file", file, "--name", "nobody"}, exitError},
		{"remove bob", "", []string{"remove", "--file", file, "--name", "bob"}, 0},
		{"remove unknown", "", []string{"remove", "--file", file, "--name", "bob"}, exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runUsers(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			if strings.Contains(out+errOut, "hunter2") || strings.Contains(out+errOut, "-pw") {
				t.Fatalf("output echoes a password: %s%s", out, errOut)
			}
		})
	}
	users := usersOf(t, file)
	alice := users["alice"]
	if len(users) != 1 || alice == nil || !alice.Hash.Verify([]byte("new-pw")) || alice.Hash.Verify([]byte("alice-pw")) ||
		strings.Join(alice.Roles, ",") != "admin,ops" || strings.Join(alice.Scopes, ",") != "orders:read" {
		t.Fatalf("users file after the edits: %+v", users)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode: %v %v", fi.Mode(), err)
	}

	// list never prints a hash.
	code, out, _ = runUsers(t, "", "list", "--file", file)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "m=19456,t=2,p=1") || strings.Contains(out, "$argon2id$") {
		t.Fatalf("users list: %d\n%s", code, out)
	}
	code, out, _ = runUsers(t, "", "list", "--file", file, "--json")
	var rows []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["name"] != "alice" || strings.Contains(out, "$argon2id$") {
		t.Fatalf("users list --json: %d\n%s", code, out)
	}

	// import: bcrypt lines of an htpasswd file pass; a file with an MD5
	// or plaintext line writes nothing and names the line, never its
	// content.
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy"), 10)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(good, []byte("# apache\nlegacy:"+strings.Replace(string(bc), "$2a$", "$2y$", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "htpasswd.bad")
	if err := os.WriteFile(bad, []byte("old:$apr1$abcdefgh$secretsecretsecret\nplain:hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runUsers(t, "", "import", "--file", file, "--from", bad)
	if code != exitError || !strings.Contains(errOut, `line 1 (user "old")`) || !strings.Contains(errOut, `line 2 (user "plain")`) ||
		strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "secretsecret") {
		t.Fatalf("import of MD5 and plaintext: %d\n%s%s", code, out, errOut)
	}
	if len(usersOf(t, file)) != 1 {
		t.Fatal("a refused import wrote users")
	}
	if code, out, errOut := runUsers(t, "", "import", "--file", file, "--from", good, "--roles", "legacy"); code != 0 {
		t.Fatalf("import: %d %s%s", code, out, errOut)
	}
	u := usersOf(t, file)["legacy"]
	if u == nil || u.Hash.Alg != basic.Bcrypt || !u.Hash.Verify([]byte("legacy")) || strings.Join(u.Roles, ",") != "legacy" {
		t.Fatalf("imported user: %+v", u)
	}
	if code, _, _ := runUsers(t, "", "import", "--file", file, "--from", good); code != exitError {
		t.Fatalf("import of an existing user without --replace: exit %d", code)
	}
}

// TestUsersCLIStore: the same commands against the key store named by the
// configuration: the embedded store (gateway stopped) and PostgreSQL.
func TestUsersCLIStore(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"embedded", func(t *testing.T) string { return "{type: embedded, path: " + filepath.Join(dir, "keys.db") + "}" }},
		{"postgres", func(t *testing.T) string {
			dsn := pgtest.TestDSN(t)
			return "{type: postgres, dsn: \"" + dsn + "\", schema: " + pgtest.FreshSchema(t, dsn) + "}"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
			if err := os.WriteFile(cfg, []byte("api_keys:\n  store: "+tc.store(t)+"\nroutes:\n  - name: r\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"builtin:echo\"]}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			st := []string{"--store", "-c", cfg}
			for _, step := range []struct {
				stdin string
				args  []string
				code  int
			}{
				{"alice-pw\n", append([]string{"add", "--name", "alice", "--roles", "admin"}, st...), 0},
				{"x\n", append([]string{"add", "--name", "alice"}, st...), exitError},
				{"new-pw\n", append([]string{"set-password", "--name", "alice"}, st...), 0},
				{"bob-pw\n", append([]string{"add", "--name", "bob"}, st...), 0},
				{"", append([]string{"remove", "--name", "bob"}, st...), 0},
				{"", append([]string{"remove", "--name", "bob"}, st...), exitError},
				{"", []string{"list", "--store", "--file", "x", "-c", cfg}, exitUsage},
			} {
				if code, out, errOut := runUsers(t, step.stdin, step.args...); code != step.code {
					t.Fatalf("users %v: exit %d, want %d\n%s%s", step.args, code, step.code, out, errOut)
				}
			}
			code, out, errOut := runUsers(t, "", append([]string{"list", "--json"}, st...)...)
			var rows []map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["name"] != "alice" || strings.Contains(out, "$argon2id$") {
				t.Fatalf("users list --store: %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestExplainBasic: explain judges a Basic credential against the users
// file (as over HTTPS), telling a right password from a wrong one.
func TestExplainBasic(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if code, _, errOut := runUsers(t, "pw1\n", "add", "--file", users, "--name", "alice", "--roles", "admin"); code != 0 {
		t.Fatal(errOut)
	}
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(`routes:
  - name: legacy
    match: {path_prefix: /legacy}
    authenticate:
      methods: [basic]
      basic: {users_file: `+users+`}
    authorize: {roles: {any_of: [admin]}}
    upstream: {targets: ["builtin:echo"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cred, want string }{
		{"basic=alice:pw1", "result: 200"},
		{"basic=alice:nope", "result: 401 password_mismatch"},
		{"basic=bob:pw1", "result: 401 user_unknown"},
	} {
		var out, errOut bytes.Buffer
		runCLI([]string{"explain", "-c", cfg, "--credential", tc.cred, "/legacy/x"}, &out, &errOut)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("explain --credential %s: want %q in\n%s%s", tc.cred, tc.want, out.String(), errOut.String())
		}
	}
}
