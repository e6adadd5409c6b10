package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/session"
)

// The benchmarks in this file measure Gatehouse's own cost per request:
// they call Plan.ServeHTTP directly (no client, no listener) with a
// reusable ResponseWriter, and the access log and audit events are on,
// written to io.Discard. The upstream is trivialUpstream, in process and
// nearly free, unless the name says echo (the builtin:echo backend) or
// loopback (an httptest.Server over TCP).
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./internal/pipeline

// benchResponse is a reusable ResponseWriter that keeps nothing, so the
// benchmark measures the pipeline, not a recorder. Like net/http's own
// writer it accepts deadlines.
type benchResponse struct {
	header http.Header
	status int
}

func (w *benchResponse) Header() http.Header { return w.header }
func (w *benchResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

func (w *benchResponse) SetReadDeadline(time.Time) error  { return nil }
func (w *benchResponse) SetWriteDeadline(time.Time) error { return nil }

// trivialUpstream answers every request with a small 200 without a
// network and without allocating, reusing one response: it serves one
// request at a time, as the benchmarks do.
type trivialUpstream struct {
	res  http.Response
	body bodyReader
}

type bodyReader struct{ strings.Reader }

func (*bodyReader) Close() error { return nil }

var (
	trivialType   = []string{"application/json"}
	trivialLength = []string{"11"}
)

func (u *trivialUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.res.Header == nil {
		u.res.Header = make(http.Header, 4)
	}
	clear(u.res.Header)
	u.res.Header["Content-Type"] = trivialType
	u.res.Header["Content-Length"] = trivialLength
	u.body.Reset(`{"ok":true}`)
	u.res.StatusCode, u.res.Status = 200, "200 OK"
	u.res.Proto, u.res.ProtoMajor, u.res.ProtoMinor = "HTTP/1.1", 1, 1
	u.res.ContentLength, u.res.Body, u.res.Request = 11, &u.body, req
	return &u.res, nil
}

// useTrivialUpstream points every route of p at a trivialUpstream, with
// the route's request timeout kept so the proxy does the same work.
func useTrivialUpstream(t testing.TB, p *Plan) {
	t.Helper()
	target, _ := url.Parse("http://upstream.bench")
	for _, rt := range p.routes {
		px, err := proxy.New(proxy.Config{
			Targets: []*url.URL{target}, RequestTimeout: rt.Deadline, Resolver: p.resolver, Transport: &trivialUpstream{},
		})
		if err != nil {
			t.Fatal(err)
		}
		rt.Proxy = px
	}
}

// benchBuffers pools the bare proxy's copy buffers, as Gatehouse's proxy
// does; without it the reference would allocate 32 KiB a request.
type benchBuffers struct{ pool sync.Pool }

func (p *benchBuffers) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *benchBuffers) Put(b []byte) { p.pool.Put(&b) }

// benchRequest is a request that is restored to its original headers and
// query before every iteration: the pipeline edits both (request id,
// identity headers, credential removal) as it would on a real request.
type benchRequest struct {
	req      *http.Request
	header   map[string][]string
	rawQuery string
}

func newBenchRequest(target string, header map[string]string) *benchRequest {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "192.0.2.10:40000"
	br := &benchRequest{req: req, header: map[string][]string{}, rawQuery: req.URL.RawQuery}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench/1.0")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for k, v := range req.Header {
		br.header[k] = v
	}
	return br
}

func (br *benchRequest) reset() *http.Request {
	h := br.req.Header
	clear(h)
	for k, v := range br.header {
		h[k] = v
	}
	br.req.URL.RawQuery = br.rawQuery
	return br.req
}

// runServe drives p with br until the benchmark ends, failing on any
// status other than want.
func runServe(b *testing.B, p *Plan, br *benchRequest, want int) {
	b.Helper()
	w := &benchResponse{header: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		p.ServeHTTP(w, br.reset(), "bench")
		if w.status != want {
			b.Fatalf("status %d, want %d", w.status, want)
		}
	}
}

