package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/adminapi"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// bodyRecorder keeps every request body that passes to the admin API.
type bodyRecorder struct {
	next   http.Handler
	mu     sync.Mutex
	bodies bytes.Buffer
}

func (b *bodyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.bodies.WriteString(r.URL.String() + "\n")
	b.bodies.Write(data)
	b.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(data))
	b.next.ServeHTTP(w, r)
}

func (b *bodyRecorder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bodies.String()
}

// TestTokensRoundTrip drives the tokens commands against the real admin
// API over an embedded store: revoke by token file (only the hash leaves
// the CLI), by subject and by blocked subject, list, unrevoke.
func TestTokensRoundTrip(t *testing.T) {
	dir := isolate(t)
	store, err := boltstore.Open(filepath.Join(dir, "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	token, hash := newAdminToken()
	sum, _ := hex.DecodeString(strings.TrimPrefix(hash, "sha256:"))
	rec := &bodyRecorder{next: adminapi.New(adminapi.Config{Revocations: &revocation.Service{Store: store}, TokenHash: sum, Log: slog.New(slog.DiscardHandler)})}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	t.Setenv(adminTokenEnv, token)
	run := func(t *testing.T, wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, append(args, "--admin", srv.URL)...)
		if code != wantCode {
			t.Fatalf("gatehouse %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout + stderr
	}

	const leaked = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	tokenFile := filepath.Join(dir, "leaked.txt")
	if err := os.WriteFile(tokenFile, []byte("Bearer "+leaked+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(leaked))
	out := run(t, exitOK, "tokens", "revoke", "--token-from", tokenFile, "--reason", "pasted in a ticket")
	if !strings.Contains(out, hex.EncodeToString(want[:])) || strings.Contains(out, leaked) {
		t.Errorf("revoke --token-from printed:\n%s", out)
	}
	if strings.Contains(rec.String(), leaked) || strings.Contains(rec.String(), "c2lnbmF0dXJl") {
		t.Fatal("the token itself reached the admin API")
	}
	run(t, exitOK, "tokens", "revoke", "--subject", "alice", "--subject", "bob", "--issuer", "https://idp.example")
	run(t, exitOK, "tokens", "revoke", "--issuer", "https://idp.example", "--subject", "mallory", "--block", "--until", "2099-01-01T00:00:00Z")

	out = run(t, exitOK, "tokens", "list", "--json")
	var list struct{ Revocations []revocation.Entry }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	kinds := map[revocation.Kind]int{}
	var blockID string
	for _, e := range list.Revocations {
		kinds[e.Kind]++
		if e.Kind == revocation.KindIssuerSubject {
			blockID = e.ID
		}
	}
	if kinds[revocation.KindToken] != 1 || kinds[revocation.KindSubject] != 2 || kinds[revocation.KindIssuerSubject] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	out = run(t, exitOK, "tokens", "list")
	if !strings.HasPrefix(out, "ID ") || strings.Count(out, "\n") != 5 {
		t.Errorf("tokens list:\n%s", out)
	}
	run(t, exitOK, "tokens", "unrevoke", blockID)
	run(t, exitError, "tokens", "unrevoke", blockID)
	if out := run(t, exitOK, "tokens", "list"); strings.Contains(out, "mallory") {
		t.Errorf("unrevoked entry still listed:\n%s", out)
	}
}

func TestTokensUsageErrors(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "revoke"}, "exactly one of"},
		{[]string{"tokens", "revoke", "--jti", "a", "--subject", "b"}, "exactly one of"},
		{[]string{"tokens", "revoke", "--jti", "a", "--block"}, "--block goes with --subject"},
		{[]string{"tokens", "revoke", "--subject", "a", "--block"}, "--block needs --issuer"},
		{[]string{"tokens", "revoke", "--subject", "a", "--before", "yesterday"}, "RFC 3339"},
		{[]string{"tokens", "nope"}, "unknown command"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, tc.args...)
			if code != exitUsage || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("exit %d, output:\n%s%s", code, stdout, stderr)
			}
		})
	}
}
