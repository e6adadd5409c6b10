package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// providerYAML declares a testidp provider. keys tunes the key cache.
func providerYAML(name string, p *testidp.Provider, extra string) string {
	return fmt.Sprintf(`  - name: %s
    issuer: %q
    audiences: [%q]
    insecure_allow_http: true
    claims: {roles: realm_access.roles, groups: groups, extra: {email: email}}
%s`, name, p.Issuer, p.Audience, extra)
}

func authedRoute(name, path, target, providers string) string {
	return fmt.Sprintf("  - name: %s\n    match: {path_prefix: %s}\n    authenticate: {methods: [jwt]%s}\n    upstream: {targets: [%q]}\n",
		name, path, providers, target)
}

func bearer(t *testing.T, url, token string, extra map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// auditEvents returns the audit events written to stderr so far.
func (tg *testGateway) auditEvents(t *testing.T) []map[string]any {
	t.Helper()
	tg.Flush()
	return tg.stderr.lines(t)
}

func (tg *testGateway) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "readiness", 10*time.Second, func() bool {
		res, err := http.Get(tg.adminURL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

// TestJWTThroughGateway drives the authentication stage with tokens from a
// real OpenID Provider: discovery, issuance, identity headers, 401s,
// audit events.
func TestJWTThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")+
		routeYAML("open", "{path_prefix: /open}", `{targets: ["`+up.URL+`"]}`)).serve()
	tg.waitReady(t)

	t.Run("no credential: 401 challenge without error code", func(t *testing.T) {
		res, body := bearer(t, tg.url+"/api/x", "", nil)
		problemBody(t, res, body, 401, "unauthorized")
		if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
	t.Run("client credentials token from the provider is accepted", func(t *testing.T) {
		tok := idp.ClientCredentialsToken(t, "openid")
		res, body := bearer(t, tg.url+"/api/x", tok, map[string]string{"X-Auth-Subject": "spoofed-admin", "X-Auth-Roles": "admin"})
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		h := decodeReceived(t, body).Headers
		if h.Get("X-Auth-Subject") == "" || h.Get("X-Auth-Subject") == "spoofed-admin" {
			t.Fatalf("X-Auth-Subject %q", h.Get("X-Auth-Subject"))
		}
		if h.Get("X-Auth-Roles") != "" {
			t.Fatalf("spoofed roles reached the upstream: %q", h.Get("X-Auth-Roles"))
		}
		if h.Get("X-Auth-Method") != "jwt" || h.Get("X-Auth-Issuer") != idp.Issuer {
			t.Fatalf("identity headers %v", h)
		}
		if h.Get("Authorization") != "" {
			t.Fatal("the token was forwarded although forward_authorization is off")
		}
	})
	t.Run("claims become identity headers", func(t *testing.T) {
		tok := idp.Mint(t, map[string]any{"sub": "alice", "email": "alice@example.com", "scope": "read write",
			"realm_access": map[string]any{"roles": []string{"reader", "editor"}}})
		res, body := bearer(t, tg.url+"/api/x", tok, nil)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		h := decodeReceived(t, body).Headers
		for name, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Roles": "reader,editor", "X-Auth-Scopes": "read write"} {
			if h.Get(name) != want {
				t.Errorf("%s = %q, want %q", name, h.Get(name), want)
			}
		}
	})
	t.Run("expired token: 401 invalid_token, audited without the token", func(t *testing.T) {
		tok := idp.Mint(t, map[string]any{"sub": "bob", "jti": "jti-expired-1", "iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix()})
		res, body := bearer(t, tg.url+"/api/x", tok, nil)
		problemBody(t, res, body, 401, "unauthorized")
		mustContain(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		var found bool
		for _, ev := range tg.auditEvents(t) {
			if ev["credential_id"] == "jti-expired-1" {
				found = true
				if ev["outcome"] != "deny" || ev["reason"] != "token_expired" || ev["subject"] != "bob" || ev["route"] != "api" || ev["schema_version"] != "1" {
					t.Fatalf("audit event %v", ev)
				}
			}
		}
		if !found {
			t.Fatal("no audit event for the expired token")
		}
		tg.Flush() // the access log is buffered
		if strings.Contains(tg.stderr.String()+tg.accessLog.String()+tg.opLog.String(), tok) {
			t.Fatal("a token reached a log")
		}
	})
	t.Run("public route strips spoofed identity headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tg.url+"/open/x", nil)
		req.Header.Set("X-Auth-Subject", "spoofed")
		req.Header.Set("x-auth-method", "jwt")
		req.Header["X_Auth_Roles"] = []string{"admin"} // underscore spelling, as CGI-style backends read it
		res, body := do(t, req)
		h := decodeReceived(t, body).Headers
		if res.StatusCode != 200 || h.Get("X-Auth-Subject") != "" || h.Get("X-Auth-Method") != "" || len(h["X_Auth_Roles"]) != 0 {
			t.Fatalf("status %d headers %v", res.StatusCode, h)
		}
	})
	t.Run("admin shows provider health", func(t *testing.T) {
		res, body := get(t, tg.adminURL+"/identity-providers")
		var out struct {
			Providers []map[string]any `json:"providers"`
		}
		if err := json.Unmarshal(body, &out); err != nil || res.StatusCode != 200 || len(out.Providers) != 1 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if out.Providers[0]["keys"] == float64(0) {
			t.Fatalf("no keys: %v", out.Providers[0])
		}
	})
}

// TestJWTKeyRotationWithoutFailedRequests rotates the provider's signing
// key under traffic: a new key is added and used, the old one retired.
func TestJWTKeyRotationWithoutFailedRequests(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {disabled: true}\nidentity_providers:\n"+
		providerYAML("idp", idp, "    keys: {unknown_kid_interval: 50ms}\n")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)

	var (
		stop           atomic.Bool
		total, failed  atomic.Int64
		wg             sync.WaitGroup
		mu             sync.Mutex
		failureDetails []string
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tok := idp.Mint(t, map[string]any{"sub": "rotating"})
				req, _ := http.NewRequest("GET", tg.url+"/api/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := http.DefaultClient.Do(req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					failed.Add(1)
					mu.Lock()
					failureDetails = append(failureDetails, res.Status+" "+res.Header.Get("WWW-Authenticate"))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(150 * time.Millisecond)
	idp.RotateKey(t)
	time.Sleep(300 * time.Millisecond)
	idp.RetireOldKeys()
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during rotation: %v", failed.Load(), total.Load(), failureDetails)
	}
	t.Logf("%d requests across a key rotation, none failed", total.Load())
}

// TestJWTProviderDown: while the provider is unreachable the cached keys
// keep serving; past max_stale requests fail closed with 503; when it is
// back, requests succeed again.
func TestJWTProviderDown(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+
		providerYAML("idp", idp, "    keys: {max_stale: 1500ms, refresh_interval: 200ms, min_refresh_interval: 100ms, fetch_timeout: 500ms}\n")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)
	tok := idp.Mint(t, map[string]any{"sub": "carol"})

	idp.Stop()
	if res, body := bearer(t, tg.url+"/api/x", tok, nil); res.StatusCode != 200 {
		t.Fatalf("cached keys did not serve while the provider is down: %d %s", res.StatusCode, body)
	}
	waitFor(t, "fail closed past max_stale", 5*time.Second, func() bool {
		res, err := http.DefaultClient.Do(mustBearerReq(tg.url+"/api/x", tok))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 503
	})
	res, body := bearer(t, tg.url+"/api/x", tok, nil)
	problemBody(t, res, body, 503, "service-unavailable")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if r, _ := get(t, tg.adminURL+"/readyz"); r.StatusCode != 503 {
		t.Fatalf("/readyz %d while keys are stale", r.StatusCode)
	}

	idp.Restart(t)
	waitFor(t, "recovery after the provider is back", 10*time.Second, func() bool {
		res, err := http.DefaultClient.Do(mustBearerReq(tg.url+"/api/x", tok))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

func mustBearerReq(url, tok string) *http.Request {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return req
}

// TestJWTFederation: two providers at once; a token is verified only with
// its own provider's keys; a route can restrict providers.
func TestJWTFederation(t *testing.T) {
	a, b := testidp.Start(t), testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+
		providerYAML("a", a, "")+providerYAML("b", b, "")+
		"routes:\n"+authedRoute("both", "/both", up.URL, "")+authedRoute("only-a", "/only-a", up.URL, ", providers: [a]")).serve()
	tg.waitReady(t)

	tokA := a.ClientCredentialsToken(t)
	tokB := b.ClientCredentialsToken(t)
	// Provider A's issuer, signed with provider B's key and kid.
	forged := b.Mint(t, map[string]any{"iss": a.Issuer, "aud": a.Audience, "sub": "mallory"})

	for _, tc := range []struct {
		name, path, token string
		status            int
		reason            string
	}{
		{"A on shared route", "/both/x", tokA, 200, ""},
		{"B on shared route", "/both/x", tokB, 200, ""},
		{"A on A-only route", "/only-a/x", tokA, 200, ""},
		{"B refused on A-only route", "/only-a/x", tokB, 401, "provider_not_allowed"},
		{"A's iss with B's key", "/both/x", forged, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := bearer(t, tg.url+tc.path, tc.token, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if tc.reason != "" {
				evs := tg.auditEvents(t)
				if last := evs[len(evs)-1]; last["reason"] != tc.reason {
					t.Fatalf("audit reason %v, want %s", last["reason"], tc.reason)
				}
			}
		})
	}
}

// TestReloadKeepsKeySetsOfUnchangedProviders: a reload that leaves a
// provider alone keeps its key set; it refetches the keys (see
// TestReloadRefetchesJWKS), but while the provider is down it still
// applies, and the last good keys keep serving.
func TestReloadKeepsKeySetsOfUnchangedProviders(t *testing.T) {
	idp := testidp.Start(t)
	one, two := namedUpstream(t, "one"), namedUpstream(t, "two")
	cfg := func(target string) string {
		return header + "audit: {disabled: true}\nidentity_providers:\n" + providerYAML("idp", idp, "") +
			"routes:\n" + authedRoute("api", "/api", target, "")
	}
	tg := startGateway(t, cfg(one)).serve()
	tg.waitReady(t)
	tok := idp.Mint(t, map[string]any{"sub": "dave"})
	hits := idp.JWKSHits()

	idp.Stop()
	tg.writeConfig(cfg(two))
	if err := tg.Reload(); err != nil {
		t.Fatalf("reload with an unchanged provider failed while it is down: %v", err)
	}
	res, body := bearer(t, tg.url+"/api/x", tok, nil)
	if res.StatusCode != 200 || string(body) != "two" {
		t.Fatalf("after reload: %d %q", res.StatusCode, body)
	}
	if got := idp.JWKSHits(); got != hits {
		t.Fatalf("JWKS hits %d while the provider is down, was %d", got, hits)
	}
	mustContain(t, tg.opLog.String(), "reload could not refetch")

	// A changed provider gets a new key set, which must be ready first:
	// with the provider down, that reload is refused and "two" keeps serving.
	ReloadReadyTimeout = 500 * time.Millisecond
	t.Cleanup(func() { ReloadReadyTimeout = 10 * time.Second })
	tg.writeConfig(header + "audit: {disabled: true}\nidentity_providers:\n" +
		providerYAML("idp", idp, "    keys: {fetch_timeout: 200ms}\n") + "routes:\n" + authedRoute("api", "/api", one, ""))
	if err := tg.Reload(); err == nil {
		t.Fatal("reload to a provider whose keys cannot be fetched was accepted")
	}
	if res, body := bearer(t, tg.url+"/api/x", tok, nil); res.StatusCode != 200 || string(body) != "two" {
		t.Fatalf("after the refused reload: %d %q", res.StatusCode, body)
	}
}

// TestOpaqueBearerThroughGateway: an opaque bearer token is not the JWT
// method's (it is left for a method that may claim it), but on a route
// where no method does, the answer is 401 invalid_token with reason
// token_unsupported, also on an allow_anonymous route, where falling
// through to anonymous would let a client with an unusable token in as
// nobody.
func TestOpaqueBearerThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+providerYAML("idp", idp, "")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")+
		fmt.Sprintf("  - name: anon\n    match: {path_prefix: /anon}\n    authenticate: {methods: [jwt], allow_anonymous: true}\n    authorize: {allow_anonymous: true}\n    upstream: {targets: [%q]}\n", up.URL)).serve()
	tg.waitReady(t)

	res, body := bearer(t, tg.url+"/anon/x", "", nil)
	if res.StatusCode != 200 || decodeReceived(t, body).Headers.Get("X-Auth-Method") != "anonymous" {
		t.Fatalf("no credential on the anonymous route: %d %s", res.StatusCode, body)
	}
	for _, tc := range []struct{ name, path, token string }{
		{"jwt only", "/api/x", "ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ"},
		{"jwt only, allow_anonymous", "/anon/x", "ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ"},
		{"jwt only, allow_anonymous, one part", "/anon/x", "gho_16C7e42F292c6912E7710c838347Ae178B4a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A problem+json 401 is the gateway's: the upstream answers 200.
			res, body := bearer(t, tg.url+tc.path, tc.token, nil)
			problemBody(t, res, body, 401, "unauthorized")
			mustContain(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
			mustContain(t, res.Header.Get("WWW-Authenticate"), `not a JWT`)
		})
	}
	var unsupported int
	for _, ev := range tg.auditEvents(t) {
		if ev["reason"] == "token_unsupported" {
			unsupported++
			if ev["outcome"] != "deny" || ev["auth_method"] != "jwt" {
				t.Fatalf("audit event %v", ev)
			}
		}
	}
	if unsupported != 3 {
		t.Fatalf("%d token_unsupported audit events, want 3", unsupported)
	}
}
