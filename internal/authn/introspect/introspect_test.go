package introspect_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/authntest"
	"github.com/gatehouse/gatehouse/internal/authn/introspect"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestConformance runs the shared authenticator suite against a real
// provider.
func TestConformance(t *testing.T) {
	idp := testidp.Start(t)
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, ""), nil, nil), 0, false)
	good := idp.OpaqueToken(t, "read")
	req := func(auth string) func() *http.Request {
		return func() *http.Request {
			r := bearer("")
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			return r
		}
	}
	authntest.Run(t, a, authntest.Cases{
		None: req("Basic dXNlcjpwYXNz"),
		Good: req("Bearer " + good),
		Bad: []func() *http.Request{
			req("Bearer unknown-opaque-token"), // inactive at the provider
			req("Bearer not a token"),          // not a bearer value
			req("Bearer\ttab"),
		},
		// A JWT is the jwt method's unless confirm_jwt.
		NotMine: []func() *http.Request{req("Bearer " + idp.ClientCredentialsToken(t))},
	})
}

// TestOpaqueToken: an active opaque token yields the identity the
// provider states, mapped as a JWT's claims are.
func TestOpaqueToken(t *testing.T) {
	idp := testidp.Start(t)
	obs := &countingObserver{}
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, ""), nil, obs), 0, false)
	token := idp.OpaqueToken(t, "read", "write")
	id, err := authenticate(a, token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Method != identity.MethodIntrospection || id.Subject != testidp.OpaqueClientID || id.ClientID != testidp.OpaqueClientID ||
		id.Issuer != idp.Issuer || id.Provider != "idp" || !slices.Equal(id.Scopes, []string{"read", "write"}) ||
		id.ExpiresAt.IsZero() || id.CredentialID == "" {
		t.Fatalf("identity %+v", id)
	}
	// Answered from the cache the second time: one call in all.
	if _, err := authenticate(a, token); err != nil {
		t.Fatal(err)
	}
	if n := idp.Introspections(); n != 1 {
		t.Fatalf("%d introspection calls, want 1", n)
	}
	if obs.hits != 1 || obs.misses != 1 || obs.results[introspect.ResultActive] != 1 {
		t.Fatalf("observer: %+v", obs)
	}
}

