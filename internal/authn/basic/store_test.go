package basic_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/authn/basic"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// startStoreGateway runs a route whose users are in the API-key store
// (storeYAML is the api_keys.store block), behind a real TLS listener.
func startStoreGateway(t *testing.T, storeYAML string) *gw {
	t.Helper()
	g := &gw{seen: make(chan http.Header, 1)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.seen <- r.Header.Clone():
		default:
		}
	}))
	t.Cleanup(up.Close)
	yaml := `api_keys:
  store: ` + storeYAML + `
routes:
  - name: legacy
    match: {path_prefix: /legacy}
    authenticate:
      methods: [basic]
      basic: {users_store: true, reload_interval: 100ms}
    upstream: {targets: ["` + up.URL + `"]}
audit: {disabled: true}
access_log: {disabled: true}
`
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Build(cfg, file, pipeline.Options{Resources: resource.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := plan.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plan.ServeHTTP(w, r, "main") }))
	t.Cleanup(srv.Close)
	g.url, g.client = srv.URL, srv.Client()
	return g
}

func storeUser(t *testing.T, name, pw string, roles ...string) *apikey.User {
	t.Helper()
	h, err := basic.HashPassword([]byte(pw), basic.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	return &apikey.User{Name: name, Hash: h, Roles: roles, UpdatedAt: time.Now()}
}

// TestEmbeddedStoreUsers: users written to the embedded store before the
// gateway starts (the CLI's path while the gateway is stopped) log in.
func TestEmbeddedStoreUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(context.Background(), storeUser(t, "alice", "alice-pw", "admin"), false); err != nil {
		t.Fatal(err)
	}
	// A hand-written plaintext row: that user is left out, the others work.
	if err := s.PutUser(context.Background(), &apikey.User{Name: "eve", Hash: "plaintext", UpdatedAt: time.Now()}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	g := startStoreGateway(t, "{type: embedded, path: "+path+"}")
	for _, tc := range []struct {
		user, pw string
		status   int
	}{
		{"alice", "alice-pw", 200},
		{"alice", "wrong", 401},
		{"eve", "plaintext", 401},
		{"nobody", "x", 401},
	} {
		res, _, seen := g.do(t, "/legacy/x", basicAuth(tc.user, tc.pw))
		if res.StatusCode != tc.status {
			t.Fatalf("%s/%s: status %d, want %d", tc.user, tc.pw, res.StatusCode, tc.status)
		}
		if tc.status == 200 && (seen.Get("X-Auth-Roles") != "admin" || seen.Get("Authorization") != "") {
			t.Fatalf("upstream headers %v", seen)
		}
	}
}

// TestPostgresStoreUsers: on the shared PostgreSQL store, a user added,
// re-passworded or removed by another process (the CLI, another replica)
// takes effect within reload_interval, and the verified-credential cache
// does not keep an old password alive.
func TestPostgresStoreUsers(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutUser(ctx, storeUser(t, "alice", "alice-pw"), false); err != nil {
		t.Fatal(err)
	}
	g := startStoreGateway(t, "{type: postgres, dsn: \""+dsn+"\", schema: "+schema+"}")
	status := func(user, pw string) int {
		res, _, _ := g.do(t, "/legacy/x", basicAuth(user, pw))
		return res.StatusCode
	}
	eventually := func(what string, user, pw string, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for status(user, pw) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s still not %d", what, user, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := status("alice", "alice-pw"); got != 200 {
		t.Fatalf("alice: %d", got)
	}
	if err := s.PutUser(ctx, storeUser(t, "bob", "bob-pw"), false); err != nil {
		t.Fatal(err)
	}
	eventually("added user", "bob", "bob-pw", 200)
	alice := storeUser(t, "alice", "new-pw")
	if err := s.PutUser(ctx, alice, true); err != nil {
		t.Fatal(err)
	}
	eventually("old password after set-password (cached before)", "alice", "alice-pw", 401)
	if got := status("alice", "new-pw"); got != 200 {
		t.Fatalf("new password: %d", got)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	eventually("removed user", "bob", "bob-pw", 401)
}
