package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

const assertionIssuer = "https://gateway.test.example"

// assertionGatewayConfig is a gateway with a static API key (over store),
// identity_assertion (extra added to its block), a route that sends an
// assertion (audience https://orders.internal) and one that does not.
func assertionGatewayConfig(store, upstream, hash, extra string) string {
	return header + "audit: {output: stderr}\napi_keys:\n" + store +
		fmt.Sprintf("  static:\n    - {id: k1, consumer: partner, hash: %q, scopes: [orders:read, orders:write], groups: [partners]}\n", hash) +
		"identity_assertion:\n  issuer: " + assertionIssuer + "\n  keys: {source: store, seal_secret: " + strings.Repeat("s", 40) + "}\n" + extra +
		"routes:\n" +
		fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n"+
			"    identity_assertion: {audience: https://orders.internal}\n", upstream) +
		fmt.Sprintf("  - name: plain\n    match: {path_prefix: /plain}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", upstream)
}

func staticKey(t *testing.T) (plain, hash string) {
	t.Helper()
	plain, err := apikey.Format{}.Generate()
	if err != nil {
		t.Fatal(err)
	}
	hasher, _ := apikey.NewHasher(nil)
	return plain, fmt.Sprintf("sha256:%x", hasher.Hash(plain))
}

// fetchJWKS gets the gateway's JWK Set as a backend would.
func fetchJWKS(t *testing.T, base string) (jose.JSONWebKeySet, *http.Response) {
	t.Helper()
	res, body := get(t, base+"/.well-known/gatehouse/jwks.json")
	if res.StatusCode != 200 {
		t.Fatalf("JWKS: %d %s", res.StatusCode, body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, body)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Fatalf("JWKS holds a private or invalid key: %s", body)
		}
	}
	return set, res
}

