package adminapi

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
)

func sha(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func testLifecycle(t *testing.T, f *fixture) {
	ctx := t.Context()
	var c apikey.Consumer
	f.call("POST", "/v1/consumers", "/v1/consumers", map[string]any{
		"name": "acme", "groups": []string{"partners"}, "tags": []string{"eu"}, "metadata": map[string]string{"team": "billing"},
	}, http.StatusCreated).decode(t, &c)
	if c.Name != "acme" || !strings.HasPrefix(c.ID, "c_") || c.Metadata["team"] != "billing" {
		t.Fatalf("consumer = %+v", c)
	}
	var cl consumerList
	f.call("GET", "/v1/consumers", "/v1/consumers", nil, http.StatusOK).decode(t, &cl)
	if len(cl.Consumers) != 1 || cl.Consumers[0].ID != c.ID {
		t.Fatalf("list = %+v", cl)
	}
	for _, ref := range []string{c.ID, "acme"} {
		var got apikey.Consumer
		f.call("GET", "/v1/consumers/{consumer}", "/v1/consumers/"+ref, nil, http.StatusOK).decode(t, &got)
		if got.ID != c.ID {
			t.Errorf("GET consumer %s = %+v", ref, got)
		}
	}

	// Create a key: the secret works.
	r := f.call("POST", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{
		"name": "ci", "scopes": []string{"orders:read"}, "routes": []string{"orders"}, "rate_limit_tier": "gold", "expires_in": "720h",
	}, http.StatusCreated)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	var created createdKey
	r.decode(t, &created)
	secret, k := created.Secret, created.Key
	if err := f.svc.Format.Check(secret); err != nil {
		t.Fatalf("secret fails Format.Check: %v", err)
	}
	found, fc, err := f.store.LookupKey(ctx, f.svc.Hasher.Hash(secret))
	if err != nil || found.ID != k.ID || fc.ID != c.ID {
		t.Fatalf("LookupKey = %v %v %v", found, fc, err)
	}
	if !k.ExpiresAt.Equal(f.clock.Now().Add(720*time.Hour)) || k.Tier != "gold" || k.Status != apikey.StatusActive {
		t.Errorf("key = %+v", k)
	}
	if strings.Contains(string(r.body), `"hash"`) {
		t.Error("key JSON carries the hash")
	}

	var kl keyList
	f.call("GET", "/v1/keys", "/v1/keys", nil, http.StatusOK).decode(t, &kl)
	if len(kl.Keys) != 1 || kl.Keys[0].ID != k.ID {
		t.Fatalf("keys = %+v", kl)
	}
	f.call("GET", "/v1/keys", "/v1/keys?consumer=acme", nil, http.StatusOK).decode(t, &kl)
	if len(kl.Keys) != 1 {
		t.Fatalf("keys of acme = %+v", kl)
	}
	var shown apikey.Key
	f.call("GET", "/v1/keys/{key}", "/v1/keys/"+k.ID, nil, http.StatusOK).decode(t, &shown)
	if shown.ID != k.ID || shown.Hint != apikey.Hint(secret) {
		t.Errorf("shown = %+v", shown)
	}
	for _, b := range [][]byte{f.call("GET", "/v1/keys/{key}", "/v1/keys/"+k.ID, nil, http.StatusOK).body} {
		if strings.Contains(string(b), secret) {
			t.Error("GET key shows the secret")
		}
	}

	// Rotate with a grace period: both keys work until the old expiry.
	f.clock.Advance(time.Minute)
	var rot rotatedKey
	r = f.call("POST", "/v1/keys/{key}/rotate", "/v1/keys/"+k.ID+"/rotate", map[string]string{"grace": "1h"}, http.StatusCreated)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	r.decode(t, &rot)
	if rot.Previous.ID != k.ID || rot.Previous.RotatedTo != rot.Key.ID || !rot.Previous.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("previous = %+v", rot.Previous)
	}
	if rot.Key.Name != "ci" || !slices.Equal(rot.Key.Scopes, k.Scopes) || !rot.Key.ExpiresAt.Equal(*k.ExpiresAt) {
		t.Errorf("successor = %+v", rot.Key)
	}
	oldStored, _, err := f.store.LookupKey(ctx, f.svc.Hasher.Hash(secret))
	if err != nil || !oldStored.Usable(f.clock.Now().Add(59*time.Minute)) || oldStored.Usable(f.clock.Now().Add(time.Hour)) {
		t.Errorf("old key after grace rotation: %+v, %v", oldStored, err)
	}
	newStored, _, err := f.store.LookupKey(ctx, f.svc.Hasher.Hash(rot.Secret))
	if err != nil || newStored.ID != rot.Key.ID || !newStored.Usable(f.clock.Now()) {
		t.Errorf("new key: %+v, %v", newStored, err)
	}
	if !f.wasInvalidated(k.ID) {
		t.Error("rotation did not invalidate the old key")
	}
	f.call("POST", "/v1/keys/{key}/rotate", "/v1/keys/"+k.ID+"/rotate", nil, http.StatusConflict)

	// Rotate with grace 0: the old key stops at once.
	var rot2 rotatedKey
	f.call("POST", "/v1/keys/{key}/rotate", "/v1/keys/"+rot.Key.ID+"/rotate", map[string]string{"grace": "0s"}, http.StatusCreated).decode(t, &rot2)
	old2, _, err := f.store.LookupKey(ctx, f.svc.Hasher.Hash(rot.Secret))
	if err != nil || old2.Usable(f.clock.Now()) {
		t.Errorf("old key usable after zero-grace rotation: %+v %v", old2, err)
	}

	// Revoke: idempotent; a revoked key cannot be rotated.
	var rev apikey.Key
	f.call("POST", "/v1/keys/{key}/revoke", "/v1/keys/"+rot2.Key.ID+"/revoke", nil, http.StatusOK).decode(t, &rev)
	if rev.Status != apikey.StatusRevoked || rev.RevokedAt == nil || !f.wasInvalidated(rev.ID) {
		t.Errorf("revoked = %+v", rev)
	}
	f.call("POST", "/v1/keys/{key}/revoke", "/v1/keys/"+rot2.Key.ID+"/revoke", nil, http.StatusOK)
	p := f.call("POST", "/v1/keys/{key}/rotate", "/v1/keys/"+rot2.Key.ID+"/rotate", nil, http.StatusConflict).problem(t)
	if p.Type != "urn:gatehouse:problem:conflict" {
		t.Errorf("problem = %+v", p)
	}
	if got, _, _ := f.store.LookupKey(ctx, f.svc.Hasher.Hash(rot2.Secret)); got == nil || got.Usable(f.clock.Now()) {
		t.Errorf("revoked key usable: %+v", got)
	}

	// Delete the consumer: its keys go with it.
	f.call("DELETE", "/v1/consumers/{consumer}", "/v1/consumers/acme", nil, http.StatusNoContent)
	f.call("GET", "/v1/consumers/{consumer}", "/v1/consumers/"+c.ID, nil, http.StatusNotFound)
	for _, id := range []string{k.ID, rot.Key.ID, rot2.Key.ID} {
		f.call("GET", "/v1/keys/{key}", "/v1/keys/"+id, nil, http.StatusNotFound)
		if !f.wasInvalidated(id) {
			t.Errorf("key %s not invalidated on delete", id)
		}
	}
	if _, _, err := f.store.LookupKey(ctx, f.svc.Hasher.Hash(rot2.Secret)); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("lookup after delete: %v", err)
	}

	// Audit: every action, never a secret.
	counts := map[string]int{}
	for _, e := range f.audit.all() {
		counts[e.Type]++
		data, _ := json.Marshal(e)
		for _, s := range []string{secret, rot.Secret, rot2.Secret, testToken} {
			if strings.Contains(string(data), s) {
				t.Errorf("audit event carries a secret: %s", data)
			}
		}
		if e.Subject != c.ID || e.ClientID != "acme" || e.Outcome != "allow" {
			t.Errorf("event = %+v", e)
		}
	}
	want := map[string]int{
		keymgmt.TypeConsumerCreated: 1, keymgmt.TypeKeyCreated: 3, keymgmt.TypeKeyRotated: 2,
		keymgmt.TypeKeyRevoked: 1, keymgmt.TypeConsumerDeleted: 1,
	}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%s: %d events, want %d (all: %v)", typ, counts[typ], n, counts)
		}
	}
	for _, s := range []string{secret, rot.Secret, rot2.Secret, testToken} {
		if strings.Contains(f.logs.String(), s) {
			t.Error("logs carry a secret")
		}
	}
}

