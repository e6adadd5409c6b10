package gateway

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// TestReloadSwitchesToPostgresStore: a reload moves a running gateway from
// its embedded key store to PostgreSQL (no restart): the new store's keys
// work, its LISTEN/NOTIFY connection is up (and exported as a gauge), a
// revocation by another replica reaches the cache through it, and the
// gauge falls to 0 when that connection is cut.
func TestReloadSwitchesToPostgresStore(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	up := newUpstream(t, "orders")
	embedded := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
	postgres := fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s}\n", viaProxy, schema)
	tg := startGateway(t, apiKeyConfig(embedded, up.URL)).serve()
	call := func(key string) int {
		t.Helper()
		r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		r.Header.Set("X-API-Key", key)
		res, _ := do(t, r)
		return res.StatusCode
	}
	local, _, _ := issueKey(t, tg, "acme", nil)
	if got := call(local); got != 200 {
		t.Fatalf("embedded store key: %d", got)
	}
	if _, ok := tg.scrape(t).value("gatehouse_apikey_store_listener_up", nil); ok {
		t.Fatal("a listener gauge without a postgres store")
	}

	tg.writeConfig(apiKeyConfig(postgres, up.URL))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := call(local); got != 401 {
		t.Fatalf("embedded store key after switching to PostgreSQL: %d, want 401", got)
	}
	remote, remoteKey, _ := issueKey(t, tg, "acme", nil)
	// The creation's notification drops the new key from the cache when it
	// arrives; let it arrive before caching the key.
	time.Sleep(300 * time.Millisecond)
	if got := call(remote); got != 200 {
		t.Fatalf("PostgreSQL store key: %d", got)
	}
	tg.scrape(t).want(t, "gatehouse_apikey_store_listener_up", labels{"store": "postgres"}, 1)

	// Another replica revokes the (cached) key: NOTIFY reaches this one.
	other, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now().UTC()
	remoteKey.Status, remoteKey.RevokedAt = apikey.StatusRevoked, &now
	if err := other.UpdateKey(context.Background(), remoteKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation to reach the cache", 10*time.Second, func() bool { return call(remote) == 401 })

	proxy.Close() // cuts every connection, the listener's included
	waitFor(t, "the listener gauge to fall", 10*time.Second, func() bool {
		v, ok := tg.scrape(t).value("gatehouse_apikey_store_listener_up", labels{"store": "postgres"})
		return ok && v == 0
	})
}
