package main

// The scenarios of the features of issue 15: a browser session in sealed
// cookies, Basic credentials against a users file, the signed identity
// assertion, and the decision API answering another proxy. Each is
// measured like the others; session-warm is paired directly with
// jwt-rs256-warm, which issue 15 says it must not cost more than.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/authn/basic"
	"github.com/gatehouse/gatehouse/internal/session"
)

// The session route's client at the RS256 provider. The provider has
// static keys, so the login endpoints are configured (validation asks for
// them); they are never called: the harness seals the sessions itself,
// as the login callback would after a login.
const (
	sessionClientID = "gatehouse-bench"
	sessionPurpose  = "gatehouse-session" // internal/authn/login's purposeSession
	basicUser       = "bench-basic"
	assertionIssuer = "https://gatehouse.bench.invalid"
)

// newMethodRoutes are appended to the main configuration's routes: a
// session route (cookie store, the RS256 provider) and a Basic route (a
// users file; plain HTTP allowed on this loopback, and a cache that
// outlives any run, so no expiry falls inside a phase).
const newMethodRoutes = `  - name: session
    match: {path_prefix: /session}
    authenticate:
      methods: [session]
      session:
        keys: ["{{session_key}}"]
        clients:
          - provider: rs256
            client_id: ` + sessionClientID + `
            client_secret: bench-login-secret
            authorization_endpoint: https://rs256.bench.invalid/authorize
            token_endpoint: https://rs256.bench.invalid/token
    upstream: {targets: ["{{upstream}}"]}
  - name: basic
    match: {path_prefix: /basic}
    authenticate:
      methods: [basic]
      basic: {users_file: {{dir}}/users, allow_plain_http: true, cache_ttl: 1h}
    upstream: {targets: ["{{upstream}}"]}
`

// The variants of issue 15: the identity assertion on every route (keys
// in memory, the assertion cached per identity for 30 s), and the
// decision API answering the loopback as a trusted proxy.
const (
	assertionVariantSettings = "identity_assertion:\n  issuer: " + assertionIssuer +
		"\n  all_routes: true\n  cache: 30s\n  keys: {source: memory}\n"
	decisionVariantSettings = "decision_api:\n  trusted_callers: [127.0.0.1]\n"
)

// methodSecrets are the run's session key and Basic password, and the
// users file that holds the password's hash.
type methodSecrets struct {
	sessionKey    string
	basicPassword string
}

// newMethodSecrets makes the session key and the Basic user (an argon2id
// hash at the default parameters, as gatehouse users add writes it).
func newMethodSecrets(dir string) (*methodSecrets, error) {
	key, err := session.NewKey()
	if err != nil {
		return nil, err
	}
	var pw [18]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	m := &methodSecrets{sessionKey: key, basicPassword: base64.RawURLEncoding.EncodeToString(pw[:])}
	hash, err := basic.HashPassword([]byte(m.basicPassword), basic.DefaultParams)
	if err != nil {
		return nil, err
	}
	line := basicUser + ":" + hash + " groups=bench scopes=orders:read\n"
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(line), 0o600); err != nil {
		return nil, err
	}
	return m, nil
}

func (b *bed) methodScenarios(warmRS256 func(int) (credentials, error)) []*scenario {
	return []*scenario{
		{Name: "session-warm", Kind: kindWarm, server: "gatehouse", path: "/session/x", header: "Cookie",
			credential: b.sessionCookie, check: b.checkSession, reportOnly: true, pairWith: "jwt-rs256-warm",
			Description: "A browser session (method session, sealed __Host-gatehouse cookie, sealed by the harness with the configured key), the same cookie every request: served by the opened-session cache. Paired directly with jwt-rs256-warm, not with the bare proxy."},
		{Name: "basic-cached", Kind: kindWarm, server: "gatehouse", path: "/basic/x", header: "Authorization",
			credential: func(int) (credentials, error) {
				return repeated("Basic " + base64.StdEncoding.EncodeToString([]byte(basicUser+":"+b.secrets.basicPassword))), nil
			},
			reportOnly:  true,
			Description: "HTTP Basic (method basic, a users file with an argon2id hash at the default parameters), the same user and password every request: served by the verified-credential cache (cache_ttl 1h) after the self-check's verification."},
		{Name: "jwt-assertion", Kind: kindWarm, server: "gatehouse-assertion", path: "/jwt/x", header: "Authorization",
			credential: warmRS256, check: b.checkAssertion, reportOnly: true,
			Description: "jwt-rs256-warm on a Gatehouse that sends the signed identity assertion (ES256, keys in memory, cache 30s) on every route: the assertion cache lookup and one more upstream header."},
		{Name: "decision-jwt", Kind: kindWarm, server: "gatehouse-decision", path: "/.gatehouse/decide", header: "Authorization",
			credential: warmRS256, fixed: decisionHeaders(), decision: true, check: b.checkDecision, reportOnly: true,
			Description: "The decision API asked as Traefik's ForwardAuth asks (X-Forwarded-Method, -Proto, -Host, -Uri, -For) about a warm RS256 JWT on the /jwt route: 200 with the identity headers and no upstream hop, beside the bare proxy forwarding the same request."},
	}
}

// decisionHeaders describe the original request, as Traefik sets them.
func decisionHeaders() http.Header {
	return http.Header{
		"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"api.bench.invalid"},
		"X-Forwarded-Uri": {"/jwt/x"}, "X-Forwarded-For": {"192.0.2.10"},
	}
}