func testAuth(t *testing.T, f *fixture) {
	for _, tc := range []struct {
		name   string
		header string // Authorization; "" = none
		want   int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"token with suffix", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"hash instead of token", fmt.Sprintf("Bearer %x", sha(testToken)), http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"lowercase scheme", "bearer " + testToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			r := f.req("GET", "/v1/consumers", "", nil, hdr...)
			if r.status != tc.want {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.want, r.body)
			}
			f.docv.check(t, "GET", "/v1/consumers", r)
			if tc.want == http.StatusUnauthorized {
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse-admin"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if p := r.problem(t); p.Type != "urn:gatehouse:problem:admin-unauthorized" {
					t.Errorf("problem = %+v", p)
				}
				if strings.Contains(string(r.body), testToken) || strings.Contains(string(r.body), "wrong") {
					t.Error("problem echoes the token")
				}
			}
		})
	}
	// Unknown paths and every route are behind the token too.
	if r := f.req("GET", "/v1/nothing", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("unknown path without token = %d", r.status)
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{consumer}", "acme", "{key}", "k_aaaaaaaaaaaaaaaa").Replace(rt.path)
		if r := f.req(rt.method, path, "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without token = %d", rt.method, path, r.status)
		}
	}
	// The handler keeps only the hash.
	h := New(Config{Service: f.svc, TokenHash: sha(testToken)}).(*api)
	if len(h.tokenHash) != sha256.Size {
		t.Errorf("token hash len %d", len(h.tokenHash))
	}
	if strings.Contains(f.logs.String(), testToken) {
		t.Error("logs carry the token")
	}
}

