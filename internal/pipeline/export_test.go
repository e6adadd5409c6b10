package pipeline

import (
	"context"
	"log/slog"
	"testing"
)

// ServeBench runs one of BenchmarkServeHTTP's routes ("public", "api_key",
// "jwt_warm") with an Observer, for the benchmarks of package metrics'
// observer (observe_bench_test.go, an external test package, which can
// import internal/metrics without an import cycle).
func ServeBench(b *testing.B, kind string, obs Observer) {
	b.Helper()
	ServeBenchWith(b, kind, Options{Observer: obs})
}

// ServeBenchWith is ServeBench with the plan's Options (an Observer, a
// Tracer).
func ServeBenchWith(b *testing.B, kind string, opts Options) {
	b.Helper()
	obs := opts.Observer
	switch kind {
	case "public":
		p := buildPlanWith(b, benchLogs+`
routes:
  - name: r
    public: true
    match: {path_prefix: /api}
    upstream: {targets: ["http://upstream.bench"]}
`, opts)
		useTrivialUpstream(b, p)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/42?page=2&access_token=secret", nil), 200)
	case "api_key":
		keys, key := benchAPIKeys(b)
		if obs != nil {
			// The same store, observed: what the gateway opens with metrics on.
			observed, err := OpenAPIKeysObserved(context.Background(), keys.cfg, slog.New(slog.DiscardHandler), obs)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = observed.Close() })
			keys = observed
		}
		p := buildPlanWith(b, benchLogs+`
routes:
  - name: r
    match: {path_prefix: /api}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["http://upstream.bench"]}
`, withKeys(opts, keys))
		useTrivialUpstream(b, p)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/42", map[string]string{"X-Api-Key": key}), 200)
	case "jwt_warm":
		keyFile, token := benchJWT(b)
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
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://upstream.bench"]}
`, opts)
		if err := p.WaitReady(b.Context()); err != nil {
			b.Fatal(err)
		}
		useTrivialUpstream(b, p)
		runServe(b, p, newBenchRequest("http://gw.test/api/users/u1", map[string]string{"Authorization": "Bearer " + token}), 200)
	default:
		b.Fatalf("unknown bench route %q", kind)
	}
}

func withKeys(opts Options, keys *APIKeys) Options {
	opts.APIKeys = keys
	return opts
}