// sessionCookie seals a new session for the RS256 provider's user, as the
// login callback does, and returns the Cookie header that carries it
// (one cookie: the session is far below a chunk). Sealed for each phase,
// so that no phase lasts long enough for the session's touch (once a
// minute) to re-seal it.
func (b *bed) sessionCookie(int) (credentials, error) {
	keys, err := session.ParseKeys([]string{b.secrets.sessionKey})
	if err != nil {
		return nil, err
	}
	codec, err := session.NewCodec(keys)
	if err != nil {
		return nil, err
	}
	id, err := session.NewID()
	if err != nil {
		return nil, err
	}
	is := b.issuers["rs256"]
	sub := fmt.Sprintf("user-%d", b.minted)
	b.minted++
	now := time.Now()
	sid := "sid-" + id[:8]
	sess := &session.Session{ID: id, Provider: is.name, Issuer: is.iss, Subject: sub, SID: sid,
		Claims: map[string]any{"iss": is.iss, "aud": sessionClientID, "sub": sub, "sid": sid,
			"groups": []any{"bench", "staff"}, "email": sub + "@bench.invalid"},
		AuthTime: now, Created: now, LastSeen: now}
	raw, err := sess.Marshal()
	if err != nil {
		return nil, err
	}
	sealed, err := codec.Seal(sessionPurpose, raw)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, c := range session.WriteCookies(httptestRequest(), session.DefaultCookieOptions(), sealed) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return repeated(strings.Join(parts, "; ")), nil
}

// httptestRequest is the request WriteCookies looks at for chunks the
// browser holds: none.
func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://bench.invalid/", nil)
	return r
}

// checkSession proves the session method is what answers: a session's
// subject reaches the upstream, a browser navigation without a cookie is
// sent to the provider's authorization endpoint (302), and a session
// sealed with another key is refused.
func (b *bed) checkSession(ctx context.Context, s *scenario) error {
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url(s), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://rs256.bench.invalid/authorize?") {
		return fmt.Errorf("a browser without a session: status %d, Location %q; want 302 to the authorization endpoint", res.StatusCode, loc)
	}
	sub := fmt.Sprintf("user-%d", b.minted)
	cr, err := b.sessionCookie(1)
	if err != nil {
		return err
	}
	v, _ := cr.next()
	if status, seen, err := probe(ctx, newClient(1), b.url(s), http.Header{"Cookie": {v}}); err != nil || status != http.StatusOK || seen != sub {
		return fmt.Errorf("a session of %s: status %d, upstream saw %q, %v; want 200 and %s", sub, status, seen, err, sub)
	}
	other := *b.secrets
	if other.sessionKey, err = session.NewKey(); err != nil {
		return err
	}
	ob := *b
	ob.secrets = &other
	if cr, err = ob.sessionCookie(1); err != nil {
		return err
	}
	v, _ = cr.next()
	if status, _, err := probe(ctx, newClient(1), b.url(s), http.Header{"Cookie": {v}}); err != nil || status != http.StatusUnauthorized {
		return fmt.Errorf("a session sealed with another key: status %d, %v; want 401", status, err)
	}
	return nil
}

// checkAssertion proves the upstream receives an assertion that verifies
// against the variant's JWK Set, for the token's subject.
func (b *bed) checkAssertion(ctx context.Context, s *scenario) error {
	toks, err := b.mint("rs256", 1)
	if err != nil {
		return err
	}
	res, err := get(ctx, b.url(s), http.Header{"Authorization": {"Bearer " + toks[0]}, "X-Bench-Check": {"1"}})
	if err != nil {
		return err
	}
	raw := res.Header.Get("X-Seen-Assertion")
	if res.StatusCode != http.StatusOK || raw == "" {
		return fmt.Errorf("status %d, assertion %q: want 200 and an assertion upstream", res.StatusCode, raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.server(s).Addr+"/.well-known/gatehouse/jwks.json", nil)
	if err != nil {
		return err
	}
	jc := newClient(1)
	defer jc.CloseIdleConnections()
	jres, err := jc.Do(req)
	if err != nil {
		return err
	}
	defer jres.Body.Close()
	var set jose.JSONWebKeySet
	if err := jsonDecode(jres, &set); err != nil {
		return fmt.Errorf("JWK Set: %w", err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return errors.New("the assertion's key is not in the JWK Set")
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return fmt.Errorf("assertion signature: %w", err)
	}
	want := fmt.Sprintf("user-%d", b.minted-1)
	if err := c.Validate(jwt.Expected{Issuer: assertionIssuer, Subject: want, Time: time.Now()}); err != nil {
		return fmt.Errorf("assertion claims: %w", err)
	}
	return nil
}

// checkDecision proves the answer is the decision API's: without the
// forwarded headers it is 400, not a proxied 200.
func (b *bed) checkDecision(ctx context.Context, s *scenario) error {
	cr, err := s.credential(1)
	if err != nil {
		return err
	}
	v, _ := cr.next()
	h := decisionHeaders()
	h.Del("X-Forwarded-Uri")
	h.Set("Authorization", v)
	status, _, err := probe(ctx, newClient(1), b.url(s), h)
	if err != nil {
		return err
	}
	if status != http.StatusBadRequest {
		return fmt.Errorf("without X-Forwarded-Uri: status %d, want 400", status)
	}
	return nil
}

// jsonDecode reads a JSON answer of at most 64 KiB.
func jsonDecode(res *http.Response, v any) error {
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(v)
}
