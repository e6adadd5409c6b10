package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestRotationUnderForgedKIDsThroughGateway replays the report of issue
// #10 end to end: forged tokens with made-up kids hit the gateway right
// before the OpenID Provider rotates its signing key. Fresh tokens from the
// provider's token endpoint may be refused only until the first refetch
// the rate limit permits (one unknown_kid_interval); from then on, none is.
func TestRotationUnderForgedKIDsThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	const interval = 500 * time.Millisecond
	tg := startGateway(t, header+"audit: {disabled: true}\nidentity_providers:\n"+
		providerYAML("idp", idp, fmt.Sprintf("    keys: {unknown_kid_interval: %s}\n", interval))+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)
	if s := status(t, tg.url+"/api/x", idp.ClientCredentialsToken(t)); s != 200 {
		t.Fatalf("fresh token before the attack: %d", s)
	}

	// The attack: a burst of validly signed tokens naming unknown kids.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				forged := idp.MintWithHeaders(t, map[string]any{"sub": "mallory"}, map[string]any{"kid": hex.EncodeToString(b)})
				req := mustBearerReq(tg.url+"/api/x", forged)
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					res.Body.Close()
					if res.StatusCode != 401 {
						t.Errorf("forged kid: %d, want 401", res.StatusCode)
					}
				}
			}
		}()
	}
	wg.Wait()
	idp.RotateKey(t) // right after the burst
	rotated := time.Now()

	var refused, accepted int
	var firstOK time.Time
	for time.Since(rotated) < 4*interval {
		s := status(t, tg.url+"/api/x", idp.ClientCredentialsToken(t))
		switch {
		case s == 200:
			accepted++
			if firstOK.IsZero() {
				firstOK = time.Now()
			}
		case !firstOK.IsZero():
			t.Fatalf("fresh token refused (%d) after the first permitted refetch", s)
		case s == 401:
			refused++
		default:
			t.Fatalf("fresh token: %d", s)
		}
	}
	if firstOK.IsZero() {
		t.Fatalf("no fresh token accepted within %s of the rotation (%d refused)", 4*interval, refused)
	}
	if wait := firstOK.Sub(rotated); wait > interval+300*time.Millisecond {
		t.Fatalf("fresh tokens accepted only %s after the rotation; want within unknown_kid_interval %s", wait, interval)
	}
	t.Logf("after the rotation: %d fresh tokens refused for %s, then %d accepted, none refused",
		refused, firstOK.Sub(rotated).Round(time.Millisecond), accepted)
}

// TestAudienceClaimThroughGateway: a provider configured like Amazon
// Cognito (access tokens without aud, the app client in client_id) accepts
// such tokens only for a listed client, and only because audience_claim
// says so: the same provider without it refuses them.
func TestAudienceClaimThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	cognito := func(extra string) string {
		return fmt.Sprintf("  - name: cognito\n    issuer: %q\n    audiences: [app-client-1]\n    insecure_allow_http: true\n"+
			"    claim_values: {token_use: [access]}\n%s", idp.Issuer, extra)
	}
	tg := startGateway(t, header+"audit: {output: stderr}\nidentity_providers:\n"+cognito("    audience_claim: client_id\n")+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)
	access := idp.Mint(t, map[string]any{"aud": nil, "client_id": "app-client-1", "token_use": "access"})
	for _, tc := range []struct {
		name   string
		token  string
		status int
		reason string
	}{
		{"access token of a listed client", access, 200, ""},
		{"access token of another client", idp.Mint(t, map[string]any{"aud": nil, "client_id": "app-client-2", "token_use": "access"}), 401, "audience_mismatch"},
		{"ID token (aud, no client_id)", idp.Mint(t, map[string]any{"aud": "app-client-1", "token_use": "id"}), 401, "missing_claim"},
		{"ID token with client_id", idp.Mint(t, map[string]any{"aud": "app-client-1", "client_id": "app-client-1", "token_use": "id"}), 401, "claim_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := status(t, tg.url+"/api/x", tc.token); s != tc.status {
				t.Fatalf("status %d, want %d", s, tc.status)
			}
			if tc.reason != "" {
				evs := tg.auditEvents(t)
				if last := evs[len(evs)-1]; last["reason"] != tc.reason {
					t.Fatalf("audit reason %v, want %s", last["reason"], tc.reason)
				}
			}
		})
	}

	// Without audience_claim, aud is required: the same token is refused.
	tg.writeConfig(header + "audit: {output: stderr}\nidentity_providers:\n" + cognito("") +
		"routes:\n" + authedRoute("api", "/api", up.URL, ""))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := status(t, tg.url+"/api/x", access); s != 401 {
		t.Fatalf("token without aud on a provider without audience_claim: %d, want 401", s)
	}
}
