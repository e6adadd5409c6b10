package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

const reloadIssuer = "https://idp.reload.example"

// signingKey is a test issuer's ES256 key pair.
type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newSigningKey(t *testing.T, kid string) signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: priv}
}

// token signs a valid access token for reloadIssuer with k.
func (k signingKey) token(t *testing.T, sub string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := josejwt.Signed(signer).Claims(map[string]any{
		"iss": reloadIssuer, "aud": "reload-api", "sub": sub, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer is a real JWKS endpoint whose keys the test edits.
type jwksServer struct {
	*httptest.Server
	mu        sync.Mutex
	keys      []signingKey
	broken    bool
	userAgent string
	hits      int
}

func newJWKSServer(t *testing.T, keys ...signingKey) *jwksServer {
	t.Helper()
	js := &jwksServer{keys: keys}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.mu.Lock()
		defer js.mu.Unlock()
		js.hits++
		js.userAgent = r.Header.Get("User-Agent")
		if js.broken {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range js.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"})
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(keys ...signingKey) {
	js.mu.Lock()
	js.keys = keys
	js.mu.Unlock()
}

func (js *jwksServer) state() (ua string, hits int) {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.userAgent, js.hits
}

func status(t *testing.T, url, tok string) int {
	t.Helper()
	res, _ := bearer(t, url, tok, nil)
	return res.StatusCode
}

// TestReloadRefetchesJWKS: the documented emergency revocation. The key is
// removed at the provider, the configuration (unchanged) is reloaded, and
// tokens signed with that key are refused at once, cached ones included.
// If the provider cannot be reached, the reload still applies and the last
// good keys keep serving.
func TestReloadRefetchesJWKS(t *testing.T) {
	a, b := newSigningKey(t, "key-a"), newSigningKey(t, "key-b")
	js := newJWKSServer(t, a, b)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+
		fmt.Sprintf("  - name: idp\n    issuer: %s\n    audiences: [reload-api]\n    jwks_uri: %s/jwks\n    insecure_allow_http: true\n"+
			"    keys: {refresh_interval: 1h, unknown_kid_interval: 1h}\n", reloadIssuer, js.URL)+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)

	tokA, tokB := a.token(t, "alice"), b.token(t, "bob")
	for range 2 { // the second time from the verified-token cache
		if s := status(t, tg.url+"/api/x", tokA); s != 200 {
			t.Fatalf("token A before revocation: %d", s)
		}
	}
	if s := status(t, tg.url+"/api/x", tokB); s != 200 {
		t.Fatalf("token B: %d", s)
	}
	if ua, _ := js.state(); !strings.HasPrefix(ua, "Gatehouse/") || len(ua) == len("Gatehouse/") {
		t.Errorf("JWKS fetched with User-Agent %q, want Gatehouse/<version>", ua)
	}

	// Emergency: key A is removed at the provider. Until a reload (or the
	// next refresh, an hour away) the cached keys still have it.
	js.set(b)
	if s := status(t, tg.url+"/api/x", tokA); s != 200 {
		t.Fatalf("token A before the reload: %d (the test assumes keys are cached)", s)
	}
	if err := tg.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	res, body := bearer(t, tg.url+"/api/x", tokA, nil)
	problemBody(t, res, body, 401, "unauthorized")
	evs := tg.auditEvents(t)
	if last := evs[len(evs)-1]; last["reason"] != "unknown_kid" {
		t.Fatalf("token A after the reload: audit reason %v, want unknown_kid", last["reason"])
	}
	if s := status(t, tg.url+"/api/x", tokB); s != 200 {
		t.Fatalf("token B after the reload: %d", s)
	}

	// The provider fails: a reload still applies, with the last good keys,
	// and says so in the log.
	js.mu.Lock()
	js.broken = true
	js.mu.Unlock()
	_, hits := js.state()
	if err := tg.Reload(); err != nil {
		t.Fatalf("reload with the provider failing: %v", err)
	}
	if _, h := js.state(); h != hits+1 {
		t.Fatalf("the reload made %d JWKS requests, want 1", h-hits)
	}
	if s := status(t, tg.url+"/api/x", tokB); s != 200 {
		t.Fatalf("token B after a reload with the provider failing: %d", s)
	}
	mustContain(t, tg.opLog.String(), "reload could not refetch")
}

// TestSIGHUPRereadsStaticKeyFiles: a static key file edited in place (same
// path) takes effect on SIGHUP: the old key is refused, the new accepted.
func TestSIGHUPRereadsStaticKeyFiles(t *testing.T) {
	a, b := newSigningKey(t, "key-a"), newSigningKey(t, "key-b")
	keyFile := filepath.Join(t.TempDir(), "idp.pem")
	writePEM := func(k signingKey) {
		der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(a)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {disabled: true}\nlifecycle: {watch_config: false}\nidentity_providers:\n"+
		fmt.Sprintf("  - name: idp\n    issuer: %s\n    audiences: [reload-api]\n    static_keys: {files: [%q]}\n", reloadIssuer, keyFile)+
		"routes:\n"+authedRoute("api", "/api", up.URL, ""))
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- tg.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	}()
	tokA, tokB := a.token(t, "alice"), b.token(t, "bob")
	waitFor(t, "serving", 5*time.Second, func() bool {
		res, err := http.DefaultClient.Do(mustBearerReq(tg.url+"/api/x", tokA))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	if s := status(t, tg.url+"/api/x", tokB); s != 401 {
		t.Fatalf("token B before the key file changed: %d", s)
	}

	writePEM(b) // the key is replaced in the same file
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new key after SIGHUP", 5*time.Second, func() bool { return status(t, tg.url+"/api/x", tokB) == 200 })
	if s := status(t, tg.url+"/api/x", tokA); s != 401 {
		t.Fatalf("token signed with the replaced key after SIGHUP: %d, want 401", s)
	}
}

// TestNegativeCacheTTLDeprecated: the key still loads (old files keep
// working) and a warning says it does nothing.
func TestNegativeCacheTTLDeprecated(t *testing.T) {
	a := newSigningKey(t, "key-a")
	js := newJWKSServer(t, a)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"audit: {disabled: true}\nidentity_providers:\n"+
		fmt.Sprintf("  - name: idp\n    issuer: %s\n    audiences: [reload-api]\n    jwks_uri: %s/jwks\n    insecure_allow_http: true\n"+
			"    keys: {negative_cache_ttl: 1m}\n", reloadIssuer, js.URL)+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)
	mustContain(t, tg.opLog.String(), "negative_cache_ttl is deprecated and ignored")
	if s := status(t, tg.url+"/api/x", a.token(t, "alice")); s != 200 {
		t.Fatalf("status %d", s)
	}
}
