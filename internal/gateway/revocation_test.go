package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// revocationConfig is a gateway with a JWT route, the revocation list on,
// over store (an api_keys.store block), with a known admin token.
func revocationConfig(idp *testidp.Provider, upstream, store, extra string) string {
	return `
listeners:
  - name: main
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
` + adminTokenYAML() + `audit: {output: stderr}
identity_providers:
` + providerYAML("idp", idp, "") + `api_keys:
  store: ` + store + `
revocation:
  enabled: true
` + extra + `routes:
` + authedRoute("api", "/api", upstream, "")
}

// adminCall sends an admin API request with the admin token.
func adminCall(t *testing.T, adminURL, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, adminURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, req)
}

func revoke(t *testing.T, adminURL string, body map[string]any) string {
	t.Helper()
	res, data := adminCall(t, adminURL, http.MethodPost, "/v1/revocations", body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/revocations = %d: %s", res.StatusCode, data)
	}
	var out struct{ Revocations []struct{ ID string } }
	if err := json.Unmarshal(data, &out); err != nil || len(out.Revocations) == 0 {
		t.Fatalf("POST /v1/revocations: %v %s", err, data)
	}
	return out.Revocations[0].ID
}

// TestRevocationThroughGateway: tokens revoked through the admin API are
// refused at once with 401 invalid_token and a neutral description, the
// one served from the verified-token cache a moment before included; each
// kind of entry; removal restores access; audit reason codes.
func TestRevocationThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	store := fmt.Sprintf("{type: embedded, path: %q}", filepath.Join(t.TempDir(), "keys.db"))
	tg := startGateway(t, revocationConfig(idp, up.URL, store, "")).serve()
	tg.waitReady(t)
	call := func(tok string) (int, string) {
		t.Helper()
		res, body := bearer(t, tg.url+"/api/x", tok, nil)
		return res.StatusCode, res.Header.Get("WWW-Authenticate") + " " + string(body)
	}
	hits := func() float64 {
		v, _ := tg.scrape(t).value("gatehouse_jwt_cache_lookups_total", map[string]string{"result": "hit"})
		return v
	}

	t.Run("a cached token revoked by jti is refused at once", func(t *testing.T) {
		tok := idp.Mint(t, map[string]any{"sub": "alice", "jti": "jti-cached"})
		for range 2 {
			if code, body := call(tok); code != 200 {
				t.Fatalf("before revocation: %d %s", code, body)
			}
		}
		before := hits()
		if code, _ := call(tok); code != 200 || hits() <= before {
			t.Fatalf("the token was not served from the verified-token cache (hits %v → %v)", before, hits())
		}
		revoke(t, tg.adminURL, map[string]any{"kind": "jti", "issuer": idp.Issuer, "values": []string{"jti-cached"}, "reason": "test"})
		code, body := call(tok)
		if code != 401 || !strings.Contains(body, `error="invalid_token"`) || !strings.Contains(body, "no longer valid") {
			t.Fatalf("after revocation: %d %s", code, body)
		}
		if strings.Contains(body, "jti") || strings.Contains(body, "revoked by") {
			t.Fatalf("the answer says too much: %s", body)
		}
		other := idp.Mint(t, map[string]any{"sub": "alice", "jti": "jti-other"})
		if code, body := call(other); code != 200 {
			t.Fatalf("another token of the subject: %d %s", code, body)
		}
	})

	for _, tc := range []struct {
		name       string
		claims     map[string]any
		entry      func(tok string) map[string]any
		wantReason string
	}{
		{"token hash", map[string]any{"sub": "carol", "jti": nil}, func(tok string) map[string]any {
			sum := sha256.Sum256([]byte(tok))
			return map[string]any{"kind": "token", "values": []string{hex.EncodeToString(sum[:])}}
		}, "token_revoked"},
		{"subject before now", map[string]any{"sub": "dave", "iat": time.Now().Add(-time.Minute).Unix()}, func(string) map[string]any {
			return map[string]any{"kind": "subject", "issuer": idp.Issuer, "values": []string{"dave"}}
		}, "subject_revoked"},
		{"client", map[string]any{"sub": "erin", "client_id": "leaky-app"}, func(string) map[string]any {
			return map[string]any{"kind": "client", "values": []string{"leaky-app"}}
		}, "token_revoked"},
		{"blocked subject", map[string]any{"sub": "frank"}, func(string) map[string]any {
			return map[string]any{"kind": "issuer_subject", "issuer": idp.Issuer, "values": []string{"frank"}}
		}, "subject_revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := idp.Mint(t, tc.claims)
			if code, body := call(tok); code != 200 {
				t.Fatalf("before: %d %s", code, body)
			}
			id := revoke(t, tg.adminURL, tc.entry(tok))
			if code, body := call(tok); code != 401 {
				t.Fatalf("after revocation: %d %s", code, body)
			}
			var found bool
			for _, ev := range tg.auditEvents(t) {
				found = found || (ev["reason"] == tc.wantReason && ev["subject"] == tc.claims["sub"] && ev["outcome"] == "deny")
			}
			if !found {
				t.Errorf("no deny audit event with reason %s for %v", tc.wantReason, tc.claims["sub"])
			}
			if res, data := adminCall(t, tg.adminURL, http.MethodDelete, "/v1/revocations/"+id, nil); res.StatusCode != 204 {
				t.Fatalf("DELETE: %d %s", res.StatusCode, data)
			}
			if code, body := call(tok); code != 200 {
				t.Fatalf("after removal: %d %s", code, body)
			}
		})
	}

	t.Run("a token issued after a subject revocation works", func(t *testing.T) {
		old := idp.Mint(t, map[string]any{"sub": "grace", "iat": time.Now().Add(-time.Hour).Unix()})
		revoke(t, tg.adminURL, map[string]any{"kind": "subject", "issuer": idp.Issuer, "values": []string{"grace"},
			"before": time.Now().Add(-time.Minute).Format(time.RFC3339)})
		if code, _ := call(old); code != 401 {
			t.Fatalf("old token: %d", code)
		}
		if code, body := call(idp.Mint(t, map[string]any{"sub": "grace"})); code != 200 {
			t.Fatalf("new token: %d %s", code, body)
		}
	})
}

