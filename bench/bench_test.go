package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// TestMain lets the test binary play the harness's server roles, as the
// harness binary does: the smoke test starts it again as its children.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runChild(role, os.Args[1:]); err != nil {
			os.Stderr.WriteString("bench " + role + ": " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHarnessSmoke runs the whole harness with tiny phases: every server
// starts, the self-check passes (credentials are required and checked),
// every scenario is measured without a failed request, and the table, the
// JSON and the budget are produced. The numbers themselves are not judged
// here: performance is judged by the full run, not by a unit test.
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and sends a few thousand requests")
	}
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"-slices", "2", "-warmup", "100ms", "-duration", "400ms", "-latency", "400ms",
		"-cold-tokens", "200", "-conns", "8", "-soak", "2s", "-soak-warmup", "1s",
		"-check=false", "-json", out, "-pinned=false",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	want := []string{"direct", "bare-proxy", "gatehouse-public", "apikey",
		"jwt-rs256-warm", "jwt-es256-warm", "jwt-eddsa-warm",
		"jwt-rs256-cold", "jwt-es256-cold", "jwt-eddsa-cold", "jwt-rs256-cel",
		"jwt-rs256-warm-nometrics", "jwt-rs256-warm-traced",
		"bare-proxy-tls", "mtls", "mtls-handshake", "jwt-dpop", "introspection-cached", "jwt-revocation",
		"jwt-ratelimit-local"}
	// The Redis scenario runs when Redis answers (required in CI).
	if err := (&bed{}).redisReachable(context.Background()); err == nil {
		want = append(want, "jwt-ratelimit-redis")
	} else if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("GATEHOUSE_REQUIRE_SERVICES=1: %v", err)
	} else {
		t.Logf("jwt-ratelimit-redis not expected: %v", err)
	}
	// Issue 15's scenarios (session-warm paired with jwt-rs256-warm).
	want = append(want, "session-warm", "basic-cached", "jwt-assertion", "decision-jwt")
	if len(res.Scenarios) != len(want) {
		t.Fatalf("%d scenarios, want %d", len(res.Scenarios), len(want))
	}
	for i, s := range res.Scenarios {
		if s.Name != want[i] {
			t.Errorf("scenario %d = %s, want %s", i, s.Name, want[i])
		}
		if s.RPS <= 0 || s.Throughput.Requests == 0 || s.Latency.Requests == 0 || s.Reference.Requests == 0 || s.RefLatency.Requests == 0 {
			t.Errorf("%s: nothing measured: %+v", s.Name, s)
		}
		if s.AllocsPerReq <= 0 || s.P99 <= 0 || s.P99 < s.P50 || s.P999 < s.P99 {
			t.Errorf("%s: implausible figures: allocs %.1f p50 %v p99 %v p99.9 %v", s.Name, s.AllocsPerReq, s.P50, s.P99, s.P999)
		}
		if !strings.Contains(stdout.String(), "| "+s.Name+" |") {
			t.Errorf("%s missing from the Markdown table", s.Name)
		}
	}
	// The observability variants are judged against jwt-rs256-warm.
	var observability int
	for _, l := range res.Budget {
		if strings.HasPrefix(l.Rule, "metrics on:") || strings.HasPrefix(l.Rule, "tracing at 1%:") {
			observability++
		}
	}
	if observability != 2 {
		t.Errorf("%d observability budget lines, want 2: %+v", observability, res.Budget)
	}
	// The issue 12/13 scenarios are reported, with one budget line: the
	// introspection cache hit against jwt-rs256-warm.
	var introspection int
	for _, l := range res.Budget {
		if strings.HasPrefix(l.Rule, "introspection cache hit:") {
			introspection++
		}
		for _, name := range []string{"mtls", "jwt-dpop", "jwt-revocation", "jwt-ratelimit-local", "jwt-ratelimit-redis",
			"basic-cached", "jwt-assertion", "decision-jwt"} {
			if strings.HasPrefix(l.Rule, name+" ") {
				t.Errorf("report-only scenario %s has a budget line: %s", name, l.Rule)
			}
		}
	}
	if introspection != 1 {
		t.Errorf("%d introspection budget lines, want 1: %+v", introspection, res.Budget)
	}
	reportOnly := map[string]bool{"mtls": true, "mtls-handshake": true, "jwt-dpop": true, "introspection-cached": true,
		"jwt-revocation": true, "jwt-ratelimit-local": true, "jwt-ratelimit-redis": true,
		"session-warm": true, "basic-cached": true, "jwt-assertion": true, "decision-jwt": true}
	for _, s := range res.Scenarios {
		if s.ReportOnly != reportOnly[s.Name] {
			t.Errorf("%s: report_only %v, want %v", s.Name, s.ReportOnly, reportOnly[s.Name])
		}
	}
	if bare := res.Scenarios[1]; bare.Ratio != 1 || bare.P99Added != 0 {
		t.Errorf("bare proxy ratio %v, added p99 %v; want 1 and 0", bare.Ratio, bare.P99Added)
	}
	// Cold phases may use at most the tokens they were given.
	for _, s := range res.Scenarios {
		if s.Kind == kindCold && s.Throughput.Requests > 200 {
			t.Errorf("%s: %d requests from 200 tokens", s.Name, s.Throughput.Requests)
		}
	}
	if res.Soak == nil || res.Soak.Requests == 0 || res.Soak.Baseline.HeapInuse == 0 || res.Soak.End.HeapInuse == 0 {
		t.Errorf("soak not measured: %+v", res.Soak)
	}
	// 6 throughput lines (4 warm kinds + cel + cold RS256), 2 observability
	// lines, 1 introspection line, 1 session line (issue 15), 9 latency
	// lines (not the two variants, paired with their base scenario), 2
	// soak lines; the other report-only scenarios (issues 12 to 15) add
	// none.
	if len(res.Budget) != 6+2+1+1+9+2 {
		t.Errorf("%d budget lines, want %d: %+v", len(res.Budget), 6+2+1+1+9+2, res.Budget)
	}
	if !slices.ContainsFunc(res.Budget, func(l budgetLine) bool { return strings.HasPrefix(l.Rule, "session-warm CPU per request") }) {
		t.Errorf("no session-warm budget line: %+v", res.Budget)
	}
	// The variants are paired with their base, not with the bare proxy.
	for _, s := range res.Scenarios {
		want := map[string]string{"jwt-rs256-warm-nometrics": "jwt-rs256-warm", "jwt-rs256-warm-traced": "jwt-rs256-warm-nometrics",
			"session-warm": "jwt-rs256-warm"}[s.Name]
		if s.PairedWith != want {
			t.Errorf("%s paired with %q, want %q", s.Name, s.PairedWith, want)
		}
	}
}

