package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// TestAPIKeyRefusalsAreIndistinguishable: every class of bad API key —
// malformed, unknown, revoked, expired, presented twice, and a valid key on
// a route (or route tag) it may not use — gets the byte-identical 401
// (status, headers, problem+json body) apart from the request id. Only the
// audit event tells them apart.
func TestAPIKeyRefusalsAreIndistinguishable(t *testing.T) {
	up := newUpstream(t, "orders")
	store := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
	cfg := header + "audit: {output: stderr}\napi_keys:\n" + store + "routes:\n" +
		fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    tags: [partner-api]\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", up.URL) +
		fmt.Sprintf("  - name: billing\n    match: {path_prefix: /billing}\n    tags: [internal]\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", up.URL)
	tg := startGateway(t, cfg).serve()

	good, _, _ := issueKey(t, tg, "acme", nil)
	revoked, _, _ := issueKey(t, tg, "revoked-co", func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
	past := time.Now().Add(-time.Minute).UTC()
	expired, _, _ := issueKey(t, tg, "expired-co", func(k *apikey.Key) { k.ExpiresAt = &past })
	billingOnly, _, _ := issueKey(t, tg, "billing-co", func(k *apikey.Key) { k.Routes = []string{"billing"} })
	internalOnly, _, _ := issueKey(t, tg, "internal-co", func(k *apikey.Key) { k.Routes = []string{"internal"} })
	unknown, _ := tg.APIKeys().Format.Generate()

	// The restricted keys work where they are allowed: the refusals below
	// are about the route, not about the keys.
	for _, k := range []string{billingOnly, internalOnly} {
		r, _ := http.NewRequest("GET", tg.url+"/billing/1", nil)
		r.Header.Set("X-API-Key", k)
		if res, body := do(t, r); res.StatusCode != 200 {
			t.Fatalf("restricted key on its own route: %d %s", res.StatusCode, body)
		}
	}

	type response struct {
		status int
		header http.Header
		body   map[string]any
	}
	send := func(set func(*http.Request)) response {
		r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
		set(r)
		res, body := do(t, r)
		h := res.Header.Clone()
		for _, volatile := range []string{"Date", "X-Request-Id", "Content-Length"} {
			h.Del(volatile)
		}
		var b map[string]any
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&b); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if b["request_id"] != res.Header.Get("X-Request-Id") {
			t.Fatalf("body request_id %v, header %q", b["request_id"], res.Header.Get("X-Request-Id"))
		}
		delete(b, "request_id")
		return response{res.StatusCode, h, b}
	}
	key := func(k string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("X-API-Key", k) } }

	want := send(key(unknown))
	if want.status != http.StatusUnauthorized || want.header.Get("WWW-Authenticate") != `ApiKey realm="gatehouse"` ||
		want.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown key: %d %v", want.status, want.header)
	}
	for _, tc := range []struct {
		name, reason string
		set          func(*http.Request)
	}{
		{"unknown", "key_unknown", key(unknown)},
		{"malformed", "key_malformed", key("gate_live_not-a-key")},
		{"bad checksum", "key_malformed", key(flipLast(good))},
		{"empty", "key_malformed", key("")},
		{"presented twice", "key_malformed", func(r *http.Request) { r.Header.Add("X-API-Key", good); r.Header.Add("X-API-Key", good) }},
		{"header and Authorization", "key_malformed", func(r *http.Request) { r.Header.Set("X-API-Key", good); r.Header.Set("Authorization", "ApiKey "+good) }},
		{"revoked", "key_revoked", key(revoked)},
		{"expired", "key_expired", key(expired)},
		{"restricted to another route", "key_route_not_allowed", key(billingOnly)},
		{"restricted to another route tag", "key_route_not_allowed", key(internalOnly)},
		{"restricted, via Authorization", "key_route_not_allowed", func(r *http.Request) { r.Header.Set("Authorization", "ApiKey "+billingOnly) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the first lookup goes to the store, the second is
			// answered from the cache; both must look the same.
			for i := range 2 {
				got := send(tc.set)
				if got.status != want.status {
					t.Fatalf("status %d, want %d", got.status, want.status)
				}
				if !headersEqual(got.header, want.header) {
					t.Fatalf("headers\n%v\nwant\n%v", got.header, want.header)
				}
				if fmt.Sprint(got.body) != fmt.Sprint(want.body) {
					t.Fatalf("body %v, want %v", got.body, want.body)
				}
				evs := tg.auditEvents(t)
				if last := evs[len(evs)-1]; last["reason"] != tc.reason {
					t.Fatalf("request %d: audit reason %v, want %s", i, last["reason"], tc.reason)
				}
			}
		})
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// flipLast changes the last character of a key: its checksum no longer
// matches.
func flipLast(k string) string {
	last := byte('A')
	if k[len(k)-1] == last {
		last = 'B'
	}
	return k[:len(k)-1] + string(last)
}