func TestDisabled(t *testing.T) {
	for _, hash := range [][]byte{nil, {}, []byte("short")} {
		f := newFixture(t, openBolt(t))
		f.srv.Config.Handler = New(Config{Service: f.svc, TokenHash: hash, Log: f.srv.Config.Handler.(*api).log})
		r := f.req("GET", "/v1/consumers", testToken, nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("status = %d, want 503", r.status)
		}
		if p := r.problem(t); p.Type != "urn:gatehouse:problem:admin-disabled" {
			t.Errorf("problem = %+v", p)
		}
		if r := f.req("GET", "/openapi.json", "", nil); r.status != http.StatusOK {
			t.Errorf("openapi.json = %d", r.status)
		}
	}
}

func testValidation(t *testing.T, f *fixture) {
	if _, err := f.svc.CreateConsumer(t.Context(), keymgmt.NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, _, err := f.svc.CreateKey(t.Context(), "acme", keymgmt.NewKey{})
	if err != nil {
		t.Fatal(err)
	}
	past := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	future := f.clock.Now().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name, pattern, path string
		body                any
		want                []string
	}{
		{"consumer: no name", "/v1/consumers", "/v1/consumers", map[string]any{}, []string{"name"}},
		{"consumer: empty body", "/v1/consumers", "/v1/consumers", nil, []string{"name"}},
		{"consumer: several", "/v1/consumers", "/v1/consumers", map[string]any{"name": "bad name", "groups": []string{"ok", "-x"}, "tags": []string{"a", "a"}}, []string{"name", "groups[1]", "tags[1]"}},
		{"consumer: unknown field", "/v1/consumers", "/v1/consumers", `{"name":"ok","admin":true}`, []string{"admin"}},
		{"consumer: wrong type", "/v1/consumers", "/v1/consumers", `{"name":5}`, []string{"name"}},
		{"consumer: metadata value", "/v1/consumers", "/v1/consumers", map[string]any{"name": "ok", "metadata": map[string]string{"team": strings.Repeat("x", 513)}}, []string{"metadata.team"}},
		{"consumer: malformed", "/v1/consumers", "/v1/consumers", `{"name":`, []string{""}},
		{"consumer: trailing data", "/v1/consumers", "/v1/consumers", `{"name":"ok"} {}`, []string{""}},
		{"key: scopes", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"scopes": []string{"ok", "a b"}}, []string{"scopes[1]"}},
		{"key: routes and tier", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"routes": []string{"/x"}, "rate_limit_tier": "a b", "name": "a b"}, []string{"name", "routes[0]", "rate_limit_tier"}},
		{"key: expires_at format", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"expires_at": "tomorrow"}, []string{"expires_at"}},
		{"key: expires_at past", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"expires_at": past}, []string{"expires_at"}},
		{"key: both expiries", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"expires_at": future, "expires_in": "1h"}, []string{"expires_in"}},
		{"key: expires_in format", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"expires_in": "a month"}, []string{"expires_in"}},
		{"key: expires_in negative", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"expires_in": "-1h"}, []string{"expires_in"}},
		{"key: unknown field", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", map[string]any{"secret": "mine"}, []string{"secret"}},
		{"rotate: grace format", "/v1/keys/{key}/rotate", "/v1/keys/" + k.ID + "/rotate", map[string]any{"grace": "soon"}, []string{"grace"}},
		{"rotate: grace negative", "/v1/keys/{key}/rotate", "/v1/keys/" + k.ID + "/rotate", map[string]any{"grace": "-1s"}, []string{"grace"}},
		{"rotate: wrong type", "/v1/keys/{key}/rotate", "/v1/keys/" + k.ID + "/rotate", `{"grace":60}`, []string{"grace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("POST", tc.pattern, tc.path, tc.body, http.StatusBadRequest)
			p := r.problem(t)
			if p.Type != "urn:gatehouse:problem:invalid-request" {
				t.Errorf("type = %q", p.Type)
			}
			var got []string
			for _, fe := range p.Errors {
				got = append(got, fe.Field)
				if fe.Message == "" {
					t.Errorf("field %q without message", fe.Field)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("fields = %q, want %q (%s)", got, tc.want, r.body)
			}
		})
	}
}

