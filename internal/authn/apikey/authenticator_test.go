package apikey_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/authntest"
	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestConformance(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("billing", nil, nil)
	good, _ := e.key(c, nil)
	revoked, _ := e.key(c, func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
	past := e.clock.Now().Add(-time.Minute)
	expired, _ := e.key(c, func(k *apikey.Key) { k.ExpiresAt = &past })
	unknown := e.unknownKey()
	a := e.auth(nil)
	hdr := func(kv ...string) func() *http.Request { return func() *http.Request { return request("/", kv...) } }
	authntest.Run(t, a, authntest.Cases{
		None: hdr("Authorization", "Basic dXNlcjpwYXNz"),
		Good: hdr("X-API-Key", good),
		Bad: []func() *http.Request{
			hdr("X-API-Key", "not-a-key"),
			hdr("X-API-Key", good+"x"),
			hdr("X-API-Key", unknown),
			hdr("X-API-Key", revoked),
			hdr("X-API-Key", expired),
			hdr("Authorization", "ApiKey "+good, "X-API-Key", good),
		},
	})
}

func TestNewValidatesConfig(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		cfg  authnapikey.Config
	}{
		{"no store", authnapikey.Config{}},
		{"bad prefix", authnapikey.Config{Store: e.store, Format: apikey.Format{Prefix: "Bad Prefix"}}},
		{"authorization as header", authnapikey.Config{Store: e.store, Header: "authorization"}},
		{"header with colon", authnapikey.Config{Store: e.store, Header: "X-Key:"}},
		{"empty scheme", authnapikey.Config{Store: e.store, AuthorizationSchemes: []string{""}}},
		{"scheme with space", authnapikey.Config{Store: e.store, AuthorizationSchemes: []string{"Api Key"}}},
		{"tiny cache", authnapikey.Config{Store: e.store, MaxEntries: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authnapikey.New(tc.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	if _, err := authnapikey.New(authnapikey.Config{Store: e.store}); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
}

func TestExtraction(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("mobile", nil, nil)
	key, _ := e.key(c, nil)
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
	defaults := e.auth(nil)
	bearer := e.auth(func(c *authnapikey.Config) { c.AuthorizationSchemes = []string{"ApiKey", "Bearer"} })
	query := e.auth(func(c *authnapikey.Config) { c.QueryParam = "api_key" })
	custom := e.auth(func(c *authnapikey.Config) { c.Header = "x-gateway-key"; c.AuthorizationSchemes = []string{"Token"} })

	const ok, none = authn.Reason("ok"), authn.Reason("none")
	for _, tc := range []struct {
		name string
		a    *authnapikey.Authenticator
		r    *http.Request
		want authn.Reason // ok, none (ErrNoCredential) or the failure reason
	}{
		{"header", defaults, request("/", "X-API-Key", key), ok},
		{"header name is case-insensitive", defaults, request("/", "x-api-key", key), ok},
		{"ApiKey scheme", defaults, request("/", "Authorization", "ApiKey "+key), ok},
		{"lowercase scheme", defaults, request("/", "Authorization", "apikey "+key), ok},
		{"uppercase scheme, extra spaces", defaults, request("/", "Authorization", "APIKEY   "+key), ok},
		{"no credential", defaults, request("/"), none},
		{"Basic is not ours", defaults, request("/", "Authorization", "Basic dXNlcjpwYXNz"), none},
		{"Bearer not accepted by default", defaults, request("/", "Authorization", "Bearer "+key), none},
		{"Bearer with prefix when accepted", bearer, request("/", "Authorization", "Bearer "+key), ok},
		{"lowercase bearer with prefix", bearer, request("/", "Authorization", "bearer "+key), ok},
		{"JWT-looking Bearer is left to the JWT authenticator", bearer, request("/", "Authorization", "Bearer "+jwt), none},
		{"empty Bearer is not ours", bearer, request("/", "Authorization", "Bearer"), none},
		{"prefixed Bearer that is not a key", bearer, request("/", "Authorization", "Bearer gate_test_nope"), authnapikey.ReasonKeyMalformed},
		{"query ignored unless configured", defaults, request("/?api_key=" + key), none},
		{"query when configured", query, request("/?api_key=" + key), ok},
		{"other query parameter", query, request("/?key=" + key), none},
		{"header and Authorization", bearer, request("/", "X-API-Key", key, "Authorization", "Bearer "+key), authnapikey.ReasonKeyMalformed},
		{"header and query", query, request("/?api_key="+key, "X-API-Key", key), authnapikey.ReasonKeyMalformed},
		{"Authorization and query", query, request("/?api_key="+key, "Authorization", "ApiKey "+key), authnapikey.ReasonKeyMalformed},
		{"header twice", defaults, request("/", "X-API-Key", key, "X-API-Key", key), authnapikey.ReasonKeyMalformed},
		{"query twice", query, request("/?api_key=" + key + "&api_key=" + key), authnapikey.ReasonKeyMalformed},
		{"two Authorization headers, one a key", defaults, request("/", "Authorization", "ApiKey "+key, "Authorization", "Basic dXNlcjpwYXNz"), authnapikey.ReasonKeyMalformed},
		{"two Authorization headers, none a key", defaults, request("/", "Authorization", "Basic dXNlcjpwYXNz", "Authorization", "Bearer "+jwt), none},
		{"JWT Bearer alongside key header", bearer, request("/", "X-API-Key", key, "Authorization", "Bearer "+jwt), ok},
		{"ApiKey scheme without key", defaults, request("/", "Authorization", "ApiKey"), authnapikey.ReasonKeyMalformed},
		{"empty header", defaults, request("/", "X-API-Key", ""), authnapikey.ReasonKeyMalformed},
		{"empty query parameter", query, request("/?api_key="), authnapikey.ReasonKeyMalformed},
		{"custom header", custom, request("/", "X-Gateway-Key", key), ok},
		{"custom scheme", custom, request("/", "Authorization", "token "+key), ok},
		{"default header not read with a custom one", custom, request("/", "X-API-Key", key), none},
		{"default scheme not read with custom ones", custom, request("/", "Authorization", "ApiKey "+key), none},
		{"scheme must be a whole word", defaults, request("/", "Authorization", "ApiKeyX "+key), none},
		{"ApiKey, tab, key", defaults, request("/", "Authorization", "ApiKey\t"+key), authnapikey.ReasonKeyMalformed},
		{"apikey, comma, key", defaults, request("/", "Authorization", "apikey,"+key), authnapikey.ReasonKeyMalformed},
		{"ApiKey, vertical tab, key", defaults, request("/", "Authorization", "ApiKey\v"+key), authnapikey.ReasonKeyMalformed},
		{"ApiKey then non-ASCII is another scheme", defaults, request("/", "Authorization", "ApiKey\u00e9 "+key), none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.a.Authenticate(tc.r)
			switch tc.want {
			case ok:
				if err != nil || id == nil || id.Subject != c.ID {
					t.Fatalf("got %+v, %v; want the consumer's identity", id, err)
				}
			case none:
				if !errors.Is(err, authn.ErrNoCredential) || id != nil {
					t.Fatalf("got %+v, %v; want ErrNoCredential", id, err)
				}
			default:
				if id != nil {
					t.Fatalf("got identity %+v", id)
				}
				if f := failure(t, err); f.Reason != tc.want {
					t.Fatalf("reason %q, want %q (%v)", f.Reason, tc.want, err)
				}
			}
		})
	}
}

func TestFailuresAreNoOracle(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("partner", nil, nil)
	good, _ := e.key(c, nil)
	revoked, rk := e.key(c, func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
	at := e.clock.Now()
	expired, xk := e.key(c, func(k *apikey.Key) { k.ExpiresAt = &at }) // expires exactly now
	a := e.auth(nil)
	for _, tc := range []struct {
		name          string
		key           string
		reason        authn.Reason
		credID, subj  string
		wantNoLookups bool
	}{
		{"malformed", "gate_test_hello", authnapikey.ReasonKeyMalformed, "", "", true},
		{"bad checksum", good[:len(good)-1] + flip(good[len(good)-1]), authnapikey.ReasonKeyMalformed, "", "", true},
		{"other prefix", "gate_live_" + good[len("gate_test_"):], authnapikey.ReasonKeyMalformed, "", "", true},
		{"unknown", e.unknownKey(), authnapikey.ReasonKeyUnknown, "", "", false},
		{"revoked", revoked, authnapikey.ReasonKeyRevoked, rk.ID, c.ID, false},
		{"expired", expired, authnapikey.ReasonKeyExpired, xk.ID, c.ID, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.lookups.Load()
			id, err := a.Authenticate(withKey(tc.key))
			if id != nil {
				t.Fatalf("got identity %+v", id)
			}
			f := failure(t, err)
			if f.Reason != tc.reason || f.Method != identity.MethodAPIKey {
				t.Fatalf("got %s/%s, want %s/%s", f.Method, f.Reason, identity.MethodAPIKey, tc.reason)
			}
			if f.Description != "The API key is not valid." {
				t.Fatalf("description %q differs from the generic one", f.Description)
			}
			if f.CredentialID != tc.credID || f.Subject != tc.subj {
				t.Fatalf("credential %q subject %q, want %q %q", f.CredentialID, f.Subject, tc.credID, tc.subj)
			}
			if strings.Contains(err.Error(), tc.key) || strings.Contains(f.Description, tc.key) {
				t.Fatal("the failure carries the key")
			}
			if lookups := e.store.lookups.Load() - before; tc.wantNoLookups && lookups != 0 {
				t.Fatalf("%d store lookups for a malformed key", lookups)
			}
		})
	}
}

// flip returns a base62 character different from b.
func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestIdentity(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("acme-ci", []string{"partners", "ci"}, []string{"tier-gold"})
	exp := e.clock.Now().Add(24 * time.Hour)
	key, k := e.key(c, func(k *apikey.Key) {
		k.Name = "deploy-bot"
		k.Scopes = []string{"orders:read", "orders:write"}
		k.Tier = "gold"
		k.ExpiresAt = &exp
	})
	a := e.auth(nil)
	id, err := a.Authenticate(withKey(key))
	if err != nil {
		t.Fatal(err)
	}
	want := &identity.Identity{
		Subject:      c.ID,
		Issuer:       "gatehouse",
		Provider:     "api_keys",
		Method:       identity.MethodAPIKey,
		CredentialID: k.ID,
		ClientID:     "acme-ci",
		Scopes:       []string{"orders:read", "orders:write"},
		Groups:       []string{"partners", "ci"},
		Claims: map[string]any{
			"consumer_name":   "acme-ci",
			"consumer_tags":   []string{"tier-gold"},
			"key_name":        "deploy-bot",
			"rate_limit_tier": "gold",
		},
		ExpiresAt: exp,
	}
	if !id.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("ExpiresAt %v, want %v", id.ExpiresAt, want.ExpiresAt)
	}
	got := *id
	got.ExpiresAt = want.ExpiresAt
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("identity\n got %+v\nwant %+v", &got, want)
	}

	// Empty optional claims are left out.
	plain := e.consumer("plain", nil, nil)
	key2, _ := e.key(plain, nil)
	id, err = a.Authenticate(withKey(key2))
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Claims) != 1 || id.Claims["consumer_name"] != "plain" || !id.ExpiresAt.IsZero() {
		t.Fatalf("claims %v, expiry %v", id.Claims, id.ExpiresAt)
	}
}