// TestHarnessSmokePinned runs a few scenarios in pinned mode: the proxies
// start on one core with GOMAXPROCS=1 (the harness checks both, and fails
// otherwise), nginx joins as a reference when installed, and the budget is
// judged in CPU time per request.
func TestHarnessSmokePinned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five servers and sends a few thousand requests")
	}
	if !pinnable() {
		t.Skip("pinned mode needs taskset and at least 2 cores")
	}
	withNginx := findNginx() != ""
	if !withNginx {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			t.Fatal("GATEHOUSE_REQUIRE_SERVICES=1: nginx is not installed")
		}
		t.Log("nginx not installed: the nginx reference is not expected")
	}
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{
		"-pinned", "-only", "gatehouse-public,jwt-rs256-warm-traced",
		"-slices", "2", "-warmup", "100ms", "-duration", "400ms", "-latency", "400ms",
		"-conns", "8", "-soak", "0", "-check=false", "-json", out,
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if !res.pinned() || res.Machine["pinned_core"] == "" {
		t.Fatalf("not a pinned run: settings %v, machine %v", res.Settings, res.Machine)
	}
	if f := rateFraction(&res); f != 0.25 {
		t.Errorf("pinned latency rate %.2f of capacity, want 0.25 (issue 16)", f)
	}
	want := []string{"direct", "bare-proxy"}
	if withNginx {
		want = append(want, "nginx")
	}
	// traced brings the scenario it is paired with (nometrics), which
	// brings its own (jwt-rs256-warm).
	want = append(want, "gatehouse-public", "jwt-rs256-warm", "jwt-rs256-warm-nometrics", "jwt-rs256-warm-traced")
	var got []string
	for _, s := range res.Scenarios {
		got = append(got, s.Name)
		if s.Throughput.CPUPerReq <= 0 || s.CPURatio <= 0 {
			t.Errorf("%s: no CPU time per request measured: %v (ratio %.2f)", s.Name, s.Throughput.CPUPerReq, s.CPURatio)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %q, want %q", got, want)
	}
	if !strings.Contains(stdout.String(), "| scenario | CPU/req | CPU × bare |") {
		t.Errorf("the pinned table leads with CPU per request:\n%s", stdout.String())
	}
	// 2 CPU lines (public, warm), 2 observability lines, 2 p99 lines;
	// nginx and the variants have none of their own (TestBudgetPinned
	// covers the cold line).
	var cpuLines, p99Lines, obsLines int
	for _, l := range res.Budget {
		switch {
		case strings.Contains(l.Rule, "CPU per request on the pinned core"):
			cpuLines++
		case strings.Contains(l.Rule, "p99 added"):
			p99Lines++
		case strings.HasPrefix(l.Rule, "metrics on:"), strings.HasPrefix(l.Rule, "tracing at 1%:"):
			obsLines++
		}
		if strings.HasPrefix(l.Rule, "nginx ") || strings.HasPrefix(l.Rule, "jwt-rs256-warm-") {
			t.Errorf("budget line for a reference or a variant: %s", l.Rule)
		}
	}
	if cpuLines != 2 || p99Lines != 2 || obsLines != 2 || len(res.Budget) != 6 {
		t.Errorf("budget lines: %d CPU, %d p99, %d observability, %d in all; want 2, 2, 2, 6: %+v", cpuLines, p99Lines, obsLines, len(res.Budget), res.Budget)
	}
}

// TestBudgetPinned: in pinned mode the throughput lines give way to issue
// 16's CPU lines (public ≤ 1.00×, warm ≤ 1.10×, cold RS256 ≤ 2.5× the
// bare proxy's CPU per request).
func TestBudgetPinned(t *testing.T) {
	mk := func(public, warm, cold float64) *results {
		r := &results{Settings: map[string]any{"connections": 64, "pinned": true, "latency_rate_fraction_of_bare_proxy": 0.25}}
		m := &measurement{CPUPerReq: time.Microsecond}
		r.Scenarios = []*scenarioResult{
			{Name: "bare-proxy", Kind: kindReference, Ratio: 1, CPURatio: 1, Throughput: m, Reference: m},
			{Name: "nginx", Kind: kindReference, ReportOnly: true, CPURatio: 0.3, Throughput: m, Reference: m},
			{Name: "gatehouse-public", Kind: kindPublic, Ratio: 0.5, CPURatio: public, Throughput: m, Reference: m},
			{Name: "apikey", Kind: kindWarm, Ratio: 0.5, CPURatio: warm, Throughput: m, Reference: m},
			{Name: "jwt-rs256-cold", Kind: kindCold, Ratio: 0.1, CPURatio: cold, Throughput: m, Reference: m},
			{Name: "jwt-es256-cold", Kind: kindCold, Ratio: 0.1, CPURatio: 9, Throughput: m, Reference: m},
		}
		r.evaluateBudget()
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *results
		failed []string
	}{
		{"at the limits", mk(1.00, 1.10, 2.5), nil},
		{"public over", mk(1.01, 1.0, 2), []string{"gatehouse-public CPU"}},
		{"warm over", mk(0.9, 1.11, 2), []string{"apikey CPU"}},
		{"cold over", mk(0.9, 1.0, 2.51), []string{"jwt-rs256-cold CPU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []string
			for _, l := range tc.r.Budget {
				if strings.Contains(l.Rule, "throughput ≥") {
					t.Errorf("a throughput line in pinned mode: %s", l.Rule)
				}
				if !l.Pass {
					failed = append(failed, l.Rule)
				}
			}
			if len(failed) != len(tc.failed) {
				t.Fatalf("failed %q, want %q", failed, tc.failed)
			}
			for i := range failed {
				if !strings.HasPrefix(failed[i], tc.failed[i]) {
					t.Fatalf("failed %q, want %q", failed, tc.failed)
				}
			}
		})
	}
}

// TestObservabilityPairedDirectly: the observability lines are judged on
// the direct pairing of each variant with its base. The figures are the
// quiet run of 2026-11-29 (BENCHMARKS.md): metrics on and off at equal
// speed, but the bare proxy beside each at another speed. Divided by the
// bare proxy first, they printed a false FAIL (0.937); paired directly,
// they pass.
func TestObservabilityPairedDirectly(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		r := &results{Settings: map[string]any{"connections": 64, "pinned": pinned}}
		on := &measurement{RPS: 6958, CPUPerReq: 152200}
		off := &measurement{RPS: 6948, CPUPerReq: 152100}
		traced := &measurement{RPS: 6764, CPUPerReq: 156000}
		r.Scenarios = []*scenarioResult{
			{Name: "jwt-rs256-warm", Kind: kindWarm, Ratio: 0.78},
			{Name: "jwt-rs256-warm-nometrics", Kind: kindWarm, VariantOf: "jwt-rs256-warm", PairedWith: "jwt-rs256-warm",
				Throughput: off, Reference: on, Ratio: off.RPS / on.RPS, CPURatio: float64(off.CPUPerReq) / float64(on.CPUPerReq)},
			{Name: "jwt-rs256-warm-traced", Kind: kindWarm, VariantOf: "jwt-rs256-warm", PairedWith: "jwt-rs256-warm-nometrics",
				Throughput: traced, Reference: off, Ratio: traced.RPS / off.RPS, CPURatio: float64(traced.CPUPerReq) / float64(off.CPUPerReq)},
		}
		r.evaluateObservability()
		if len(r.Budget) != 2 {
			t.Fatalf("pinned=%v: %d lines, want 2: %+v", pinned, len(r.Budget), r.Budget)
		}
		for _, l := range r.Budget {
			if !l.Pass {
				t.Errorf("pinned=%v: %s: %s (%s): a false FAIL", pinned, l.Rule, l.Value, l.Detail)
			}
		}
		// A real 5 % cost fails the metrics line.
		r.Budget = nil
		r.Scenarios[1].Ratio, r.Scenarios[1].CPURatio = 1.05, 1/1.05
		r.evaluateObservability()
		if r.Budget[0].Pass {
			t.Errorf("pinned=%v: metrics costing 5 %% passed: %+v", pinned, r.Budget[0])
		}
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"0", []int{0}, true},
		{"0,1", []int{0, 1}, true},
		{"0-3,6", []int{0, 1, 2, 3, 6}, true},
		{" 1 ", []int{1}, true},
		{"3-1", nil, false},
		{"a", nil, false},
		{"", nil, false},
	} {
		got, err := parseCPUList(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestProcCPU reads this process's CPU time from /proc, as nginx's is
// read, and compares it with what getrusage says (the Go children's
// figure): the two agree within a few clock ticks.
func TestProcCPU(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	start := time.Now()
	for x := 0; time.Since(start) < 200*time.Millisecond; x++ {
		_ = x * x
	}
	proc, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rusage := readStats(false).CPU
	if proc < 10*time.Millisecond {
		t.Fatalf("/proc says %v of CPU after a 200 ms busy loop", proc)
	}
	if d := proc - rusage; d > 50*time.Millisecond || d < -50*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", proc, rusage)
	}
}

func TestBudget(t *testing.T) {
	ms := time.Millisecond
	mk := func(warmRatio, coldRatio float64, added time.Duration, heapGrowth uint64, goroutines int) *results {
		r := &results{Settings: map[string]any{"connections": 64}}
		r.Scenarios = []*scenarioResult{
			{Name: "bare-proxy", Kind: kindReference, Ratio: 1},
			{Name: "apikey", Kind: kindWarm, Ratio: warmRatio, P99Added: added},
			{Name: "jwt-rs256-cold", Kind: kindCold, Ratio: coldRatio, P99Added: added},
			{Name: "jwt-es256-cold", Kind: kindCold, Ratio: 0.1, P99Added: added},
		}
		r.Soak = &soakResult{Duration: "60s",
			Baseline: stats{HeapInuse: 100 << 20, Goroutines: 50},
			End:      stats{HeapInuse: 100<<20 + heapGrowth, Goroutines: 50 + goroutines}}
		r.evaluateBudget()
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *results
		failed []string // rules expected to fail, by prefix
	}{
		{"all met", mk(0.95, 0.7, ms/2, 1<<20, 2), nil},
		{"at the limits", mk(0.90, 0.60, ms, 10<<20, 10), nil},
		{"warm too slow", mk(0.89, 0.7, 0, 0, 0), []string{"apikey throughput"}},
		{"cold too slow", mk(0.95, 0.59, 0, 0, 0), []string{"jwt-rs256-cold throughput"}},
		{"latency", mk(0.95, 0.7, ms+1, 0, 0), []string{"apikey p99", "jwt-rs256-cold p99", "jwt-es256-cold p99"}},
		{"heap grows", mk(0.95, 0.7, 0, 11<<20, 0), []string{"heap in use"}},
		{"goroutines leak", mk(0.95, 0.7, 0, 0, 11), []string{"goroutines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []string
			for _, l := range tc.r.Budget {
				if !l.Pass {
					failed = append(failed, l.Rule)
				}
			}
			if len(failed) != len(tc.failed) {
				t.Fatalf("failed %q, want %q", failed, tc.failed)
			}
			for i := range failed {
				if !strings.HasPrefix(failed[i], tc.failed[i]) {
					t.Fatalf("failed %q, want %q", failed, tc.failed)
				}
			}
			if tc.r.budgetMet() != (len(tc.failed) == 0) {
				t.Fatal("budgetMet disagrees with the lines")
			}
		})
	}
}

func TestIntrospectionBudget(t *testing.T) {
	for _, tc := range []struct {
		name             string
		intro, warm      float64
		lines            int
		pass             bool
		withoutIntrospec bool
	}{
		{"as fast as a warm JWT", 0.9, 0.9, 1, true, false},
		{"at the limit", 0.45, 0.9, 1, true, false},
		{"more than twice the cost", 0.44, 0.9, 1, false, false},
		{"not measured", 0, 0.9, 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &results{Settings: map[string]any{"connections": 64}}
			r.Scenarios = []*scenarioResult{{Name: "jwt-rs256-warm", Kind: kindWarm, Ratio: tc.warm}}
			if !tc.withoutIntrospec {
				r.Scenarios = append(r.Scenarios, &scenarioResult{Name: "introspection-cached", Kind: kindWarm, Ratio: tc.intro, ReportOnly: true})
			}
			r.evaluateIntrospection()
			if len(r.Budget) != tc.lines {
				t.Fatalf("%d lines, want %d: %+v", len(r.Budget), tc.lines, r.Budget)
			}
			if tc.lines > 0 && r.Budget[0].Pass != tc.pass {
				t.Fatalf("pass = %v, want %v: %+v", r.Budget[0].Pass, tc.pass, r.Budget[0])
			}
		})
	}
}