func testErrors(t *testing.T, f *fixture) {
	if _, err := f.svc.CreateConsumer(t.Context(), keymgmt.NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, pattern, path string
		body                        any
		hdr                         []string
		want                        int
		slug                        string
	}{
		{"unknown consumer", "GET", "/v1/consumers/{consumer}", "/v1/consumers/nobody", nil, nil, 404, "not-found"},
		{"unknown consumer id", "GET", "/v1/consumers/{consumer}", "/v1/consumers/c_aaaaaaaaaaaaaaaa", nil, nil, 404, "not-found"},
		{"delete unknown consumer", "DELETE", "/v1/consumers/{consumer}", "/v1/consumers/nobody", nil, nil, 404, "not-found"},
		{"key for unknown consumer", "POST", "/v1/consumers/{consumer}/keys", "/v1/consumers/nobody/keys", nil, nil, 404, "not-found"},
		{"keys of unknown consumer", "GET", "/v1/keys", "/v1/keys?consumer=nobody", nil, nil, 404, "not-found"},
		{"unknown key", "GET", "/v1/keys/{key}", "/v1/keys/k_aaaaaaaaaaaaaaaa", nil, nil, 404, "not-found"},
		{"malformed key id", "GET", "/v1/keys/{key}", "/v1/keys/not-a-key", nil, nil, 404, "not-found"},
		{"rotate unknown key", "POST", "/v1/keys/{key}/rotate", "/v1/keys/k_aaaaaaaaaaaaaaaa/rotate", nil, nil, 404, "not-found"},
		{"revoke unknown key", "POST", "/v1/keys/{key}/revoke", "/v1/keys/k_aaaaaaaaaaaaaaaa/revoke", nil, nil, 404, "not-found"},
		{"duplicate consumer", "POST", "/v1/consumers", "/v1/consumers", map[string]string{"name": "acme"}, nil, 409, "conflict"},
		{"text body", "POST", "/v1/consumers", "/v1/consumers", `{"name":"x"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported-media-type"},
		{"form body", "POST", "/v1/consumers/{consumer}/keys", "/v1/consumers/acme/keys", `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"},
		{"too large", "POST", "/v1/consumers", "/v1/consumers", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "request-body-too-large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.req(tc.method, tc.path, testToken, tc.body, tc.hdr...)
			if r.status != tc.want {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.want, r.body)
			}
			if p := r.problem(t); p.Type != "urn:gatehouse:problem:"+tc.slug || p.Status != tc.want {
				t.Errorf("problem = %+v", p)
			}
			f.docv.check(t, tc.method, tc.pattern, r)
		})
	}
	// Charset parameter is fine.
	if r := f.req("POST", "/v1/consumers", testToken, `{"name":"charset"}`, "Content-Type", "application/json; charset=utf-8"); r.status != http.StatusCreated {
		t.Errorf("json with charset = %d: %s", r.status, r.body)
	}
	// Wrong method on a known path: 405 problem with Allow.
	r := f.req("PUT", "/v1/consumers", testToken, nil)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST, GET" {
		t.Errorf("PUT /v1/consumers = %d, Allow %q", r.status, r.header.Get("Allow"))
	}
	r.problem(t)
	if r := f.req("GET", "/v1/nothing", testToken, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown path = %d", r.status)
	} else {
		r.problem(t)
	}
	// A closed store is unavailable: 503, not 500.
	_ = f.store.Close()
	r = f.call("GET", "/v1/consumers", "/v1/consumers", nil, http.StatusServiceUnavailable)
	if p := r.problem(t); p.Type != "urn:gatehouse:problem:store-unavailable" || p.Detail != "" {
		t.Errorf("problem = %+v", p)
	}
}

