package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// dpopClient is a DPoP client: a P-256 key pair and proofs signed with it
// (the public key in the proof's jwk header).
type dpopClient struct {
	jkt    string
	signer jose.Signer
}

func newDPoPClient(t *testing.T) *dpopClient {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopClient{jkt: base64.RawURLEncoding.EncodeToString(tp), signer: signer}
}

// proof signs a proof for method and htu, with ath for token (if any);
// edit changes the claims before signing.
func (c *dpopClient) proof(t *testing.T, method, htu, token string, edit func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		claims["ath"] = dpop.AccessTokenHash(token)
	}
	if edit != nil {
		edit(claims)
	}
	b, _ := json.Marshal(claims)
	obj, err := c.signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hsToken mints an HS256 access token of issuer with the given cnf (nil:
// unbound).
func hsToken(t *testing.T, secret, issuer string, cnf map[string]any) string {
	t.Helper()
	claims := map[string]any{"iss": issuer, "aud": "api", "sub": "alice", "jti": rand.Text(),
		"iat": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()}
	if cnf != nil {
		claims["cnf"] = cnf
	}
	return signWith(t, jose.HS256, []byte(secret), nil, claims)
}

// auditReasons returns the reason of every authn.decision event so far.
func (tg *testGateway) auditReasons(t *testing.T) []string {
	t.Helper()
	var reasons []string
	for _, ev := range tg.auditEvents(t) {
		if ev["event"] != "authn.decision" {
			continue
		}
		r, _ := ev["reason"].(string)
		reasons = append(reasons, r)
	}
	return reasons
}

// TestDPoPThroughGateway: DPoP-bound tokens (RFC 9449) through a real
// listener: the happy path (also from the verified-token cache: the proof
// is checked every time), the hostile proofs, the Bearer downgrade of a
// bound token, required and off routes, the challenges, server nonces,
// and the audit reason of every refusal. No refused request reaches the
// upstream, and the upstream never sees the proof or the token.
func TestDPoPThroughGateway(t *testing.T) {
	up := newUpstream(t, "api")
	secret := strings.Repeat("dpop-idp-", 4)
	strictSecret := strings.Repeat("strict-idp-", 3)
	plainSecret := strings.Repeat("plain-idp-", 4)
	nonceSecret := strings.Repeat("n0nce-", 6)
	cfg := header + fmt.Sprintf(`audit: {output: stderr}
identity_providers:
  - {name: corp, issuer: https://idp.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}, dpop: {mode: allowed}}
  - {name: strict, issuer: https://strict.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q},
     dpop: {mode: required, algorithms: [ES256], nonce: {secrets: [%q]}}}
  - {name: plain, issuer: https://plain.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}}
routes:
  - {name: api, match: {path_prefix: /api}, authenticate: {methods: [jwt], providers: [corp]}, upstream: {targets: [%q]}}
  - {name: req, match: {path_prefix: /req}, authenticate: {methods: [jwt], providers: [corp], jwt: {dpop: required}}, upstream: {targets: [%q]}}
  - {name: nonce, match: {path_prefix: /nonce}, authenticate: {methods: [jwt], providers: [strict]}, upstream: {targets: [%q]}}
  - {name: off, match: {path_prefix: /off}, authenticate: {methods: [jwt], providers: [plain]}, upstream: {targets: [%q]}}
`, secret, strictSecret, nonceSecret, plainSecret, up.URL, up.URL, up.URL, up.URL)
	tg := startGateway(t, cfg).serve()

	client, thief := newDPoPClient(t), newDPoPClient(t)
	bound := hsToken(t, secret, "https://idp.example", map[string]any{"jkt": client.jkt})
	unbound := hsToken(t, secret, "https://idp.example", nil)
	plainBound := hsToken(t, plainSecret, "https://plain.example", map[string]any{"jkt": client.jkt})
	strictBound := hsToken(t, strictSecret, "https://strict.example", map[string]any{"jkt": client.jkt})

	call := func(path, scheme, token, proof string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, tg.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", scheme+" "+token)
		}
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		return do(t, req)
	}
	htu := tg.url + "/api/orders"

	t.Run("happy path, twice (the second from the token cache)", func(t *testing.T) {
		for range 2 {
			res, body := call("/api/orders", "DPoP", bound, client.proof(t, "GET", htu, bound, nil))
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			got := decodeReceived(t, body)
			if got.Headers.Get("Dpop") != "" || got.Headers.Get("Authorization") != "" {
				t.Fatalf("the upstream saw the credential: %v", got.Headers)
			}
			if got.Headers.Get("X-Auth-Subject") != "alice" {
				t.Fatalf("identity headers: %v", got.Headers)
			}
		}
	})

	replayed := client.proof(t, "GET", htu, bound, nil)
	if res, body := call("/api/orders", "DPoP", bound, replayed); res.StatusCode != http.StatusOK {
		t.Fatalf("first use of a proof: %d %s", res.StatusCode, body)
	}

	for _, tc := range []struct {
		name, path, scheme, token, proof string
		reason                           string
		challenge                        string // prefix of WWW-Authenticate
	}{
		{"replayed proof", "/api/orders", "DPoP", bound, replayed, "dpop_proof_replayed", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"wrong htm", "/api/orders", "DPoP", bound, client.proof(t, "POST", htu, bound, nil), "dpop_proof_invalid", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"wrong htu", "/api/orders", "DPoP", bound, client.proof(t, "GET", tg.url+"/api/other", bound, nil), "dpop_proof_invalid", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"wrong host in htu", "/api/orders", "DPoP", bound, client.proof(t, "GET", "https://api.example.com/api/orders", bound, nil), "dpop_proof_invalid", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"stale iat", "/api/orders", "DPoP", bound, client.proof(t, "GET", htu, bound, func(c map[string]any) { c["iat"] = time.Now().Add(-10 * time.Minute).Unix() }), "dpop_proof_invalid", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"ath of another token", "/api/orders", "DPoP", bound, client.proof(t, "GET", htu, unbound, nil), "dpop_proof_invalid", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"no proof", "/api/orders", "DPoP", bound, "", "dpop_proof_missing", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"proof of another key (stolen token)", "/api/orders", "DPoP", bound, thief.proof(t, "GET", htu, bound, nil), "token_binding_mismatch", `DPoP realm="gatehouse", error="invalid_token"`},
		{"unbound token with the DPoP scheme", "/api/orders", "DPoP", unbound, client.proof(t, "GET", htu, unbound, nil), "token_binding_mismatch", `DPoP realm="gatehouse", error="invalid_token"`},
		{"bound token sent as Bearer", "/api/orders", "Bearer", bound, "", "dpop_bound_token_as_bearer", `DPoP realm="gatehouse", error="invalid_token"`},
		{"bound token sent as Bearer, with a proof", "/api/orders", "Bearer", bound, client.proof(t, "GET", htu, bound, nil), "dpop_bound_token_as_bearer", `DPoP realm="gatehouse", error="invalid_token"`},
		{"Bearer on a route that requires DPoP", "/req/x", "Bearer", unbound, "", "dpop_proof_missing", `DPoP realm="gatehouse", error="invalid_dpop_proof"`},
		{"DPoP on a route where it is off", "/off/x", "DPoP", plainBound, client.proof(t, "GET", tg.url+"/off/x", plainBound, nil), "dpop_not_allowed", `Bearer realm="gatehouse", error="invalid_token"`},
		{"bound token as Bearer where DPoP is off", "/off/x", "Bearer", plainBound, "", "dpop_bound_token_as_bearer", `DPoP realm="gatehouse", error="invalid_token"`},
		{"a token that expired, with the DPoP scheme", "/api/orders", "DPoP", signWith(t, jose.HS256, []byte(secret), nil, map[string]any{"iss": "https://idp.example", "aud": "api", "sub": "alice", "exp": time.Now().Add(-time.Hour).Unix(), "cnf": map[string]any{"jkt": client.jkt}}), "x", "token_expired", `DPoP realm="gatehouse", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tg.auditReasons(t))
			res, body := call(tc.path, tc.scheme, tc.token, tc.proof)
			problemBody(t, res, body, http.StatusUnauthorized, "unauthorized")
			if c := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want prefix %q", c, tc.challenge)
			}
			if strings.Contains(string(body), tc.token) {
				t.Fatal("the token is echoed")
			}
			reasons := tg.auditReasons(t)
			if len(reasons) != before+1 || reasons[before] != tc.reason {
				t.Fatalf("audit reasons %v, want %s last", reasons[before:], tc.reason)
			}
		})
	}

	t.Run("no credential: Bearer and DPoP challenges", func(t *testing.T) {
		res, _ := call("/api/orders", "", "", "")
		c := res.Header.Get("WWW-Authenticate")
		if res.StatusCode != http.StatusUnauthorized || c != `Bearer realm="gatehouse", DPoP realm="gatehouse", algs="ES256 ES384 PS256 RS256 EdDSA"` {
			t.Fatalf("%d %q", res.StatusCode, c)
		}
		res, _ = call("/off/x", "", "", "")
		if c := res.Header.Get("WWW-Authenticate"); c != `Bearer realm="gatehouse"` {
			t.Fatalf("off route: %q", c)
		}
	})

	t.Run("server nonce: 401 use_dpop_nonce, then 200", func(t *testing.T) {
		nhtu := tg.url + "/nonce/x"
		res, body := call("/nonce/x", "DPoP", strictBound, client.proof(t, "GET", nhtu, strictBound, nil))
		problemBody(t, res, body, http.StatusUnauthorized, "unauthorized")
		nonce := res.Header.Get("DPoP-Nonce")
		if nonce == "" || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `DPoP realm="gatehouse", error="use_dpop_nonce"`) {
			t.Fatalf("nonce %q, challenge %q", nonce, res.Header.Get("WWW-Authenticate"))
		}
		if r := tg.auditReasons(t); r[len(r)-1] != "dpop_nonce_required" {
			t.Fatalf("audit %v", r)
		}
		withNonce := func(c map[string]any) { c["nonce"] = nonce }
		res, body = call("/nonce/x", "DPoP", strictBound, client.proof(t, "GET", nhtu, strictBound, withNonce))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("retry with the nonce: %d %s", res.StatusCode, body)
		}
		if res.Header.Get("DPoP-Nonce") != "" {
			t.Fatal("a current nonce needs no renewal")
		}
		res, body = call("/nonce/x", "DPoP", strictBound, client.proof(t, "GET", nhtu, strictBound, func(c map[string]any) { c["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }))
		problemBody(t, res, body, http.StatusUnauthorized, "unauthorized")
		if res.Header.Get("DPoP-Nonce") == "" {
			t.Fatal("a forged nonce gets a fresh one")
		}
		res, body = call("/nonce/x", "Bearer", hsToken(t, strictSecret, "https://strict.example", nil), "")
		problemBody(t, res, body, http.StatusUnauthorized, "unauthorized")
	})

	reasons := tg.auditReasons(t)
	for _, want := range []string{"ok", "dpop_proof_replayed", "dpop_proof_invalid", "dpop_proof_missing", "token_binding_mismatch", "dpop_bound_token_as_bearer", "dpop_not_allowed", "dpop_nonce_required"} {
		if !slices.Contains(reasons, want) {
			t.Errorf("no audit event with reason %s", want)
		}
	}
}

// TestDPoPReplayCacheSurvivesReload: the replay cache is a process
// resource, so a proof accepted before a configuration reload is still
// refused after it (a new cache per plan would reopen every recent proof
// to replay).
func TestDPoPReplayCacheSurvivesReload(t *testing.T) {
	up := newUpstream(t, "api")
	secret := strings.Repeat("reload-idp-", 3)
	cfg := func(extra string) string {
		return header + fmt.Sprintf(`identity_providers:
  - {name: corp, issuer: https://idp.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}, dpop: {mode: allowed}}
routes:
  - {name: api, match: {path_prefix: /api}, authenticate: {methods: [jwt]}, upstream: {targets: [%q]}}
%s`, secret, up.URL, extra)
	}
	tg := startGateway(t, cfg("")).serve()
	client := newDPoPClient(t)
	token := hsToken(t, secret, "https://idp.example", map[string]any{"jkt": client.jkt})
	proof := client.proof(t, "GET", tg.url+"/api/x", token, nil)
	call := func() int {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/api/x", nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		res, _ := do(t, req)
		return res.StatusCode
	}
	if s := call(); s != http.StatusOK {
		t.Fatalf("first use: %d", s)
	}
	tg.writeConfig(cfg(fmt.Sprintf("  - {name: other, public: true, match: {path_prefix: /other}, upstream: {targets: [%q]}}\n", up.URL)))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if res, _ := get(t, tg.url+"/other"); res.StatusCode != http.StatusOK {
		t.Fatalf("the reload did not take: %d", res.StatusCode)
	}
	if s := call(); s != http.StatusUnauthorized {
		t.Fatalf("replay after a reload: %d, want 401", s)
	}
}

// TestDPoPReplayCacheSharedThroughRedis: with dpop.replay_cache.store:
// redis, a proof accepted by one replica is a replay for every other (with
// the memory store each replica would accept it once). Both replicas are
// reached under one external host, as behind a load balancer.
func TestDPoPReplayCacheSharedThroughRedis(t *testing.T) {
	rc := redistest.Config(t, redistest.Addr(t))
	up := newUpstream(t, "api")
	secret := strings.Repeat("shared-idp-", 3)
	cfg := header + fmt.Sprintf(`audit: {output: stderr}
redis: {addresses: [%q], key_prefix: %q}
dpop: {replay_cache: {store: redis}}
identity_providers:
  - {name: corp, issuer: https://idp.example, audiences: [api], algorithms: [HS256], static_keys: {hmac_secret: %q}, dpop: {mode: allowed}}
routes:
  - {name: api, match: {path_prefix: /api}, authenticate: {methods: [jwt]}, upstream: {targets: [%q]}}
`, rc.Addresses[0], rc.KeyPrefix, secret, up.URL)
	a := startGateway(t, cfg).serve()
	b := startGateway(t, cfg).serve()
	client := newDPoPClient(t)
	token := hsToken(t, secret, "https://idp.example", map[string]any{"jkt": client.jkt})
	external := a.url // the URL clients use; both replicas serve it
	call := func(replica *testGateway, proof string) int {
		req, _ := http.NewRequest(http.MethodGet, replica.url+"/api/x", nil)
		req.Host = strings.TrimPrefix(external, "http://")
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		res, _ := do(t, req)
		return res.StatusCode
	}
	first := client.proof(t, "GET", external+"/api/x", token, nil)
	for _, tc := range []struct {
		name    string
		replica *testGateway
		proof   string
		want    int
	}{
		{"first use on replica A", a, first, http.StatusOK},
		{"replayed to replica B", b, first, http.StatusUnauthorized},
		{"a fresh proof on replica B", b, client.proof(t, "GET", external+"/api/x", token, nil), http.StatusOK},
	} {
		if got := call(tc.replica, tc.proof); got != tc.want {
			t.Fatalf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if !slices.Contains(b.auditReasons(t), "dpop_proof_replayed") {
		t.Fatalf("replica B did not record the replay: %v", b.auditReasons(t))
	}
}