// TestHeaderSetsSendEveryHeader checks that a credential carried in
// several headers (DPoP) reaches the server whole, one set per request,
// and that a used-up set pool ends the phase.
func TestHeaderSetsSendEveryHeader(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization")+"|"+r.Header.Get("DPoP"))
	}))
	defer srv.Close()
	tg := &target{url: srv.URL, headers: []string{"Authorization", "DPoP"},
		sets: &setPool{values: [][]string{{"DPoP t", "p1"}, {"DPoP t", "p2"}}}}
	c := newClient(1)
	defer c.CloseIdleConnections()
	for range 3 {
		if _, err := do(t.Context(), c, tg); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"DPoP t|p1", "DPoP t|p2"}; !slices.Equal(got, want) {
		t.Fatalf("server saw %q, want %q", got, want)
	}
	if more, _ := do(t.Context(), c, tg); more {
		t.Fatal("a used-up set pool must end the phase")
	}
}

func TestQuantile(t *testing.T) {
	p := &phase{}
	for i := 1; i <= 1000; i++ {
		p.lat = append(p.lat, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := p.quantile(q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if (&phase{}).quantile(0.99) != 0 {
		t.Error("empty phase")
	}
}

func TestPoolEndsWhenUsedUp(t *testing.T) {
	p := &pool{values: []string{"a", "b"}}
	for _, want := range []string{"a", "b"} {
		if got, ok := p.next(); !ok || got != want {
			t.Fatalf("next = %q %v, want %q", got, ok, want)
		}
	}
	if _, ok := p.next(); ok {
		t.Fatal("a used-up pool must end the phase")
	}
	c := &cycle{values: []string{"a", "b"}}
	for _, want := range []string{"a", "b", "a"} {
		if got, _ := c.next(); got != want {
			t.Fatalf("cycle = %q, want %q", got, want)
		}
	}
}

func TestTamperChangesTheCredential(t *testing.T) {
	for _, v := range []string{"Bearer aaaaaaaaaaaaaaaaaaaa", "gh_AAAAAAAAAAAAAAAAAAAAAAAA"} {
		got := tamper(v)
		if got == v || len(got) != len(v) {
			t.Errorf("tamper(%q) = %q", v, got)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"-quick"}, true},
		{[]string{"-quick", "-soak", "0"}, true},
		{[]string{"-slices", "0"}, false},
		{[]string{"-conns", "0"}, false},
		{[]string{"-rate", "1.5"}, false},
		{[]string{"-soak", "5s", "-soak-warmup", "5s"}, false},
		{[]string{"-duration", "1h"}, false},
		{[]string{"extra"}, false},
		{[]string{"-pinned=false"}, true},
		{[]string{"-pinned=false", "-pin-core", "0"}, true},
	} {
		o, err := parseOptions(tc.args, &bytes.Buffer{})
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.args, err, tc.ok)
		}
		if err == nil && len(tc.args) == 3 && tc.args[0] == "-quick" && o.soak != 0 {
			t.Errorf("%q: -soak given explicitly must win over -quick", tc.args)
		}
	}
	// Pinned, the latency phases run at a quarter of capacity unless -rate
	// says otherwise; not pinned, at a tenth.
	for _, tc := range []struct {
		args []string
		rate float64
	}{
		{[]string{"-pinned=false"}, 0.1},
		{[]string{"-pinned=false", "-rate", "0.3"}, 0.3},
		{[]string{"-pinned", "-rate", "0.3"}, 0.3},
		{[]string{"-pinned"}, 0.25},
	} {
		if tc.args[0] == "-pinned" && !pinnable() {
			continue
		}
		o, err := parseOptions(tc.args, &bytes.Buffer{})
		if err != nil || o.rateFraction != tc.rate {
			t.Errorf("%q: rate %v (%v), want %v", tc.args, o.rateFraction, err, tc.rate)
		}
	}
}

