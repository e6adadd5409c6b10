package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/ssf"
	"github.com/gatehouse/gatehouse/internal/ssf/ssftest"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

const (
	ssfAudience  = "https://gw.example/ssf/events"
	ssfPushToken = "ssf-push-token-0123456789abcdef"
	leakSecret   = "leak-report-hmac-secret-0123456789abcdef"
)

// signalsConfig is a gateway with a JWT route and an API-key route over
// store, the revocation list on, a Shared Signals receiver trusting tr
// (by its SSF metadata) and a leak-report endpoint signed with leakSecret.
func signalsConfig(idp *testidp.Provider, tr *ssftest.Transmitter, upstream, store string) string {
	return header + adminTokenYAML() + `audit: {output: stderr}
identity_providers:
` + providerYAML("idp", idp, "") + `api_keys:
  store: ` + store + `
revocation:
  enabled: true
shared_signals:
  path: /ssf/events
  transmitters:
    - name: test-idp
      issuer: ` + tr.Issuer + `
      metadata: ` + tr.MetadataURL + `
      audience: [` + ssfAudience + `]
      push_token: ` + ssfPushToken + `
      insecure_allow_http: true
      subjects: {issuers: [` + idp.Issuer + `]}
leak_reports:
  path: /leaks/api-keys
  hmac_secret: ` + leakSecret + `
routes:
` + authedRoute("api", "/api", upstream, "") +
		fmt.Sprintf("  - name: orders\n    match: {path_prefix: /orders}\n    authenticate: {methods: [api_key]}\n    upstream: {targets: [%q]}\n", upstream)
}

// TestSharedSignalsAcrossReplicas: two gateways on one PostgreSQL store.
// A session-revoked SET pushed to one makes both refuse the subject's
// token minted before the event (the revocation goes through the list);
// a token issued afterwards works; forged, replayed and misaddressed SETs
// are refused through the gateway with RFC 8935 errors; every push is an
// audit event.
func TestSharedSignalsAcrossReplicas(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	idp := testidp.Start(t)
	tr := ssftest.Start(t)
	up := newUpstream(t, "api")
	store := fmt.Sprintf("{type: postgres, dsn: %q, schema: %s}", dsn, schema)
	a := startGateway(t, signalsConfig(idp, tr, up.URL, store)).serve()
	b := startGateway(t, signalsConfig(idp, tr, up.URL, store)).serve()
	a.waitReady(t)
	b.waitReady(t)

	event := time.Now().Truncate(time.Second)
	old := idp.Mint(t, map[string]any{"sub": "alice", "iat": event.Add(-time.Minute).Unix()})
	bystander := idp.Mint(t, map[string]any{"sub": "bob", "iat": event.Add(-time.Minute).Unix()})
	for _, g := range []*testGateway{a, b} {
		for _, tok := range []string{old, bystander} {
			if res, body := bearer(t, g.url+"/api/x", tok, nil); res.StatusCode != 200 {
				t.Fatalf("before the event: %d %s", res.StatusCode, body)
			}
		}
	}

	set := tr.Sign(t, tr.Claims(ssfAudience, ssf.EventSessionRevoked, idp.Issuer, "alice", event), nil)
	pushed := time.Now()
	if code, body := ssftest.Push(t, a.url+"/ssf/events", ssfPushToken, set); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	if res, body := bearer(t, a.url+"/api/x", old, nil); res.StatusCode != 401 {
		t.Fatalf("the receiving replica still accepts the token: %d %s", res.StatusCode, body)
	}
	waitFor(t, "the other replica refuses the token", 2*time.Second, func() bool {
		res, _ := bearer(t, b.url+"/api/x", old, nil)
		return res.StatusCode == 401
	})
	t.Logf("refused on both replicas %v after the push", time.Since(pushed).Round(time.Millisecond))
	for _, g := range []*testGateway{a, b} {
		if res, body := bearer(t, g.url+"/api/x", bystander, nil); res.StatusCode != 200 {
			t.Errorf("another subject's token: %d %s", res.StatusCode, body)
		}
		fresh := idp.Mint(t, map[string]any{"sub": "alice", "iat": event.Add(time.Second).Unix()})
		if res, body := bearer(t, g.url+"/api/x", fresh, nil); res.StatusCode != 200 {
			t.Errorf("a token issued after the event: %d %s", res.StatusCode, body)
		}
	}

	var sawSignal, sawRevocation bool
	for _, ev := range a.auditEvents(t) {
		if ev["event"] == "ssf.event" && ev["reason"] == "ssf_subject_revoked" {
			sawSignal = ev["subject"] == "alice" && ev["provider"] == "test-idp" && ev["signal_event"] == ssf.EventSessionRevoked
		}
		sawRevocation = sawRevocation || (ev["event"] == "revocation.created" && ev["subject"] == "alice")
		if s, _ := json.Marshal(ev); strings.Contains(string(s), set) {
			t.Fatal("an audit event carries the SET")
		}
	}
	if !sawSignal || !sawRevocation {
		t.Errorf("audit: ssf.event %v, revocation.created %v", sawSignal, sawRevocation)
	}

	for _, tc := range []struct {
		name, set, token string
		status           int
		err              string
	}{
		{"replayed", set, ssfPushToken, 400, ssf.ErrCodeInvalidRequest},
		{"wrong audience", tr.Sign(t, tr.Claims("https://other.example", ssf.EventSessionRevoked, idp.Issuer, "bob", event), nil), ssfPushToken, 400, ssf.ErrCodeInvalidAudience},
		{"forged", forge(t, tr.Claims(ssfAudience, ssf.EventSessionRevoked, idp.Issuer, "bob", event)), ssfPushToken, 400, ssf.ErrCodeInvalidKey},
		{"wrong issuer", tr.Sign(t, withClaim(tr.Claims(ssfAudience, ssf.EventSessionRevoked, idp.Issuer, "bob", event), "iss", "https://evil.example"), nil), ssfPushToken, 400, ssf.ErrCodeInvalidIssuer},
		{"bad push token", tr.Sign(t, tr.Claims(ssfAudience, ssf.EventSessionRevoked, idp.Issuer, "bob", event), nil), "not-the-push-token", 401, ssf.ErrCodeAuthenticationFailed},
		{"unknown event type: accepted, ignored", tr.Sign(t, tr.Claims(ssfAudience, "https://example.com/event-type/unknown", idp.Issuer, "bob", event), nil), ssfPushToken, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ssftest.Push(t, a.url+"/ssf/events", tc.token, tc.set)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if tc.err != "" && !strings.Contains(body, `"err":"`+tc.err+`"`) {
				t.Fatalf("body %s, want err %s", body, tc.err)
			}
			if res, body := bearer(t, b.url+"/api/x", bystander, nil); res.StatusCode != 200 {
				t.Fatalf("bob's token after a refused SET: %d %s", res.StatusCode, body)
			}
		})
	}
}