// TestRefusals: what the provider refuses, and what never reaches it.
func TestRefusals(t *testing.T) {
	idp := testidp.Start(t)
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, ""), nil, nil), 1024, false)
	for _, tc := range []struct {
		name   string
		token  string
		reason string
		calls  int64 // introspection calls it costs
	}{
		{"unknown token is inactive", "b3BhcXVlLXVua25vd24", string(introspect.ReasonInactive), 1},
		{"inactive answer is cached", "b3BhcXVlLXVua25vd24", string(introspect.ReasonInactive), 0},
		{"not a bearer value", "a b", string(authn.ReasonMalformed), 0},
		{"too large", string(make([]byte, 2000)), string(authn.ReasonTooLarge), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := idp.Introspections()
			r := bearer("")
			r.Header.Set("Authorization", "Bearer "+tc.token)
			_, err := a.Authenticate(r)
			if got := reasonOf(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
			if n := idp.Introspections() - before; n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

// TestRevocationWithinCacheBound: a token revoked at the provider is
// refused once its cached answer expires (cache_ttl), not before the
// bound and not later.
func TestRevocationWithinCacheBound(t *testing.T) {
	idp := testidp.Start(t)
	clk := newClock()
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      cache_ttl: 30s\n"), clk, nil), 0, false)
	token := idp.OpaqueToken(t)
	clk.Reset()
	if _, err := authenticate(a, token); err != nil {
		t.Fatal(err)
	}
	idp.Revoke(t, token)
	clk.Add(29 * time.Second)
	if _, err := authenticate(a, token); err != nil {
		t.Fatalf("within cache_ttl: %v", err) // the documented bound
	}
	clk.Add(time.Second)
	if _, err := authenticate(a, token); reasonOf(err) != string(introspect.ReasonInactive) {
		t.Fatalf("after cache_ttl: %v, want token_inactive", err)
	}
}

// TestCacheNeverOutlivesExp: with a cache_ttl far longer than the token's
// life, the answer is not reused past exp: the next request asks again
// and the expired token is refused.
func TestCacheNeverOutlivesExp(t *testing.T) {
	idp := testidp.Start(t)
	clk := newClock()
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      cache_ttl: 24h\n      stale_if_error: 24h\n"), clk, nil), 0, false)
	token := idp.OpaqueToken(t) // exp in 5 minutes
	clk.Reset()
	id, err := authenticate(a, token)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = id.ExpiresAt.Add(-time.Second)
	if _, err := authenticate(a, token); err != nil || idp.Introspections() != 1 {
		t.Fatalf("before exp: %v, %d calls", err, idp.Introspections())
	}
	clk.t = id.ExpiresAt
	if _, err := authenticate(a, token); idp.Introspections() != 2 {
		t.Fatalf("at exp: %v, %d calls; want a new call", err, idp.Introspections())
	}
	clk.t = id.ExpiresAt.Add(time.Second)
	if _, err := authenticate(a, token); reasonOf(err) != string(authn.ReasonExpired) || idp.Introspections() != 3 {
		t.Fatalf("past exp: %v, %d calls; want token_expired after a new call", err, idp.Introspections())
	}
	// Nor does stale_if_error serve it past exp while the provider is down.
	idp.Stop()
	clk.t = id.ExpiresAt.Add(time.Minute)
	if _, err := authenticate(a, token); reasonOf(err) != "503:"+string(introspect.ReasonFailed) {
		t.Fatalf("past exp, provider down: %v", err)
	}
}

// TestProviderDown: unreachable, 5xx and timeouts fail closed (503), and
// are not cached: the provider back, the token works again.
func TestProviderDown(t *testing.T) {
	idp := testidp.Start(t)
	obs := &countingObserver{}
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      timeout: 300ms\n"), nil, obs), 0, false)
	token := idp.OpaqueToken(t)
	other := idp.OpaqueToken(t)
	want503 := "503:" + string(introspect.ReasonFailed)

	idp.FailIntrospection(http.StatusInternalServerError)
	if _, err := authenticate(a, token); reasonOf(err) != want503 {
		t.Fatalf("5xx: %v", err)
	}
	idp.FailIntrospection(0)
	idp.DelayIntrospection(time.Second)
	if _, err := authenticate(a, other); reasonOf(err) != want503 {
		t.Fatalf("timeout: %v", err)
	}
	idp.DelayIntrospection(0)
	idp.Stop()
	if _, err := authenticate(a, token); reasonOf(err) != want503 {
		t.Fatalf("unreachable: %v", err)
	}
	idp.Restart(t)
	if _, err := authenticate(a, token); err != nil {
		t.Fatalf("provider back: %v", err)
	}
	if obs.results[introspect.ResultError] != 3 || obs.results[introspect.ResultActive] != 1 {
		t.Fatalf("observer: %+v", obs.results)
	}
}

// TestStaleIfError: with stale_if_error, an active answer is served past
// its cache expiry while the provider is down, for that long at most.
func TestStaleIfError(t *testing.T) {
	idp := testidp.Start(t)
	clk := newClock()
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      cache_ttl: 10s\n      stale_if_error: 20s\n"), clk, nil), 0, false)
	token := idp.OpaqueToken(t)
	clk.Reset()
	if _, err := authenticate(a, token); err != nil {
		t.Fatal(err)
	}
	idp.Stop()
	clk.Add(29 * time.Second) // 10s fresh + 19s stale
	if _, err := authenticate(a, token); err != nil {
		t.Fatalf("within stale_if_error: %v", err)
	}
	clk.Add(time.Second)
	if _, err := authenticate(a, token); reasonOf(err) != "503:"+string(introspect.ReasonFailed) {
		t.Fatalf("past stale_if_error: %v", err)
	}
}

// TestCollapsing: concurrent requests with one new token make one call.
func TestCollapsing(t *testing.T) {
	idp := testidp.Start(t)
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, ""), nil, nil), 0, false)
	token := idp.OpaqueToken(t)
	idp.DelayIntrospection(300 * time.Millisecond) // all arrive while the first is in flight
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := authenticate(a, token)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := idp.Introspections(); c != 1 {
		t.Fatalf("%d introspection calls for %d concurrent requests, want 1", c, n)
	}
}

