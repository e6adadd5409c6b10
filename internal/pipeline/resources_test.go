package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// resourceSettings are the knobs of resourceConfig: each feeds one shared
// resource.
type resourceSettings struct {
	jwks, audience, dial, store, cacheTTL, staticHash string
	dpopMode                                          string // "": off
	replayEntries                                     int    // 0: default
}

func resourceConfig(s resourceSettings) string {
	static := ""
	if s.staticHash != "" {
		static = fmt.Sprintf("  static: [{id: s1, consumer: partner, hash: %q}]\n", s.staticHash)
	}
	dpop := ""
	if s.replayEntries != 0 {
		dpop = fmt.Sprintf("dpop: {replay_cache: {max_entries: %d}}\n", s.replayEntries)
	}
	mode := "off"
	if s.dpopMode != "" {
		mode = s.dpopMode
	}
	return fmt.Sprintf(`
audit: {disabled: true}
access_log: {disabled: true}
%sidentity_providers:
  - name: idp
    issuer: https://idp.resources.test
    jwks_uri: %q
    insecure_allow_http: true
    audiences: [%s]
    dpop: {mode: %s}
api_keys:
  store: {type: embedded, path: %q}
  cache_ttl: %s
%sroutes:
  - name: jwt
    match: {path_prefix: /jwt}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["builtin:echo"], timeouts: {dial: %s}}
  - name: keys
    match: {path_prefix: /keys}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["builtin:echo"], timeouts: {dial: %s}}
`, dpop, s.jwks, s.audience, mode, s.store, s.cacheTTL, static, s.dial, s.dial)
}

func buildWith(t *testing.T, reg *resource.Registry, yamlText string) *Plan {
	t.Helper()
	cfg, file, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(cfg, file, Options{Stdout: io.Discard, Stderr: io.Discard, Resources: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func kinds(keys []string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, ResourceKind(k))
	}
	slices.Sort(out)
	return out
}

// TestResourcesFollowTheirSettings: a plan built after another on the same
// registry (a reload) shares exactly the resources whose settings are
// unchanged, and a resource is closed once no plan holds it.
func TestResourcesFollowTheirSettings(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}))
	defer jwks.Close()
	other := httptest.NewServer(jwks.Config.Handler)
	defer other.Close()
	dir := t.TempDir()
	base := resourceSettings{jwks: jwks.URL, audience: "api", dial: "5s", store: filepath.Join(dir, "a.db"), cacheTTL: "30s"}
	all := []string{"apikeys.runtime", "apikeys.store", "dpop.replay_cache", "jwt.token_cache", "keyset", "upstream.transport"}
	for _, tc := range []struct {
		name   string
		change func(*resourceSettings)
		shared []string // kinds the second plan takes over
	}{
		{"unchanged", func(*resourceSettings) {}, all},
		{"static API keys", func(s *resourceSettings) { s.staticHash = "sha256:" + strings.Repeat("ab", 32) }, all},
		{"upstream dial timeout", func(s *resourceSettings) { s.dial = "3s" },
			[]string{"apikeys.runtime", "apikeys.store", "dpop.replay_cache", "jwt.token_cache", "keyset"}},
		{"audience", func(s *resourceSettings) { s.audience = "api, other" },
			[]string{"apikeys.runtime", "apikeys.store", "dpop.replay_cache", "keyset", "upstream.transport"}},
		// Token binding settings are checked after the cache, on every
		// request: not part of the token cache's settings.
		{"provider DPoP mode", func(s *resourceSettings) { s.dpopMode = "required" }, all},
		{"DPoP replay cache size", func(s *resourceSettings) { s.replayEntries = 4096 },
			[]string{"apikeys.runtime", "apikeys.store", "jwt.token_cache", "keyset", "upstream.transport"}},
		// Keys are not part of the token cache's settings: every hit asks
		// the (new) key set again.
		{"jwks_uri", func(s *resourceSettings) { s.jwks = other.URL },
			[]string{"apikeys.runtime", "apikeys.store", "dpop.replay_cache", "jwt.token_cache", "upstream.transport"}},
		// The same file under other cache settings: a new runtime over the
		// same open store (bbolt's lock would refuse a second open).
		{"API-key cache TTL", func(s *resourceSettings) { s.cacheTTL = "10s" },
			[]string{"apikeys.store", "dpop.replay_cache", "jwt.token_cache", "keyset", "upstream.transport"}},
		{"API-key store file", func(s *resourceSettings) { s.store = filepath.Join(dir, "b.db") },
			[]string{"dpop.replay_cache", "jwt.token_cache", "keyset", "upstream.transport"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := resource.New()
			old := buildWith(t, reg, resourceConfig(base))
			before := reg.Keys()
			if got := kinds(before); !slices.Equal(got, all) {
				t.Fatalf("one plan holds %v, want one of each of %v", got, all)
			}
			next := base
			tc.change(&next)
			plan := buildWith(t, reg, resourceConfig(next))
			old.Close()
			after := reg.Keys()
			var shared []string
			for _, k := range after {
				if slices.Contains(before, k) {
					shared = append(shared, ResourceKind(k))
				}
			}
			slices.Sort(shared)
			if !slices.Equal(shared, tc.shared) {
				t.Fatalf("shared %v, want %v", shared, tc.shared)
			}
			if got := kinds(after); !slices.Equal(got, all) {
				t.Fatalf("after the old plan closed: %v, want one of each of %v", got, all)
			}
			plan.Close()
			if reg.Len() != 0 {
				t.Fatalf("resources left open after every plan closed: %v", reg.Keys())
			}
		})
	}
}