func testConcurrency(t *testing.T, f *fixture) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("c%d", i)
			if r := f.req("POST", "/v1/consumers", testToken, map[string]string{"name": name}); r.status != http.StatusCreated {
				t.Errorf("create consumer: %d %s", r.status, r.body)
				return
			}
			var ck createdKey
			r := f.req("POST", "/v1/consumers/"+name+"/keys", testToken, nil)
			if r.status != http.StatusCreated {
				t.Errorf("create key: %d %s", r.status, r.body)
				return
			}
			if err := json.Unmarshal(r.body, &ck); err != nil {
				t.Error(err)
				return
			}
			// Racing rotations of one key: exactly one wins.
			var mu sync.Mutex
			codes := map[int]int{}
			var inner sync.WaitGroup
			for range 3 {
				inner.Go(func() {
					r := f.req("POST", "/v1/keys/"+ck.Key.ID+"/rotate", testToken, map[string]string{"grace": "1m"})
					mu.Lock()
					codes[r.status]++
					mu.Unlock()
				})
			}
			inner.Go(func() {
				if r := f.req("GET", "/v1/keys", testToken, nil); r.status != http.StatusOK {
					t.Errorf("list keys: %d", r.status)
				}
			})
			inner.Wait()
			if codes[http.StatusCreated] != 1 || codes[http.StatusConflict] != 2 {
				t.Errorf("rotation codes = %v", codes)
			}
			if r := f.req("POST", "/v1/keys/"+ck.Key.ID+"/revoke", testToken, nil); r.status != http.StatusOK {
				t.Errorf("revoke: %d", r.status)
			}
		})
	}
	wg.Wait()
	var cl consumerList
	if r := f.req("GET", "/v1/consumers", testToken, nil); r.status == http.StatusOK {
		r.decode(t, &cl)
	}
	if len(cl.Consumers) != 8 {
		t.Errorf("%d consumers, want 8", len(cl.Consumers))
	}
}