// TestClientAuthentication: each client authentication is verified by the
// provider (a wrong secret is refused there: 503, never accepted).
func TestClientAuthentication(t *testing.T) {
	idp := testidp.Start(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	idp.SetClientKey("gw-1", &key.PublicKey)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(other)
	otherFile := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, block, method string
		ok                  bool
	}{
		{"client_secret_basic", basicBlock(idp, ""), "client_secret_basic", true},
		{"client_secret_basic, wrong secret", "      client_secret: wrong\n", "client_secret_basic", false},
		{"client_secret_post", "      client_auth: client_secret_post\n      client_secret: " + idp.ClientSecret + "\n", "client_secret_post", true},
		{"client_secret_post, wrong secret", "      client_auth: client_secret_post\n      client_secret: wrong\n", "client_secret_post", false},
		{"private_key_jwt", "      client_auth: private_key_jwt\n      private_key_file: " + keyFile + "\n      private_key_id: gw-1\n", "private_key_jwt", true},
		{"private_key_jwt, unregistered key", "      client_auth: private_key_jwt\n      private_key_file: " + otherFile + "\n      private_key_id: gw-1\n", "private_key_jwt", false},
		{"private_key_jwt, wrong audience", "      client_auth: private_key_jwt\n      private_key_file: " + keyFile + "\n      private_key_id: gw-1\n      assertion_audience: https://elsewhere.example\n", "private_key_jwt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := introspect.NewAuthenticator(introspector(t, idp, tc.block, nil, nil), 0, false)
			before := idp.IntrospectionAuthMethods()[tc.method]
			_, err := authenticate(a, idp.OpaqueToken(t))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && reasonOf(err) != "503:"+string(introspect.ReasonFailed) {
				t.Fatalf("got %v, want 503 (the provider refuses the client)", err)
			}
			if got := idp.IntrospectionAuthMethods()[tc.method] - before; got != 1 {
				t.Fatalf("the provider saw %d %s requests, want 1", got, tc.method)
			}
		})
	}
}

// TestExplicitEndpoint: an explicit endpoint is used without discovery.
func TestExplicitEndpoint(t *testing.T) {
	idp := testidp.Start(t)
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      endpoint: "+idp.IntrospectionURL+"\n"), nil, nil), 0, false)
	if _, err := authenticate(a, idp.OpaqueToken(t)); err != nil {
		t.Fatal(err)
	}
	wrong := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, "      endpoint: "+idp.Issuer+"/nowhere\n"), nil, nil), 0, false)
	if _, err := authenticate(wrong, idp.OpaqueToken(t)); reasonOf(err) != "503:"+string(introspect.ReasonFailed) {
		t.Fatalf("wrong endpoint: %v", err)
	}
}

// TestConfirmJWT: with confirm_jwt a JWT is introspected too, and one
// revoked at the provider is refused even though its signature is good.
func TestConfirmJWT(t *testing.T) {
	idp := testidp.Start(t)
	a := introspect.NewAuthenticator(introspector(t, idp, basicBlock(idp, ""), nil, nil), 0, true)
	token := idp.ClientCredentialsToken(t, "read")
	id, err := authenticate(a, token)
	if err != nil || id.Subject != idp.ClientID || !slices.Equal(id.Scopes, []string{"read"}) {
		t.Fatalf("%+v %v", id, err)
	}
	revoked := idp.ClientCredentialsToken(t)
	idp.Revoke(t, revoked)
	if _, err := authenticate(a, revoked); reasonOf(err) != string(introspect.ReasonInactive) {
		t.Fatalf("revoked JWT: %v", err)
	}
}
