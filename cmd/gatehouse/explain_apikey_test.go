package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminclient"
	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// explainKeys stores a consumer with an active, a revoked and a
// route-restricted key and returns their plaintexts.
func explainKeys(t *testing.T, st apikey.Store) (good, revoked, restricted string) {
	t.Helper()
	ctx := context.Background()
	hasher, _ := apikey.NewHasher(nil)
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "acme", CreatedAt: time.Now().UTC()}
	if err := st.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	issue := func(edit func(*apikey.Key)) string {
		plain, _ := apikey.Format{}.Generate()
		k := &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: hasher.Hash(plain), Hint: apikey.Hint(plain),
			Scopes: []string{"orders:read"}, Status: apikey.StatusActive, CreatedAt: time.Now().UTC()}
		if edit != nil {
			edit(k)
		}
		if err := st.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	return issue(nil), issue(func(k *apikey.Key) { k.Status = apikey.StatusRevoked }), issue(func(k *apikey.Key) { k.Routes = []string{"billing"} })
}

func explainConfig(t *testing.T, store string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	cfg := "listeners: [{name: main, address: \"127.0.0.1:0\"}]\napi_keys:\n" + store + `routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["http://127.0.0.1:9"]}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExplainAPIKeys: explain judges API keys as the gateway does, from
// the configured store opened read-only (valid key 200, revoked 401), and
// when it cannot open the store it says so and exits 1 instead of dropping
// the method.
func TestExplainAPIKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (yaml string, st apikey.Store)
		note  string
	}{
		{"embedded", func(t *testing.T) (string, apikey.Store) {
			path := filepath.Join(t.TempDir(), "keys.db")
			st, err := boltstore.Open(path, boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("  store: {type: embedded, path: %q}\n", path), st
		}, "opened read-only"},
		{"postgres", func(t *testing.T) (string, apikey.Store) {
			dsn := pgtest.TestDSN(t)
			schema := pgtest.FreshSchema(t, dsn)
			st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s}\n", dsn, schema), st
		}, "read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml, st := tc.store(t)
			good, revoked, restricted := explainKeys(t, st)
			if tc.name == "embedded" {
				_ = st.Close() // a stopped gateway
			} else {
				t.Cleanup(func() { _ = st.Close() })
			}
			cfg := explainConfig(t, yaml)
			for _, c := range []struct {
				name, key, want string
			}{
				{"valid key", good, "result: 200"},
				{"revoked key", revoked, "result: 401 key_revoked"},
				{"key for another route", restricted, "result: 401 key_route_not_allowed"},
				{"unknown key", func() string { k, _ := apikey.Format{}.Generate(); return k }(), "result: 401 key_unknown"},
			} {
				code, out, errOut := cli(t, "explain", "-c", cfg, "--api-key", c.key, "/orders/1")
				if code != exitOK || !strings.Contains(out, c.want) || !strings.Contains(out, tc.note) {
					t.Errorf("%s: exit %d, want 0 and %q\n%s%s", c.name, code, c.want, out, errOut)
				}
				if strings.Contains(out+errOut, c.key) {
					t.Errorf("%s: the output echoes the key", c.name)
				}
			}
		})
	}

	t.Run("embedded store locked by a running gateway", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys.db")
		st, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close() // held open for writing, as a running gateway does
		good, _, _ := explainKeys(t, st)
		cfg := explainConfig(t, fmt.Sprintf("  store: {type: embedded, path: %q}\n", path))
		code, out, errOut := cli(t, "explain", "-c", cfg, "--api-key", good, "/orders/1")
		if code != exitError {
			t.Errorf("exit %d, want 1", code)
		}
		for _, want := range []string{"locked by a running gateway", "api_key: NOT EVALUATED", "result: NOT EVALUATED"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(errOut, "cannot be evaluated offline") {
			t.Errorf("stderr: %s", errOut)
		}
		// A malformed key needs no store: judged, and explain succeeds.
		code, out, _ = cli(t, "explain", "-c", cfg, "--api-key", "gate_live_nope", "/orders/1")
		if code != exitOK || !strings.Contains(out, "result: 401 key_malformed") {
			t.Errorf("malformed key: exit %d\n%s", code, out)
		}
	})
}

// TestExplainWithGatewayRunning: while a gateway process holds the
// embedded store, explain looks the presented key up through that
// gateway's admin API, says so, and gives the gateway's own answer.
func TestExplainWithGatewayRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	proxyPort, adminPort := freePort(t), freePort(t)
	token, hash := newAdminToken()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:%d"}]
admin: {address: "127.0.0.1:%d", token_hash: %q}
api_keys:
  store: {type: embedded, path: %q}
routes:
  - name: orders
    match: {path_prefix: /orders}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["builtin:echo"]}
`, proxyPort, adminPort, hash, filepath.Join(dir, "keys.db"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	startGateway(t, bin, cfgPath, dir, adminURL)

	ctx := context.Background()
	ac := &adminclient.Client{BaseURL: adminURL, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
	if _, err := ac.CreateConsumer(ctx, adminclient.NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	good, err := ac.CreateKey(ctx, "acme", adminclient.NewKey{Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ac.CreateKey(ctx, "acme", adminclient.NewKey{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.RevokeKey(ctx, revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := apikey.Format{}.Generate()

	t.Setenv(adminTokenEnv, token)
	for _, c := range []struct {
		name, key string
		status    int
		want      string
	}{
		{"valid key", good.Secret, 200, "result: 200"},
		{"revoked key", revoked.Secret, 401, "result: 401 key_revoked"},
		{"unknown key", unknown, 401, "result: 401 key_unknown"},
	} {
		// What the gateway answers …
		r, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/orders/1", proxyPort), nil)
		r.Header.Set("X-API-Key", c.key)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Fatalf("%s: the gateway answered %d, want %d", c.name, res.StatusCode, c.status)
		}
		// … is what explain says, and how it found out.
		code, out, errOut := cli(t, "explain", "-c", cfgPath, "--api-key", c.key, "/orders/1")
		if code != exitOK || !strings.Contains(out, c.want) || !strings.Contains(out, "looked up through its admin API at "+adminURL) {
			t.Errorf("%s: exit %d, want 0, %q and the admin API note\n%s%s", c.name, code, c.want, out, errOut)
		}
	}

	// Without a token explain cannot ask, and says so.
	t.Setenv(adminTokenEnv, "")
	code, out, _ := cli(t, "explain", "-c", cfgPath, "--api-key", good.Secret, "/orders/1")
	if code != exitError || !strings.Contains(out, "NOT EVALUATED") {
		t.Errorf("no token: exit %d\n%s", code, out)
	}
}
