package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// otlpReceiver is a real OTLP/HTTP trace receiver: it accepts POST
// /v1/traces in protobuf (gzip or not), decodes every export with the
// collector's own pdata and keeps the raw bytes, so a test can search them
// for what must never be exported.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	raw   [][]byte
	spans []exportedSpan
	auth  []string
}

// exportedSpan is one decoded span, flattened for assertions.
type exportedSpan struct {
	Name, TraceID, SpanID, Parent, Kind, Service string
	Attrs                                        map[string]string
	Error                                        bool
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		rcv.raw = append(rcv.raw, data)
		rcv.auth = append(rcv.auth, r.Header.Get("Authorization"))
		rcv.spans = append(rcv.spans, flatten(req.Traces())...)
		rcv.mu.Unlock()
		out, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

func flatten(td ptrace.Traces) []exportedSpan {
	var out []exportedSpan
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				s := ss.Spans().At(k)
				es := exportedSpan{
					Name: s.Name(), TraceID: s.TraceID().String(), SpanID: s.SpanID().String(),
					Kind: s.Kind().String(), Service: service, Attrs: map[string]string{},
					Error: s.Status().Code() == ptrace.StatusCodeError,
				}
				if !s.ParentSpanID().IsEmpty() {
					es.Parent = s.ParentSpanID().String()
				}
				s.Attributes().Range(func(k string, v pcommon.Value) bool {
					es.Attrs[k] = v.AsString()
					return true
				})
				out = append(out, es)
			}
		}
	}
	return out
}

func (rcv *otlpReceiver) all() ([]exportedSpan, []byte, []string) {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]exportedSpan(nil), rcv.spans...), bytes.Join(rcv.raw, nil), append([]string(nil), rcv.auth...)
}

// serverSpan is the server span of the request with id rid.
func serverSpan(t *testing.T, spans []exportedSpan, rid string) exportedSpan {
	t.Helper()
	for _, s := range spans {
		if s.Kind == "Server" && s.Attrs["gatehouse.request_id"] == rid {
			return s
		}
	}
	t.Fatalf("no server span for request %s in %d spans", rid, len(spans))
	return exportedSpan{}
}

// child is the span named name whose parent is parent; ok false if none.
func child(spans []exportedSpan, parent exportedSpan, name string) (exportedSpan, bool) {
	for _, s := range spans {
		if s.Name == name && s.Parent == parent.SpanID && s.TraceID == parent.TraceID {
			return s, true
		}
	}
	return exportedSpan{}, false
}