// BenchmarkServeHTTP is the per-request cost of each kind of route.
func BenchmarkServeHTTP(b *testing.B) {
	const publicRoute = `
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["%s"]}
`
	public := func(b *testing.B, target string) *Plan {
		return buildPlan(b, benchLogs+fmt.Sprintf(publicRoute, target))
	}
	// The query holds a credential, so the access log redacts it.
	const publicURL = "http://gw.test/api/users/42?page=2&access_token=secret"

	// The reference: a bare httputil.ReverseProxy on the same request and
	// upstream. What the other sub-benchmarks cost beyond it is Gatehouse's.
	b.Run("bare_reverse_proxy", func(b *testing.B) {
		target, _ := url.Parse("http://upstream.bench")
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.SetXForwarded()
			},
			Transport:  &trivialUpstream{},
			BufferPool: &benchBuffers{},
		}
		br := newBenchRequest(publicURL, nil)
		w := &benchResponse{header: make(http.Header)}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.header)
			w.status = 0
			rp.ServeHTTP(w, br.reset())
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		}
	})

	b.Run("public", func(b *testing.B) {
		p := public(b, "http://upstream.bench")
		useTrivialUpstream(b, p)
		runServe(b, p, newBenchRequest(publicURL, nil), 200)
	})

	b.Run("public_echo", func(b *testing.B) {
		runServe(b, public(b, "builtin:echo"), newBenchRequest(publicURL, nil), 200)
	})

	b.Run("public_loopback", func(b *testing.B) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}))
		defer up.Close()
		runServe(b, public(b, up.URL), newBenchRequest(publicURL, nil), 200)
	})

	// CORS on a public route: a same-origin request (no Origin), a
	// cross-origin one, and a preflight the gateway answers itself.
	corsPlan := func(b *testing.B) *Plan {
		p := buildPlan(b, benchLogs+`
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["http://upstream.bench"]}
    cors:
      allowed_origins: ["https://app.example.com", "https://*.example.com"]
      allowed_headers: [Authorization]
      allow_credentials: true
`)
		useTrivialUpstream(b, p)
		return p
	}
	b.Run("cors_no_origin", func(b *testing.B) {
		runServe(b, corsPlan(b), newBenchRequest(publicURL, nil), 200)
	})
	b.Run("cors_origin", func(b *testing.B) {
		runServe(b, corsPlan(b), newBenchRequest(publicURL, map[string]string{"Origin": "https://a.example.com"}), 200)
	})
	b.Run("cors_preflight", func(b *testing.B) {
		br := newBenchRequest(publicURL, map[string]string{"Origin": "https://a.example.com",
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
		br.req.Method = http.MethodOptions
		runServe(b, corsPlan(b), br, 204)
	})

	b.Run("api_key", func(b *testing.B) {
		keys, key := benchAPIKeys(b)
		p := buildPlanWith(b, benchLogs+`
routes:
  - name: r
    match: {path_prefix: /api}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["http://upstream.bench"]}
`, Options{APIKeys: keys})
		useTrivialUpstream(b, p)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/42", map[string]string{"X-Api-Key": key}), 200)
	})

	jwtPlanWith := func(b *testing.B, authorize, top string) (*Plan, string) {
		keyFile, token := benchJWT(b)
		p := buildPlanWith(b, benchLogs+top+`
identity_providers:
  - name: idp
    issuer: https://idp.bench.test
    audiences: [api]
    static_keys: {files: ["`+keyFile+`"]}
    claims: {roles: roles}
routes:
  - name: r
    match: {path: "/api/users/{id}"}
    authenticate: {methods: [jwt]}
`+authorize+`    upstream: {targets: ["http://upstream.bench"]}
`, Options{})
		if err := p.WaitReady(b.Context()); err != nil {
			b.Fatal(err)
		}
		useTrivialUpstream(b, p)
		return p, token
	}
	jwtPlan := func(b *testing.B, authorize string) (*Plan, string) { return jwtPlanWith(b, authorize, "") }

	b.Run("jwt_warm", func(b *testing.B) {
		p, token := jwtPlan(b, "")
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
	})

	// A browser session in a sealed cookie (method session), warm: the
	// cookie opened once, then a cache lookup per request.
	b.Run("session_warm", func(b *testing.B) {
		keyFile, _ := benchJWT(b)
		key, err := session.NewKey()
		if err != nil {
			b.Fatal(err)
		}
		p := buildPlanWith(b, benchLogs+`
identity_providers:
  - name: idp
    issuer: https://idp.bench.test
    audiences: [api]
    static_keys: {files: ["`+keyFile+`"]}
    claims: {roles: roles}
routes:
  - name: r
    match: {path: "/api/users/{id}"}
    authenticate:
      methods: [session]
      session:
        keys: [`+key+`]
        clients:
          - {provider: idp, client_id: gw, client_secret: s, authorization_endpoint: "https://idp.bench.test/a", token_endpoint: "https://idp.bench.test/t"}
    upstream: {targets: ["http://upstream.bench"]}
`, Options{})
		if err := p.WaitReady(b.Context()); err != nil {
			b.Fatal(err)
		}
		useTrivialUpstream(b, p)
		keys, _ := session.ParseKeys([]string{key})
		codec, _ := session.NewCodec(keys)
		now := time.Now()
		sess := &session.Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", Provider: "idp", Issuer: "https://idp.bench.test", Subject: "u1", SID: "sid-1",
			Claims:      map[string]any{"iss": "https://idp.bench.test", "aud": "gw", "sub": "u1", "roles": []any{"reader"}, "sid": "sid-1"},
			AccessToken: "at", IDToken: "id", TokenExpiry: now.Add(time.Hour), Created: now, LastSeen: now}
		raw, err := sess.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		sealed, err := codec.Seal("gatehouse-session", raw)
		if err != nil {
			b.Fatal(err)
		}
		var cookie []string
		for _, c := range session.WriteCookies(httptest.NewRequest(http.MethodGet, "/", nil), session.DefaultCookieOptions(), sealed) {
			cookie = append(cookie, c.Name+"="+c.Value)
		}
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Cookie": strings.Join(cookie, "; ")}), 200)
	})

	// The same with the revocation list on, holding 5,000 entries of
	// every kind that do not match the token: the check's cost on the
	// request path.
	b.Run("jwt_warm_revocation", func(b *testing.B) {
		p, token := jwtPlanWith(b, "", fmt.Sprintf("api_keys: {store: {type: embedded, path: %q}}\nrevocation: {enabled: true}\n",
			filepath.Join(b.TempDir(), "keys.db")))
		svc := p.Revocations().Service
		for _, kind := range []revocation.Kind{revocation.KindJTI, revocation.KindSubject, revocation.KindClient} {
			values := make([]string, 1000)
			for i := range values {
				values[i] = fmt.Sprintf("%s-%d", kind, i)
			}
			if _, err := svc.Revoke(b.Context(), revocation.Request{Kind: kind, Values: values}); err != nil {
				b.Fatal(err)
			}
		}
		if n := p.Revocations().Replica.List.Len(); n != 3000 {
			b.Fatalf("%d entries loaded", n)
		}
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
	})

	// A local rate limit per subject with its RateLimit headers, and
	// brute-force protection on: the stage's and the lockout check's cost.
	b.Run("jwt_warm_ratelimit", func(b *testing.B) {
		p, token := jwtPlanWith(b, "    rate_limit: bench\n", `
rate_limits:
  policies:
    bench: {limits: [{name: burst, rate: 1000000, per: 1s, key: subject}]}
  brute_force: {threshold: 10, window: 1m, lockout: 1m, keys: [ip]}
`)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
	})

	// The signed identity assertion on (assertion.go): a cached one per
	// request (the same caller), and a fresh signature per request.
	for _, tc := range []struct{ name, cache string }{{"jwt_warm_assertion", "30s"}, {"jwt_warm_assertion_uncached", "0s"}} {
		b.Run(tc.name, func(b *testing.B) {
			p, token := jwtPlanWith(b, "", "identity_assertion: {issuer: https://gw.bench.test, all_routes: true, cache: "+tc.cache+", keys: {source: memory}}\n")
			runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
		})
	}

	b.Run("jwt_cel", func(b *testing.B) {
		p, token := jwtPlan(b, `    authorize:
      expression: 'request.path_params.id == identity.subject || "admin" in identity.roles'
`)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
	})
}

