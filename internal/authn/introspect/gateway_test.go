package introspect_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// gatewayConfig has two routes: /api accepts JWTs and opaque tokens
// (methods [jwt, introspection]); /payouts wants a JWT confirmed by
// introspection (require_all, confirm_jwt).
func gatewayConfig(idp *testidp.Provider, upstream, extra string) string {
	return `identity_providers:
  - name: idp
    issuer: ` + idp.Issuer + `
    audiences: [` + idp.Audience + `]
    insecure_allow_http: true
    introspection:
      client_id: ` + idp.ClientID + `
      client_secret: ` + idp.ClientSecret + `
      timeout: 500ms
` + extra + `routes:
  - name: api
    match: {path_prefix: /api}
    authenticate:
      methods: [jwt, introspection]
    upstream: {targets: ["` + upstream + `"]}
  - name: payouts
    match: {path_prefix: /payouts}
    authenticate:
      methods: [jwt, introspection]
      require_all: true
      primary: jwt
      introspection:
        confirm_jwt: true
    upstream: {targets: ["` + upstream + `"]}
audit: {disabled: true}
access_log: {disabled: true}
`
}

type gateway struct {
	url  string
	seen chan http.Header
}

func startGateway(t *testing.T, idp *testidp.Provider, reg *resource.Registry, extra string) *gateway {
	t.Helper()
	g := &gateway{seen: make(chan http.Header, 1)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.seen <- r.Header.Clone():
		default:
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	yaml := gatewayConfig(idp, up.URL, extra)
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Build(cfg, file, pipeline.Options{Resources: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := plan.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plan.ServeHTTP(w, r, "main") }))
	t.Cleanup(gw.Close)
	g.url = gw.URL
	return g
}

func (g *gateway) get(t *testing.T, path, token string) (*http.Response, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var seen http.Header
	select {
	case seen = <-g.seen:
	default:
	}
	return res, string(body), seen
}

// TestThroughListener: the method through the real pipeline and a real
// listener, beside jwt, against the real provider.
func TestThroughListener(t *testing.T) {
	idp := testidp.Start(t)
	reg := resource.New()
	g := startGateway(t, idp, reg, "")

	opaque := idp.OpaqueToken(t, "orders:read")
	jwtToken := idp.ClientCredentialsToken(t, "orders:read")
	revokedJWT := idp.ClientCredentialsToken(t)
	idp.Revoke(t, revokedJWT)

	for _, tc := range []struct {
		name, path, token string
		status            int
		method, subject   string // upstream's identity headers
		challenge         string // substring of WWW-Authenticate
		problem           string // problem type
		calls             int64  // introspection calls it costs
	}{
		{"opaque token, active", "/api/x", opaque, 200, "introspection", testidp.OpaqueClientID, "", "", 1},
		{"opaque token again: cached", "/api/x", opaque, 200, "introspection", testidp.OpaqueClientID, "", "", 0},
		{"JWT: verified by jwt, not introspected", "/api/x", jwtToken, 200, "jwt", idp.ClientID, "", "", 0},
		{"unknown opaque token", "/api/x", "b3BhcXVlLXVua25vd24", 401, "", "", `error="invalid_token"`, "urn:gatehouse:problem:unauthorized", 1},
		{"no token", "/api/x", "", 401, "", "", `Bearer realm="gatehouse"`, "urn:gatehouse:problem:unauthorized", 0},
		{"confirmed JWT", "/payouts/1", jwtToken, 200, "jwt,introspection", idp.ClientID, "", "", 1},
		{"JWT revoked at the provider", "/payouts/1", revokedJWT, 401, "", "", `error="invalid_token"`, "urn:gatehouse:problem:unauthorized", 1},
		{"opaque token on the AND route", "/payouts/1", opaque, 401, "", "", `error="invalid_token"`, "urn:gatehouse:problem:unauthorized", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := idp.Introspections()
			res, body, seen := g.get(t, tc.path, tc.token)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if n := idp.Introspections() - before; n != tc.calls {
				t.Errorf("%d introspection calls, want %d", n, tc.calls)
			}
			if tc.status == 200 {
				if seen.Get("X-Auth-Method") != tc.method || seen.Get("X-Auth-Subject") != tc.subject {
					t.Fatalf("identity headers: method %q subject %q", seen.Get("X-Auth-Method"), seen.Get("X-Auth-Subject"))
				}
				if seen.Get("Authorization") != "" {
					t.Fatal("the token reached the upstream")
				}
				return
			}
			if got := res.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) {
				t.Errorf("WWW-Authenticate %q lacks %q", got, tc.challenge)
			}
			assertProblem(t, res, body, tc.problem)
		})
	}

	t.Run("provider down: 503 problem+json", func(t *testing.T) {
		idp.Stop()
		defer idp.Restart(t)
		res, body, _ := g.get(t, "/api/x", "bmV3LW9wYXF1ZS10b2tlbg")
		if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || res.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("status %d, headers %v", res.StatusCode, res.Header)
		}
		assertProblem(t, res, body, "urn:gatehouse:problem:service-unavailable")
		// A cached answer still serves.
		if res, body, _ := g.get(t, "/api/x", opaque); res.StatusCode != 200 {
			t.Fatalf("cached token during the outage: %d %s", res.StatusCode, body)
		}
	})

	t.Run("a reload keeps the cache warm", func(t *testing.T) {
		g2 := startGateway(t, idp, reg, "") // a second plan on the same registry: a reload
		before := idp.Introspections()
		if res, body, _ := g2.get(t, "/api/x", opaque); res.StatusCode != 200 {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if n := idp.Introspections() - before; n != 0 {
			t.Fatalf("%d calls after the reload, want 0 (cache reused)", n)
		}
	})
}

func assertProblem(t *testing.T, res *http.Response, body, typ string) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q", ct)
	}
	var p struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Type != typ {
		t.Fatalf("problem %s, want type %s", body, typ)
	}
}

// TestSignedAnswers: with response_format jwt, only an answer signed by
// the provider's key (RFC 9701) is accepted; a forged signature or a
// plain JSON answer (a downgrade) fails closed.
func TestSignedAnswers(t *testing.T) {
	idp := testidp.Start(t)
	g := startGateway(t, idp, nil, "      response_format: jwt\n")
	for _, tc := range []struct {
		name   string
		mode   testidp.SignedMode
		token  string
		status int
	}{
		{"signed by the provider", testidp.SignedHonest, idp.OpaqueToken(t), 200},
		{"inactive, signed", testidp.SignedHonest, "dW5rbm93bi1zaWduZWQ", 401},
		{"forged signature", testidp.SignedForged, idp.OpaqueToken(t), 503},
		{"plain JSON answer", testidp.SignedPlain, idp.OpaqueToken(t), 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp.SetSignedMode(tc.mode)
			res, body, seen := g.get(t, "/api/x", tc.token)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 200 && seen.Get("X-Auth-Subject") != testidp.OpaqueClientID {
				t.Fatalf("identity headers %v", seen)
			}
		})
	}
}