func withClaim(c map[string]any, k string, v any) map[string]any { c[k] = v; return c }

// forge signs with a key the transmitter never published, under its kid.
func forge(t *testing.T, claims map[string]any) string {
	t.Helper()
	return ssftest.Start(t).Sign(t, claims, nil)
}

// TestLeakReportThroughGateway: a leak report signed with the configured
// HMAC revokes the reported key at once (refused with 401 afterwards),
// reports unknown and malformed entries as not_found, and a report with a
// bad signature is refused and revokes nothing.
func TestLeakReportThroughGateway(t *testing.T) {
	idp := testidp.Start(t)
	tr := ssftest.Start(t)
	up := newUpstream(t, "api")
	store := fmt.Sprintf("{type: embedded, path: %q}", filepath.Join(t.TempDir(), "keys.db"))
	tg := startGateway(t, signalsConfig(idp, tr, up.URL, store)).serve()
	tg.waitReady(t)

	res, data := adminCall(t, tg.adminURL, http.MethodPost, "/v1/consumers", map[string]any{"name": "partner"})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create consumer: %d %s", res.StatusCode, data)
	}
	newKey := func() string {
		res, data := adminCall(t, tg.adminURL, http.MethodPost, "/v1/consumers/partner/keys", map[string]any{"name": "k"})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create key: %d %s", res.StatusCode, data)
		}
		var out struct{ Secret string }
		_ = json.Unmarshal(data, &out)
		return out.Secret
	}
	leaked, kept := newKey(), newKey()
	call := func(key string) int {
		req, _ := http.NewRequest(http.MethodGet, tg.url+"/orders/1", nil)
		req.Header.Set("X-API-Key", key)
		res, _ := do(t, req)
		return res.StatusCode
	}
	for _, k := range []string{leaked, kept} {
		if code := call(k); code != 200 {
			t.Fatalf("before the report: %d", code)
		}
	}
	report := func(body, signature string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, tg.url+"/leaks/api-keys", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signature != "" {
			req.Header.Set("X-Gatehouse-Signature-256", signature)
		}
		return do(t, req)
	}
	sign := func(body string) string {
		m := hmac.New(sha256.New, []byte(leakSecret))
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	unknown := "gate_live_" + strings.Repeat("A", 49)

	t.Run("bad signature", func(t *testing.T) {
		body := fmt.Sprintf(`{"keys": [%q]}`, leaked)
		for _, sig := range []string{"", "sha256=" + strings.Repeat("0", 64), sign(body + " ")} {
			res, data := report(body, sig)
			problemBody(t, res, data, 401, "unauthorized")
		}
		if code := call(leaked); code != 200 {
			t.Fatalf("a refused report revoked the key: %d", code)
		}
	})

	t.Run("report revokes the leaked key", func(t *testing.T) {
		body := fmt.Sprintf(`{"keys": [%q, %q, "not-a-key"]}`, leaked, unknown)
		res, data := report(body, sign(body))
		if res.StatusCode != 200 {
			t.Fatalf("report: %d %s", res.StatusCode, data)
		}
		var out struct {
			Results []struct {
				TokenHash string `json:"token_hash"`
				Status    string `json:"status"`
			} `json:"results"`
		}
		if err := json.Unmarshal(data, &out); err != nil || len(out.Results) != 3 {
			t.Fatalf("answer %s: %v", data, err)
		}
		want := []string{"revoked", "not_found", "not_found"}
		for i, r := range out.Results {
			if len(r.TokenHash) != 64 || r.Status != want[i] {
				t.Errorf("entry %d: %s, want %s", i, r.Status, want[i])
			}
		}
		if strings.Contains(string(data), leaked) {
			t.Fatal("the answer repeats the key")
		}
		if code := call(leaked); code != 401 {
			t.Fatalf("the leaked key still works: %d", code)
		}
		if code := call(kept); code != 200 {
			t.Fatalf("another key of the consumer: %d", code)
		}
		var audited bool
		for _, ev := range tg.auditEvents(t) {
			audited = audited || (ev["event"] == "apikey.key_leaked" && ev["reason"] == "key_leaked" && ev["client_id"] == "partner")
		}
		if !audited {
			t.Error("no apikey.key_leaked audit event")
		}
	})

	t.Run("GitHub partner format; a revoked key is not_found again", func(t *testing.T) {
		body := fmt.Sprintf(`[{"token": %q, "type": "gatehouse_api_key", "url": "https://github.com/x/y", "source": "content"}, {"token": %q, "type": "gatehouse_api_key"}]`, leaked, kept)
		res, data := report(body, sign(body))
		if res.StatusCode != 200 {
			t.Fatalf("report: %d %s", res.StatusCode, data)
		}
		var out []struct {
			TokenHash string `json:"token_hash"`
			TokenType string `json:"token_type"`
			Label     string `json:"label"`
		}
		if err := json.Unmarshal(data, &out); err != nil || len(out) != 2 {
			t.Fatalf("answer %s: %v", data, err)
		}
		if out[0].Label != "false_positive" || out[1].Label != "true_positive" || out[1].TokenType != "gatehouse_api_key" {
			t.Fatalf("answer %s", data)
		}
		sum := sha256.Sum256([]byte(kept))
		if out[1].TokenHash != hex.EncodeToString(sum[:]) {
			t.Errorf("token_hash %s", out[1].TokenHash)
		}
		if code := call(kept); code != 401 {
			t.Fatalf("the reported key still works: %d", code)
		}
	})

	t.Run("malformed report", func(t *testing.T) {
		for _, body := range []string{`{"keys": []}`, `{"tokens": ["x"]}`, `not json`} {
			res, data := report(body, sign(body))
			problemBody(t, res, data, 400, "bad-request")
		}
	})
}