func TestTurnsAlternateAndBalance(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "BX"},
		{2, "BXXB"},
		{4, "BXXBBXXB"},
	} {
		var got strings.Builder
		for _, isX := range turns(tc.n) {
			if isX {
				got.WriteByte('X')
			} else {
				got.WriteByte('B')
			}
		}
		if got.String() != tc.want {
			t.Errorf("turns(%d) = %s, want %s", tc.n, got.String(), tc.want)
		}
	}
}

// TestScenarioConfigsValidate checks that the configuration of the main
// Gatehouse and of every variant is one `gatehouse validate` accepts
// (decoded, validated and compiled into a plan), without starting a
// process: a scenario whose route, method or block is wrong fails here in
// a second, not at the start of a run.
func TestScenarioConfigsValidate(t *testing.T) {
	dir := t.TempDir()
	issuers, err := newIssuers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPKI(dir); err != nil {
		t.Fatal(err)
	}
	secrets, err := newMethodSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	const upstream = "127.0.0.1:9"
	main := mainConfig(dir, providersConfig(issuers, upstream), "http://"+upstream, secrets.sessionKey)
	configs := map[string]string{"gatehouse": main}
	for name, settings := range variantSettings {
		vdir := filepath.Join(dir, name)
		if err := os.Mkdir(vdir, 0o700); err != nil {
			t.Fatal(err)
		}
		configs[name] = variantConfig(main, dir, vdir, settings, upstream, "gatehouse-bench:test:")
	}
	for _, name := range []string{"gatehouse-assertion", "gatehouse-decision"} {
		if _, ok := configs[name]; !ok {
			t.Errorf("no variant %s", name)
		}
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			for _, want := range []string{"name: session", "name: basic", "{{"} {
				if got := strings.Contains(cfg, want); got != (want != "{{") {
					t.Errorf("configuration contains %q: %v", want, got)
				}
			}
			path := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			c, file, err := config.Load(path)
			if err != nil {
				t.Fatalf("load: %v\n%s", err, cfg)
			}
			plan, err := pipeline.Build(c, file, pipeline.Options{Stdout: io.Discard, Stderr: io.Discard, Validating: true})
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			plan.Close()
		})
	}
}