func TestRouteRestriction(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("shop", nil, nil)
	restricted, rk := e.key(c, func(k *apikey.Key) { k.Routes = []string{"orders", "public"} })
	open, _ := e.key(c, nil)
	routes := func(r *http.Request) (string, []string) {
		return r.Header.Get("Test-Route"), strings.Fields(r.Header.Get("Test-Tags"))
	}
	a := e.auth(func(c *authnapikey.Config) { c.Routes = routes })
	noRoutes := e.auth(nil)
	for _, tc := range []struct {
		name  string
		a     *authnapikey.Authenticator
		key   string
		route string
		tags  string
		ok    bool
	}{
		{"listed route", a, restricted, "orders", "", true},
		{"listed tag", a, restricted, "catalog", "internal public", true},
		{"other route", a, restricted, "admin", "internal", false},
		{"no route", a, restricted, "", "", false},
		{"unrestricted key anywhere", a, open, "admin", "", true},
		{"no route information fails closed", noRoutes, restricted, "orders", "", false},
		{"unrestricted key without route information", noRoutes, open, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.a.Authenticate(request("/", "X-API-Key", tc.key, "Test-Route", tc.route, "Test-Tags", tc.tags))
			if tc.ok {
				if err != nil || id == nil {
					t.Fatalf("got %v, %v", id, err)
				}
				return
			}
			f := failure(t, err)
			if f.Reason != authnapikey.ReasonRouteNotAllowed || f.CredentialID != rk.ID || f.Subject != c.ID || id != nil {
				t.Fatalf("got %+v", f)
			}
		})
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("ops", nil, nil)
	cached, _ := e.key(c, nil)
	uncached, _ := e.key(c, nil)
	a := e.auth(nil)
	if _, err := a.Authenticate(withKey(cached)); err != nil {
		t.Fatal(err)
	}
	if err := e.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id, err := a.Authenticate(withKey(uncached))
		var u *authn.UnavailableError
		if id != nil || !errors.As(err, &u) || u.Reason != authnapikey.ReasonStoreUnavailable || u.Method != identity.MethodAPIKey {
			t.Fatalf("attempt %d: got %v, %v; want an UnavailableError", i, id, err)
		}
		var f *authn.Failure
		if errors.As(err, &f) || errors.Is(err, authn.ErrNoCredential) {
			t.Fatalf("a store outage must not look like a bad key: %v", err)
		}
		if strings.Contains(err.Error(), uncached) {
			t.Fatal("the error carries the key")
		}
	}
	if n := e.store.lookups.Load(); n != 4 {
		t.Fatalf("%d lookups, want 4: store errors must not be cached", n)
	}
	// A key still cached keeps working through the outage, for CacheTTL.
	if _, err := a.Authenticate(withKey(cached)); err != nil {
		t.Fatalf("cached key during outage: %v", err)
	}
}

func TestToucherFromAuthenticator(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("tracked", nil, nil)
	key, k := e.key(c, nil)
	touch := authnapikey.NewToucher(e.store, time.Hour, nil)
	a := e.auth(func(c *authnapikey.Config) { c.Touch = touch })
	var last time.Time
	for range 50 {
		e.clock.Advance(time.Second)
		last = e.clock.Now()
		if _, err := a.Authenticate(withKey(key)); err != nil {
			t.Fatal(err)
		}
	}
	// Failures are not "use".
	revoked, _ := e.key(c, func(k *apikey.Key) { k.Status = apikey.StatusRevoked })
	_, _ = a.Authenticate(withKey(revoked))
	if got := e.store.touchBatches(); len(got) != 0 {
		t.Fatalf("touched before Close: %v", got)
	}
	if err := touch.Close(); err != nil {
		t.Fatal(err)
	}
	batches := e.store.touchBatches()
	if len(batches) != 1 || len(batches[0]) != 1 || !batches[0][k.ID].Equal(last) {
		t.Fatalf("batches %v, want one with %s at %v", batches, k.ID, last)
	}
}