// replica is one gateway of the propagation test.
type replica struct {
	name string
	tg   *testGateway
}

// TestRevocationPropagation: three gateways on one PostgreSQL store.
// A token revoked through one's admin API is refused by all three; the
// time until the last refuses is measured over several trials. The third
// replica's LISTEN connection goes through a proxy that is then closed:
// it keeps refusing what it knew and picks up new revocations by polling
// (revocation.poll_interval).
func TestRevocationPropagation(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	direct := fmt.Sprintf("{type: postgres, dsn: %q, schema: %s}", dsn, schema)
	cutLater := fmt.Sprintf("{type: postgres, dsn: %q, listen_dsn: %q, schema: %s}", dsn, viaProxy, schema)
	var rs []replica
	for i, store := range []string{direct, direct, cutLater} {
		tg := startGateway(t, revocationConfig(idp, up.URL, store, "")).serve()
		tg.waitReady(t)
		rs = append(rs, replica{fmt.Sprintf("replica-%d", i+1), tg})
	}
	refused := func(r replica, tok string) bool {
		res, _ := bearer(t, r.tg.url+"/api/x", tok, nil)
		return res.StatusCode == 401
	}
	// measure revokes a fresh token through replica via and returns the
	// time until every replica refuses it.
	measure := func(t *testing.T, via int, bound time.Duration) time.Duration {
		t.Helper()
		jti := fmt.Sprintf("jti-%d", time.Now().UnixNano())
		tok := idp.Mint(t, map[string]any{"sub": "alice", "jti": jti})
		for _, r := range rs {
			if refused(r, tok) {
				t.Fatalf("%s refuses the token before its revocation", r.name)
			}
		}
		start := time.Now()
		revoke(t, rs[via].tg.adminURL, map[string]any{"kind": "jti", "issuer": idp.Issuer, "values": []string{jti}})
		if !refused(rs[via], tok) {
			t.Fatalf("%s, which took the revocation, still accepts the token", rs[via].name)
		}
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				for !refused(r, tok) {
					if time.Since(start) > 10*time.Second {
						t.Errorf("%s still accepts the token after 10s", r.name)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		if d > bound {
			t.Errorf("all replicas refused after %v, over the %v bound", d, bound)
		}
		return d
	}
	stats := func(ds []time.Duration) string {
		slices.Sort(ds)
		return fmt.Sprintf("min %v, median %v, max %v (%d trials)", ds[0].Round(time.Millisecond),
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	}

	var notify []time.Duration
	for i := range 10 {
		notify = append(notify, measure(t, i%3, time.Second))
	}
	t.Logf("propagation to 3 replicas by LISTEN/NOTIFY: %s", stats(notify))

	// Cut replica 3's notification channel: what it knew stays refused,
	// and new revocations reach it by polling.
	known := idp.Mint(t, map[string]any{"sub": "zed", "jti": "jti-known"})
	revoke(t, rs[0].tg.adminURL, map[string]any{"kind": "jti", "values": []string{"jti-known"}})
	waitFor(t, "replica-3 to refuse the known token", 5*time.Second, func() bool { return refused(rs[2], known) })
	proxy.Close()
	waitFor(t, "replica-3 to notice and poll (gatehouse_revocation_polling 1)", 5*time.Second, func() bool {
		v, ok := rs[2].tg.scrape(t).value("gatehouse_revocation_polling", nil)
		return ok && v == 1
	})
	for _, r := range rs[:2] {
		r.tg.scrape(t).want(t, "gatehouse_revocation_polling", nil, 0)
	}
	if v, _ := rs[0].tg.scrape(t).value("gatehouse_revocation_entries", nil); v != 11 {
		t.Errorf("gatehouse_revocation_entries = %v, want 11", v)
	}
	if !refused(rs[2], known) {
		t.Fatal("replica-3 forgot a revocation when its notification channel went down")
	}
	var polled []time.Duration
	for range 3 {
		// Poll interval 1s, plus the request and load times.
		polled = append(polled, measure(t, 0, 1500*time.Millisecond))
	}
	t.Logf("propagation with replica-3 polling (LISTEN cut): %s", stats(polled))
}