// TestMethodScenarios: the issue 15 scenarios exist, go to the server
// that has their feature, and only session-warm is paired (with
// jwt-rs256-warm, which -only brings along); the decision scenario
// describes the original request in Traefik's headers.
func TestMethodScenarios(t *testing.T) {
	b := &bed{issuers: map[string]*issuer{}, secrets: &methodSecrets{sessionKey: "x", basicPassword: "pw"}}
	want := map[string]struct{ server, pair string }{
		"session-warm":  {"gatehouse", "jwt-rs256-warm"},
		"basic-cached":  {"gatehouse", ""},
		"jwt-assertion": {"gatehouse-assertion", ""},
		"decision-jwt":  {"gatehouse-decision", ""},
	}
	all := b.scenarios()
	for name, w := range want {
		i := slices.IndexFunc(all, func(s *scenario) bool { return s.Name == name })
		if i < 0 {
			t.Errorf("no scenario %s", name)
			continue
		}
		s := all[i]
		if s.server != w.server || s.pairWith != w.pair || !s.reportOnly || s.credential == nil || s.Description == "" {
			t.Errorf("%s: server %q pair %q reportOnly %v; want %q %q true, a credential and a description", name, s.server, s.pairWith, s.reportOnly, w.server, w.pair)
		}
		if _, ok := variantSettings[s.server]; !ok && s.server != "gatehouse" {
			t.Errorf("%s: server %s is no variant", name, s.server)
		}
	}
	sel, err := selectScenarios(all, "session-warm")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sel {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, "jwt-rs256-warm") {
		t.Errorf("-only session-warm selects %q: its partner is missing", names)
	}
	d := all[slices.IndexFunc(all, func(s *scenario) bool { return s.Name == "decision-jwt" })]
	for _, h := range []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-For"} {
		if len(d.fixed[h]) != 1 {
			t.Errorf("decision-jwt sends %s %q, want one value", h, d.fixed[h])
		}
	}
	if !d.decision {
		t.Error("decision-jwt must read the subject from the decision answer")
	}
}