// TestSharedSignalsReplaySurvivesReload: on one gateway (embedded store),
// a session-revoked SET refuses the subject's earlier token at once, and
// the same SET pushed again after a reload is still a replay.
func TestSharedSignalsReplaySurvivesReload(t *testing.T) {
	idp := testidp.Start(t)
	tr := ssftest.Start(t)
	up := newUpstream(t, "api")
	store := fmt.Sprintf("{type: embedded, path: %q}", filepath.Join(t.TempDir(), "keys.db"))
	tg := startGateway(t, signalsConfig(idp, tr, up.URL, store)).serve()
	tg.waitReady(t)
	event := time.Now().Truncate(time.Second)
	old := idp.Mint(t, map[string]any{"sub": "dana", "iat": event.Add(-time.Minute).Unix()})
	if res, body := bearer(t, tg.url+"/api/x", old, nil); res.StatusCode != 200 {
		t.Fatalf("before: %d %s", res.StatusCode, body)
	}
	set := tr.Sign(t, tr.Claims(ssfAudience, ssf.EventCredentialChange, idp.Issuer, "dana", event), nil)
	if code, body := ssftest.Push(t, tg.url+"/ssf/events", ssfPushToken, set); code != 202 {
		t.Fatalf("push: %d %s", code, body)
	}
	if res, _ := bearer(t, tg.url+"/api/x", old, nil); res.StatusCode != 401 {
		t.Fatalf("after credential-change: %d", res.StatusCode)
	}
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, body := ssftest.Push(t, tg.url+"/ssf/events", ssfPushToken, set); code != 400 || !strings.Contains(body, ssf.ErrCodeInvalidRequest) {
		t.Fatalf("the same SET after a reload: %d %s", code, body)
	}
}
