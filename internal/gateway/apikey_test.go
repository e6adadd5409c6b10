package gateway

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// issueKey creates a consumer and a key directly in the gateway's store
// (the admin API and CLI build on the same store calls).
func issueKey(t *testing.T, tg *testGateway, consumer string, mutate func(*apikey.Key)) (string, *apikey.Key, *apikey.Consumer) {
	t.Helper()
	keys := tg.APIKeys()
	ctx := context.Background()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: consumer, Groups: []string{"partners"}, CreatedAt: time.Now().UTC()}
	if err := keys.Store.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	plain, err := keys.Format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k := &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: keys.Hasher.Hash(plain), Hint: apikey.Hint(plain),
		Scopes: []string{"orders:read"}, Status: apikey.StatusActive, CreatedAt: time.Now().UTC()}
	if mutate != nil {
		mutate(k)
	}
	if err := keys.Store.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	return plain, k, c
}

func apiKeyConfig(store, upstream string) string {
	return header + "audit: {output: stderr}\napi_keys:\n" + store +
		"routes:\n" + fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", upstream)
}

func TestAPIKeysThroughGateway(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"embedded", func(t *testing.T) string {
			return fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
		}},
		{"postgres", func(t *testing.T) string {
			dsn := pgtest.TestDSN(t)
			return fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s}\n", dsn, pgtest.FreshSchema(t, dsn))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, "orders")
			tg := startGateway(t, apiKeyConfig(tc.store(t), up.URL)).serve()
			good, key, consumer := issueKey(t, tg, "acme", nil)
			revoked, rk, _ := issueKey(t, tg, "revoked-co", func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
			past := time.Now().Add(-time.Minute).UTC()
			expired, _, _ := issueKey(t, tg, "expired-co", func(k *apikey.Key) { k.ExpiresAt = &past })

			req := func(key string) (*http.Response, []byte) {
				r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
				if key != "" {
					r.Header.Set("X-API-Key", key)
				}
				return do(t, r)
			}
			res, body := req(good)
			if res.StatusCode != 200 {
				t.Fatalf("valid key: %d %s", res.StatusCode, body)
			}
			h := decodeReceived(t, body).Headers
			if h.Get("X-Auth-Subject") != consumer.ID || h.Get("X-Auth-Method") != "api_key" ||
				h.Get("X-Auth-Scopes") != "orders:read" || h.Get("X-Auth-Groups") != "partners" {
				t.Fatalf("identity headers %v", h)
			}
			if _, sent := h["X-Api-Key"]; sent {
				t.Fatal("the API key was forwarded upstream")
			}

			// Malformed, unknown, revoked and expired keys look the same to
			// the client; only the audit event knows why.
			unknown, _ := tg.APIKeys().Format.Generate()
			var firstBody string
			for _, bad := range []struct{ key, reason string }{
				{"gate_live_not-a-key", "key_malformed"},
				{unknown, "key_unknown"},
				{revoked, "key_revoked"},
				{expired, "key_expired"},
			} {
				res, body := req(bad.key)
				p := problemBody(t, res, body, 401, "unauthorized")
				if res.Header.Get("WWW-Authenticate") != `ApiKey realm="gatehouse"` {
					t.Fatalf("%s: WWW-Authenticate %q", bad.reason, res.Header.Get("WWW-Authenticate"))
				}
				if firstBody == "" {
					firstBody = fmt.Sprint(p["detail"])
				} else if fmt.Sprint(p["detail"]) != firstBody {
					t.Fatalf("%s: detail %q differs from %q: an oracle", bad.reason, p["detail"], firstBody)
				}
				evs := tg.auditEvents(t)
				if last := evs[len(evs)-1]; last["reason"] != bad.reason {
					t.Fatalf("audit %v, want %s", last, bad.reason)
				}
			}
			evs := tg.auditEvents(t)
			var sawRevokedID bool
			for _, ev := range evs {
				if ev["credential_id"] == rk.ID {
					sawRevokedID = true
				}
				for _, secret := range []string{good, revoked, expired} {
					if strings.Contains(fmt.Sprint(ev), secret) {
						t.Fatal("a key reached the audit log")
					}
				}
			}
			if !sawRevokedID {
				t.Fatal("the audit events do not name the revoked key id")
			}

			// Revocation on this instance takes effect at once, cache or not.
			now := time.Now().UTC()
			key.Status, key.RevokedAt = apikey.StatusRevoked, &now
			if err := tg.APIKeys().Store.UpdateKey(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			tg.APIKeys().Invalidate(key.ID)
			if res, body := req(good); res.StatusCode != 401 {
				t.Fatalf("revoked key still works: %d %s", res.StatusCode, body)
			}
		})
	}
}

func TestAPIKeyStoreDownFailsClosed(t *testing.T) {
	up := newUpstream(t, "orders")
	tg := startGateway(t, apiKeyConfig(fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db")), up.URL)).serve()
	good, _, _ := issueKey(t, tg, "acme", nil)
	if err := tg.APIKeys().Backing().Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
	r.Header.Set("X-API-Key", good)
	res, body := do(t, r)
	problemBody(t, res, body, 503, "service-unavailable")
}

// TestStaticAPIKeys: keys declared as hashes in the configuration work with
// no store at all, and a reload that removes one stops it at once.
func TestStaticAPIKeys(t *testing.T) {
	up := newUpstream(t, "orders")
	format := apikey.Format{}
	plain, _ := format.Generate()
	hasher, _ := apikey.NewHasher(nil)
	hash := fmt.Sprintf("sha256:%x", hasher.Hash(plain))
	withKey := fmt.Sprintf("  store: {type: static}\n  static:\n    - {id: partner-static, consumer: partner, hash: %q, scopes: [orders:read], groups: [partners]}\n", hash)
	tg := startGateway(t, apiKeyConfig(withKey, up.URL)).serve()
	call := func() (*http.Response, []byte) {
		r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		r.Header.Set("Authorization", "ApiKey "+plain)
		return do(t, r)
	}
	res, body := call()
	if res.StatusCode != 200 {
		t.Fatalf("static key: %d %s", res.StatusCode, body)
	}
	if h := decodeReceived(t, body).Headers; h.Get("X-Auth-Client-Id") != "partner" || h.Get("X-Auth-Scopes") != "orders:read" {
		t.Fatalf("identity headers %v", h)
	}
	other := fmt.Sprintf("  store: {type: static}\n  static:\n    - {id: other, consumer: other, hash: \"sha256:%s\"}\n", strings.Repeat("ab", 32))
	tg.writeConfig(apiKeyConfig(other, up.URL))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if res, _ := call(); res.StatusCode != 401 {
		t.Fatalf("removed static key still works: %d", res.StatusCode)
	}
}