// TestSessionBudget: session-warm's line is its CPU per request over
// jwt-rs256-warm's, in the direct pairing, at most 1; no line without
// that pairing.
func TestSessionBudget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ratio  float64
		paired string
		lines  int
		pass   bool
	}{
		{"cheaper", 0.9, "jwt-rs256-warm", 1, true},
		{"equal", 1.0, "jwt-rs256-warm", 1, true},
		{"dearer", 1.01, "jwt-rs256-warm", 1, false},
		{"not measured", 0, "jwt-rs256-warm", 1, false},
		{"not paired", 0.9, "", 0, true},
	} {
		for _, pinned := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pinned=%v", tc.name, pinned), func(t *testing.T) {
				r := &results{Settings: map[string]any{"connections": 64, "pinned": pinned}}
				m := &measurement{CPUPerReq: time.Microsecond, RPS: 1}
				r.Scenarios = []*scenarioResult{{Name: "session-warm", Kind: kindWarm, ReportOnly: true, PairedWith: tc.paired,
					CPURatio: tc.ratio, Throughput: m, Reference: m}}
				r.evaluateSession()
				if len(r.Budget) != tc.lines {
					t.Fatalf("%d lines, want %d: %+v", len(r.Budget), tc.lines, r.Budget)
				}
				if tc.lines > 0 && r.Budget[0].Pass != tc.pass {
					t.Fatalf("pass = %v, want %v: %+v", r.Budget[0].Pass, tc.pass, r.Budget[0])
				}
			})
		}
	}
}