// TestTracingThroughGateway drives a real gateway with tracing on against
// a real OpenID Provider, a real upstream and an in-process OTLP/HTTP
// receiver: span names, parent/child relations and attributes; a trusted
// proxy's traceparent is continued and an untrusted client's is not; the
// upstream receives a traceparent of the same trace; no credential is ever
// exported; and Shutdown flushes what is pending.
func TestTracingThroughGateway(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_OTEL_TOKEN", "collector-secret")
	rcv := newOTLPReceiver(t)
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	cfgText := header + fmt.Sprintf(`
tracing:
  enabled: true
  endpoint: %q
  insecure: true
  headers: {Authorization: "Bearer ${GATEHOUSE_TEST_OTEL_TOKEN}"}
  service_name: gatehouse-test
forwarding:
  trusted_proxies: ["127.0.0.2/32"]
`, rcv.URL) + "identity_providers:\n" + providerYAML("idp", idp, "") + "routes:\n" +
		authedRoute("api", "/api", up.URL, "") +
		"  - name: admin-only\n    match: {path_prefix: /admin}\n    authenticate: {methods: [jwt]}\n" +
		"    authorize: {roles: {any_of: [admin]}}\n    upstream: {targets: [\"" + up.URL + "\"]}\n"
	tg := startGateway(t, cfgText)
	tg.Serve()
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tg.Shutdown(ctx)
		})
	}
	t.Cleanup(shutdown)
	tg.waitReady(t)

	// The trusted proxy is 127.0.0.2: a client bound to that source address.
	trusted := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	t.Cleanup(trusted.CloseIdleConnections)

	tok := idp.Mint(t, map[string]any{"sub": "alice"})
	const bogus = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWJvZ3VzLXRva2Vu.bm90LWEtc2lnbmF0dXJl"
	const (
		parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentSpan  = "00f067aa0ba902b7"
		forgedTrace = "0af7651916cd43dd8448eb211c80319c"
		// A trusted proxy's trace it decided not to sample.
		unsampledTrace = "11112222333344445555666677778888"
	)
	type call struct {
		name    string
		client  *http.Client
		path    string
		token   string
		headers map[string]string
		want    int
	}
	calls := []call{
		{"trusted", trusted, "/api/a?api_secret=qs-secret-value", tok, map[string]string{
			"Traceparent": "00-" + parentTrace + "-" + parentSpan + "-01", "Tracestate": "vendor=opaque"}, 200},
		{"untrusted", http.DefaultClient, "/api/b", tok, map[string]string{
			"Traceparent": "00-" + forgedTrace + "-" + parentSpan + "-01", "Tracestate": "forged=1",
			"Connection": "traceparent"}, 200},
		{"trusted unsampled", trusted, "/api/d", tok, map[string]string{
			"Traceparent": "00-" + unsampledTrace + "-" + parentSpan + "-00"}, 200},
		{"bad token", http.DefaultClient, "/api/c", bogus, nil, 401},
		{"denied", http.DefaultClient, "/admin/x", tok, nil, 403},
		{"unmatched", http.DefaultClient, "/nowhere", "", nil, 404},
	}
	rids := map[string]string{}
	upstreamSaw := map[string]received{}
	for _, c := range calls {
		req, _ := http.NewRequest("GET", tg.url+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		res, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Fatalf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.want, body)
		}
		rids[c.name] = res.Header.Get("X-Request-Id")
		if c.want == 200 {
			upstreamSaw[c.name] = decodeReceived(t, body)
		}
	}

	// Shutdown flushes the spans still queued in the batcher.
	shutdown()
	spans, raw, auth := rcv.all()
	if len(spans) == 0 {
		t.Fatal("the receiver got no spans by the end of Shutdown")
	}
	for _, a := range auth {
		if a != "Bearer collector-secret" {
			t.Fatalf("export carried Authorization %q, want the configured collector header", a)
		}
	}
	for _, secret := range []string{tok, bogus, "c2VjcmV0LWJvZ3VzLXRva2Vu", "qs-secret-value", "api_secret", "alice", "Bearer"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the export contains %q", secret)
		}
	}

	// A trusted proxy's trace is continued, with its tracestate, and the
	// upstream gets the same trace with the upstream span as parent.
	srv := serverSpan(t, spans, rids["trusted"])
	if srv.TraceID != parentTrace || srv.Parent != parentSpan {
		t.Errorf("trusted: server span trace %s parent %s, want %s %s", srv.TraceID, srv.Parent, parentTrace, parentSpan)
	}
	if srv.Name != "api" || srv.Service != "gatehouse-test" {
		t.Errorf("trusted: span %q of service %q", srv.Name, srv.Service)
	}
	for k, want := range map[string]string{"http.request.method": "GET", "http.route": "api", "gatehouse.route": "api",
		"url.path": "/api/a", "http.response.status_code": "200"} {
		if got := srv.Attrs[k]; got != want {
			t.Errorf("trusted: server span %s = %q, want %q", k, got, want)
		}
	}
	authn, ok := child(spans, srv, "authenticate")
	if !ok || authn.Attrs["gatehouse.auth.method"] != "jwt" || authn.Attrs["gatehouse.outcome"] != "allow" ||
		authn.Attrs["gatehouse.reason"] == "" || authn.Attrs["gatehouse.auth.provider"] != "idp" {
		t.Errorf("trusted: authenticate span %v (found %v)", authn, ok)
	}
	upSpan, ok := child(spans, srv, "upstream")
	if !ok || upSpan.Kind != "Client" || upSpan.Attrs["server.address"] != "127.0.0.1" || upSpan.Attrs["http.response.status_code"] != "200" {
		t.Fatalf("trusted: upstream span %v (found %v)", upSpan, ok)
	}
	if got, want := upstreamSaw["trusted"].Headers.Get("Traceparent"), "00-"+parentTrace+"-"+upSpan.SpanID+"-01"; got != want {
		t.Errorf("trusted: upstream got traceparent %q, want %q", got, want)
	}
	if got := upstreamSaw["trusted"].Headers.Get("Tracestate"); got != "vendor=opaque" {
		t.Errorf("trusted: upstream got tracestate %q", got)
	}

	// An untrusted client's traceparent starts nothing: a new root, and
	// the upstream sees the new trace (not the forged one, not removed
	// by the client's Connection header) and none of the client's tracestate.
	srv = serverSpan(t, spans, rids["untrusted"])
	if srv.TraceID == forgedTrace || srv.Parent != "" {
		t.Errorf("untrusted: server span continued the client's trace (%s, parent %q)", srv.TraceID, srv.Parent)
	}
	upSpan, ok = child(spans, srv, "upstream")
	if !ok {
		t.Fatal("untrusted: no upstream span")
	}
	if got, want := upstreamSaw["untrusted"].Headers.Get("Traceparent"), "00-"+srv.TraceID+"-"+upSpan.SpanID+"-01"; got != want {
		t.Errorf("untrusted: upstream got traceparent %q, want %q", got, want)
	}
	if got := upstreamSaw["untrusted"].Headers.Values("Tracestate"); len(got) != 0 {
		t.Errorf("untrusted: the client's tracestate reached the upstream: %q", got)
	}

	// A trusted proxy's decision not to sample is kept (parent-based
	// sampling): nothing is exported, and the upstream still gets the
	// trace, unsampled.
	for _, sp := range spans {
		if sp.TraceID == unsampledTrace {
			t.Errorf("trusted unsampled: span %q was exported", sp.Name)
		}
	}
	if tp := upstreamSaw["trusted unsampled"].Headers.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+unsampledTrace+"-") ||
		!strings.HasSuffix(tp, "-00") || strings.Contains(tp, parentSpan) {
		t.Errorf("trusted unsampled: upstream got traceparent %q", tp)
	}

	// A refused credential: the reason, never the token.
	srv = serverSpan(t, spans, rids["bad token"])
	authn, ok = child(spans, srv, "authenticate")
	if !ok || authn.Attrs["gatehouse.outcome"] != "deny" || authn.Attrs["gatehouse.reason"] == "" || authn.Attrs["gatehouse.reason"] == "ok" {
		t.Errorf("bad token: authenticate span %v (found %v)", authn, ok)
	}
	if _, ok := child(spans, srv, "upstream"); ok || srv.Attrs["http.response.status_code"] != "401" {
		t.Errorf("bad token: status %s, upstream span %v", srv.Attrs["http.response.status_code"], ok)
	}

	// A policy's denial.
	srv = serverSpan(t, spans, rids["denied"])
	authz, ok := child(spans, srv, "authorize")
	if !ok || authz.Attrs["gatehouse.outcome"] != "deny" || authz.Attrs["gatehouse.reason"] == "" || srv.Name != "admin-only" {
		t.Errorf("denied: authorize span %v (found %v), server span %q", authz, ok, srv.Name)
	}

	// No route: one span, named _unmatched.
	srv = serverSpan(t, spans, rids["unmatched"])
	if srv.Name != "_unmatched" || srv.Attrs["http.route"] != "_unmatched" || srv.Attrs["http.response.status_code"] != "404" {
		t.Errorf("unmatched: %v", srv)
	}
	for _, s := range spans {
		if s.Parent == srv.SpanID {
			t.Errorf("unmatched: unexpected child span %q", s.Name)
		}
	}
}

// TestTracingSettingsNeedRestart: a reload that changes the tracing block
// applies, keeps the running tracing settings and says so.
func TestTracingSettingsNeedRestart(t *testing.T) {
	rcv := newOTLPReceiver(t)
	up := newUpstream(t, "open")
	cfg := func(ratio string) string {
		return header + "tracing: {enabled: true, insecure: true, endpoint: \"" + rcv.URL + "\", sampling_ratio: " + ratio + "}\n" +
			"routes:\n" + routeYAML("open", "{path_prefix: /}", `{targets: ["`+up.URL+`"]}`)
	}
	tg := startGateway(t, cfg("1")).serve()
	tg.writeConfig(cfg("0.5"))
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := tg.cfg.Load().Tracing.SamplingRatio; got != 1 {
		t.Errorf("sampling_ratio after reload = %v, want the running 1", got)
	}
	mustContain(t, tg.opLog.String(), "tracing settings changed; they take effect after a restart")
}