// TestKeptAPIKeyRuntimeGetsStaticKeysOnActivate: a runtime kept from an
// earlier plan takes the new plan's static keys only when the plan is
// swapped in (Activate): a reload rejected after Build changes nothing.
func TestKeptAPIKeyRuntimeGetsStaticKeysOnActivate(t *testing.T) {
	reg := resource.New()
	plain, _ := apikey.Format{}.Generate()
	var hasher *apikey.Hasher
	hash := fmt.Sprintf("sha256:%x", hasher.Hash(plain))
	base := resourceSettings{jwks: "http://127.0.0.1:9/jwks", audience: "api", dial: "5s", store: filepath.Join(t.TempDir(), "k.db"), cacheTTL: "30s"}
	old := buildWith(t, reg, resourceConfig(base))
	withStatic := base
	withStatic.staticHash = hash
	next := buildWith(t, reg, resourceConfig(withStatic))
	if next.APIKeys() != old.APIKeys() {
		t.Fatal("unchanged api_keys settings: the runtime should be kept")
	}
	lookup := func() error {
		_, _, err := next.APIKeys().Store.LookupKey(context.Background(), hasher.Hash(plain))
		return err
	}
	if err := lookup(); err == nil {
		t.Fatal("the new static key works before the plan is activated")
	}
	next.Activate()
	if err := lookup(); err != nil {
		t.Fatalf("the new static key after Activate: %v", err)
	}
}

// TestRevocationReachesEveryRuntimeOverAStore: while a reload's old and new
// runtimes (other cache settings, one store) both serve, a revocation
// through either drops the key from both caches.
func TestRevocationReachesEveryRuntimeOverAStore(t *testing.T) {
	reg := resource.New()
	base := resourceSettings{jwks: "http://127.0.0.1:9/jwks", audience: "api", dial: "5s", store: filepath.Join(t.TempDir(), "k.db"), cacheTTL: "30s"}
	old := buildWith(t, reg, resourceConfig(base))
	changed := base
	changed.cacheTTL = "20s"
	next := buildWith(t, reg, resourceConfig(changed))
	if old.APIKeys() == next.APIKeys() || old.APIKeys().Backing() != next.APIKeys().Backing() {
		t.Fatal("want two runtimes over one store")
	}
	store := next.APIKeys().Backing()
	ctx := context.Background()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "acme", CreatedAt: time.Now().UTC()}
	plain, _ := apikey.Format{}.Generate()
	k := &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: next.APIKeys().Hasher.Hash(plain), Hint: apikey.Hint(plain),
		Status: apikey.StatusActive, CreatedAt: time.Now().UTC()}
	if err := store.CreateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	call := func(p *Plan) int {
		r := httptest.NewRequest("GET", "http://gw.test/keys/1", nil)
		r.Header.Set("X-API-Key", plain)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r, "main")
		return rec.Code
	}
	for _, p := range []*Plan{old, next} {
		if got := call(p); got != 200 {
			t.Fatalf("valid key: %d", got)
		}
	}
	now := time.Now().UTC()
	k.Status, k.RevokedAt = apikey.StatusRevoked, &now
	if err := store.UpdateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	old.APIKeys().Invalidate(k.ID) // as the admin API of the serving plan does
	for i, p := range []*Plan{old, next} {
		if got := call(p); got != 401 {
			t.Fatalf("plan %d still accepts the revoked key from its cache: %d", i, got)
		}
	}
}