// verifyAssertion verifies token with go-jose against set, checking alg,
// iss, aud and exp, and returns its claims.
func verifyAssertion(t *testing.T, set jose.JSONWebKeySet, token, audience string) map[string]any {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion %q: %v", token, err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("assertion kid %q is not in the JWKS", tok.Headers[0].KeyID)
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys[0].Key, &std, &all); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	if err := std.Validate(jwt.Expected{Issuer: assertionIssuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	if std.Expiry.Time().Sub(std.IssuedAt.Time()) != time.Minute {
		t.Fatalf("lifetime %s, want 60s", std.Expiry.Time().Sub(std.IssuedAt.Time()))
	}
	return all
}

func TestIdentityAssertionThroughGateway(t *testing.T) {
	up := newUpstream(t, "orders")
	plain, hash := staticKey(t)
	store := fmt.Sprintf("  store: {type: embedded, path: %q}\n", filepath.Join(t.TempDir(), "keys.db"))
	tg := startGateway(t, assertionGatewayConfig(store, up.URL, hash, "")).serve()

	set, res := fetchJWKS(t, tg.url)
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("JWKS Cache-Control %q", cc)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("JWKS Content-Type %q", ct)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the signing key and the next one", len(set.Keys))
	}
	if res, _ := get(t, tg.adminURL+"/identity-assertion/jwks.json"); res.StatusCode != 404 {
		t.Fatalf("admin JWKS without jwks.admin: %d", res.StatusCode)
	}

	call := func(path string, hdr map[string]string) received {
		t.Helper()
		r, _ := http.NewRequest("GET", tg.url+path, nil)
		r.Header.Set("X-API-Key", plain)
		for k, v := range hdr {
			r.Header[k] = []string{v}
		}
		res, body := do(t, r)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		return decodeReceived(t, body)
	}
	forged := map[string]string{"X-Gatehouse-Assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "X_gatehouse_assertion": "forged"}

	got := call("/orders/1", forged)
	vals := got.Headers.Values("X-Gatehouse-Assertion")
	if len(vals) != 1 || vals[0] == forged["X-Gatehouse-Assertion"] {
		t.Fatalf("upstream got assertion headers %q", vals)
	}
	if v := got.Headers.Get("X_gatehouse_assertion"); v != "" {
		t.Fatal("the underscore spelling of the client's copy reached the upstream")
	}
	claims := verifyAssertion(t, set, vals[0], "https://orders.internal")
	for k, want := range map[string]any{"client_id": "partner", "consumer": "partner", "scope": "orders:read orders:write",
		"idp_iss": "gatehouse", "auth_methods": []any{"api_key"}, "groups": []any{"partners"}} {
		if fmt.Sprint(claims[k]) != fmt.Sprint(want) {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if claims["sub"] == "" || claims["sub"] == nil {
		t.Error("no sub")
	}
	// Cached: the next request of the same caller gets the same assertion.
	if again := call("/orders/2", nil).Headers.Get("X-Gatehouse-Assertion"); again != vals[0] {
		t.Error("the assertion was not reused within identity_assertion.cache")
	}

	// A route without an assertion: the client's copy is removed anyway.
	if v := call("/plain/1", forged).Headers.Values("X-Gatehouse-Assertion"); len(v) != 0 {
		t.Fatalf("route without assertion passed on %q", v)
	}

	// Without a credential: 401, nothing minted.
	res, body := get(t, tg.url+"/orders/1")
	problemBody(t, res, body, 401, "unauthorized")

	// A reload keeps the keys: same JWKS, and assertions still verify.
	kid := func(tok string) string {
		p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return p.Headers[0].KeyID
	}
	tg.writeConfig(assertionGatewayConfig(store, up.URL, hash, "  cache: 0s\n"))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	after, _ := fetchJWKS(t, tg.url)
	if b1, b2 := mustJSON(t, set), mustJSON(t, after); b1 != b2 {
		t.Fatalf("a reload changed the keys:\n%s\n%s", b1, b2)
	}
	tok := call("/orders/3", nil).Headers.Get("X-Gatehouse-Assertion")
	verifyAssertion(t, after, tok, "https://orders.internal")
	if kid(tok) != kid(vals[0]) {
		t.Fatal("a reload changed the signing key")
	}
	if tok2 := call("/orders/4", nil).Headers.Get("X-Gatehouse-Assertion"); tok2 == tok {
		t.Fatal("cache: 0s still reused an assertion")
	}
}

// TestIdentityAssertionAsBearer: header Authorization replaces the
// client's Authorization with the gateway's assertion; the JWK Set is
// served on the admin listener only (jwks.path "", jwks.admin).
func TestIdentityAssertionAsBearer(t *testing.T) {
	up := newUpstream(t, "orders")
	plain, hash := staticKey(t)
	cfg := header + "audit: {output: stderr}\napi_keys:\n  store: {type: static}\n" +
		fmt.Sprintf("  static:\n    - {id: k1, consumer: partner, hash: %q}\n", hash) +
		"identity_assertion:\n  issuer: " + assertionIssuer + "\n  header: Authorization\n  keys: {source: memory}\n  all_routes: true\n  jwks: {path: \"\", admin: true}\n" +
		fmt.Sprintf("routes:\n  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", up.URL)
	tg := startGateway(t, cfg).serve()
	res, body := get(t, tg.url+"/.well-known/gatehouse/jwks.json")
	problemBody(t, res, body, 404, "route-not-found")
	res, body = get(t, tg.adminURL+"/identity-assertion/jwks.json")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); res.StatusCode != 200 || err != nil || len(set.Keys) != 2 {
		t.Fatalf("admin JWKS: %d %s", res.StatusCode, body)
	}
	r, _ := http.NewRequest("GET", tg.url+"/orders/1", nil)
	r.Header.Set("Authorization", "ApiKey "+plain)
	res, body = do(t, r)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	az := decodeReceived(t, body).Headers.Values("Authorization")
	if len(az) != 1 || !strings.HasPrefix(az[0], "Bearer ") {
		t.Fatalf("upstream Authorization %q", az)
	}
	// The default audience: the route's upstream target.
	verifyAssertion(t, set, strings.TrimPrefix(az[0], "Bearer "), up.URL)
}

// TestIdentityAssertionReplicasShareKeys: two gateways on one PostgreSQL
// store publish the same keys, and each one's assertions verify against
// the other's JWKS.
func TestIdentityAssertionReplicasShareKeys(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	store := fmt.Sprintf("  store: {type: postgres, dsn: %q, schema: %s}\n", dsn, pgtest.FreshSchema(t, dsn))
	up := newUpstream(t, "orders")
	plain, hash := staticKey(t)
	a := startGateway(t, assertionGatewayConfig(store, up.URL, hash, "")).serve()
	b := startGateway(t, assertionGatewayConfig(store, up.URL, hash, "")).serve()
	setA, _ := fetchJWKS(t, a.url)
	setB, _ := fetchJWKS(t, b.url)
	if ja, jb := mustJSON(t, setA), mustJSON(t, setB); ja != jb || len(setA.Keys) != 2 {
		t.Fatalf("replicas publish different keys:\n%s\n%s", ja, jb)
	}
	for _, pair := range []struct {
		name      string
		gw        *testGateway
		otherJWKS jose.JSONWebKeySet
	}{{"a verified with b's JWKS", a, setB}, {"b verified with a's JWKS", b, setA}} {
		r, _ := http.NewRequest("GET", pair.gw.url+"/orders/1", nil)
		r.Header.Set("X-API-Key", plain)
		res, body := do(t, r)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", pair.name, res.StatusCode, body)
		}
		verifyAssertion(t, pair.otherJWKS, decodeReceived(t, body).Headers.Get("X-Gatehouse-Assertion"), "https://orders.internal")
	}

	// A replica with another seal secret opens none of the keys: it
	// publishes none, is not ready, and refuses (503) rather than
	// forwarding without an assertion or signing with a key of its own.
	wrong := strings.Replace(assertionGatewayConfig(store, up.URL, hash, ""), strings.Repeat("s", 40), strings.Repeat("w", 40), 1)
	c := startGateway(t, wrong).serve()
	setC, _ := fetchJWKS(t, c.url)
	if len(setC.Keys) != 0 {
		t.Fatalf("a replica with the wrong seal secret publishes %d keys", len(setC.Keys))
	}
	if r, _ := get(t, c.adminURL+"/readyz"); r.StatusCode != 503 {
		t.Fatalf("/readyz %d on a replica that cannot open the keys", r.StatusCode)
	}
	r, _ := http.NewRequest("GET", c.url+"/orders/1", nil)
	r.Header.Set("X-API-Key", plain)
	res, body := do(t, r)
	problemBody(t, res, body, 503, "service-unavailable")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if again, _ := fetchJWKS(t, a.url); mustJSON(t, again) != mustJSON(t, setA) {
		t.Fatal("the replica with the wrong secret changed the shared keys")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIdentityAssertionFromDecisionAPI: a proxy in front (nginx
// auth_request, Traefik ForwardAuth, …) gets the signed assertion among
// the headers to copy, as the upstream would have; a copy the client
// sent is not echoed back.
func TestIdentityAssertionFromDecisionAPI(t *testing.T) {
	up := newUpstream(t, "orders")
	cfg, key := decisionConfig(t, up.URL, "identity_assertion: {issuer: "+assertionIssuer+", all_routes: true, keys: {source: memory}}\n")
	tg := startGateway(t, cfg).serve()
	set, _ := fetchJWKS(t, tg.url)
	host := strings.TrimPrefix(tg.url, "http://")
	res, body := askForwarded(t, tg.url, "GET", "/orders/7", host,
		http.Header{"X-Api-Key": {key}, "X-Gatehouse-Assertion": {"forged"}})
	if res.StatusCode != 200 {
		t.Fatalf("decision %d %s", res.StatusCode, body)
	}
	vals := res.Header.Values("X-Gatehouse-Assertion")
	if len(vals) != 1 || vals[0] == "forged" {
		t.Fatalf("decision assertion headers %q", vals)
	}
	verifyAssertion(t, set, vals[0], up.URL)
}