// benchLogs turns on the access log and audit events; buildPlan sends both
// to io.Discard.
const benchLogs = `
access_log: {output: stdout}
audit: {output: stderr}
`

func buildPlanWith(t testing.TB, yamlText string, opts Options) *Plan {
	t.Helper()
	cfg, file, err := config.Parse("test.yaml", []byte(yamlText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	opts.Stdout, opts.Stderr = io.Discard, io.Discard
	p, err := Build(cfg, file, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// benchAPIKeys opens a static key store holding one key, and returns it
// with the key in plain text.
func benchAPIKeys(t testing.TB) (*APIKeys, string) {
	t.Helper()
	format, err := apikey.NewFormat("")
	if err != nil {
		t.Fatal(err)
	}
	key, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var hasher *apikey.Hasher
	cfg, _, err := config.Parse("keys.yaml", []byte(`
api_keys:
  store: {type: static}
  static: [{id: k1, consumer: bench, hash: "sha256:`+hex.EncodeToString(hasher.Hash(key))+`", scopes: [read]}]
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["builtin:echo"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := OpenAPIKeys(context.Background(), cfg.APIKeys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = keys.Close() })
	return keys, key
}

// benchJWT writes an RSA public key (JWK) to a temporary file and mints
// an RS256 token for issuer https://idp.bench.test and audience api.
func benchJWT(t testing.TB) (keyFile, token string) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "bench-1", Algorithm: string(jose.RS256), Use: "sig"}
	data, err := pub.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "jwk.json")
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "bench-1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": "https://idp.bench.test", "aud": "api", "sub": "u1", "scope": "read write",
		"roles": []string{"reader"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "bench-jti",
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	token, err = jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(token, ".") != 2 {
		t.Fatalf("token %q", token)
	}
	return keyFile, token
}
