package main

import (
	"fmt"
	"strings"
	"time"
)

// measurement is one closed-loop (throughput) phase.
type measurement struct {
	Requests     int64         `json:"requests"`
	Seconds      float64       `json:"seconds"`
	RPS          float64       `json:"rps"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	P999         time.Duration `json:"p999_ns"`
	AllocsPerReq float64       `json:"allocs_per_request"` // in the server process
	BytesPerReq  float64       `json:"bytes_per_request"`
	// CPUPerReq is the server process's CPU time (user + system) per request.
	CPUPerReq time.Duration `json:"cpu_per_request_ns"`
	// UpstreamConns counts the connections the upstream accepted meanwhile.
	UpstreamConns int64 `json:"upstream_connections"`
}

// latency is one fixed-rate phase.
type latency struct {
	Rate     float64       `json:"rate"`
	Requests int64         `json:"requests"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
}

// scenarioResult is one scenario measured beside the bare proxy.
type scenarioResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        kind   `json:"kind"`
	// VariantOf is the scenario this one repeats with one observability
	// setting changed (metrics off, tracing on).
	VariantOf string `json:"variant_of,omitempty"`
	// ReportOnly scenarios have no budget line of their own.
	ReportOnly bool `json:"report_only,omitempty"`

	// Throughput and Reference are the scenario and the bare proxy in the
	// same closed-loop pairing; Latency and RefLatency at the same fixed rate.
	Throughput *measurement `json:"throughput"`
	Reference  *measurement `json:"reference"`
	Latency    *latency     `json:"latency"`
	RefLatency *latency     `json:"reference_latency"`

	// The table's figures.
	RPS          float64       `json:"rps"`
	Ratio        float64       `json:"ratio_to_bare_proxy"`
	AllocsPerReq float64       `json:"allocs_per_request"`
	BytesPerReq  float64       `json:"bytes_per_request"`
	SatP99       time.Duration `json:"saturated_p99_ns"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	P999         time.Duration `json:"p999_ns"`
	P99Added     time.Duration `json:"p99_added_ns"`
}

func newScenarioResult(s *scenario, tx, tb, lx, lb *side, rate float64) (*scenarioResult, error) {
	r := &scenarioResult{Name: s.Name, Description: s.Description, Kind: s.Kind, VariantOf: s.variantOf, ReportOnly: s.reportOnly}
	var err error
	if r.Throughput, err = tx.measurement(); err != nil {
		return nil, err
	}
	if r.Reference, err = tb.measurement(); err != nil {
		return nil, err
	}
	if r.Latency, err = lx.latency(rate); err != nil {
		return nil, err
	}
	if r.RefLatency, err = lb.latency(rate); err != nil {
		return nil, err
	}
	r.RPS, r.Ratio = r.Throughput.RPS, r.Throughput.RPS/r.Reference.RPS
	r.AllocsPerReq, r.BytesPerReq, r.SatP99 = r.Throughput.AllocsPerReq, r.Throughput.BytesPerReq, r.Throughput.P99
	r.P50, r.P99, r.P999 = r.Latency.P50, r.Latency.P99, r.Latency.P999
	r.P99Added = r.Latency.P99 - r.RefLatency.P99
	return r, nil
}

// budgetLine is one line of the budget, checked.
type budgetLine struct {
	Rule   string `json:"rule"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

// results is everything a run produced; it is the JSON written.
type results struct {
	Date      string            `json:"date"`
	Machine   map[string]string `json:"machine"`
	Settings  map[string]any    `json:"settings"`
	Scenarios []*scenarioResult `json:"scenarios"`
	Soak      *soakResult       `json:"soak,omitempty"`
	Budget    []budgetLine      `json:"budget"`
}

func newResults(o *options) *results {
	return &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Settings: map[string]any{
			"connections": o.conns, "slices": o.slices, "warmup": o.warmup.String(),
			"throughput_per_side": o.duration.String(), "latency_per_side": o.latency.String(),
			"latency_rate_fraction_of_bare_proxy": o.rateFraction, "cold_tokens": o.coldTokens,
			"soak": o.soak.String(), "soak_warmup": o.soakWarmup.String(),
		},
	}
}

// The budget (BENCHMARKS.md).
const (
	warmRatioMin       = 0.90
	coldRS256RatioMin  = 0.60
	p99AddedMax        = time.Millisecond
	soakGrowthFraction = 0.10    // of the baseline heap in use...
	soakGrowthFloor    = 4 << 20 // ...or this many bytes, whichever is larger
	soakGoroutineSlack = 10
)

// evaluateBudget checks every budget line that this run measured.
func (r *results) evaluateBudget() {
	for _, s := range r.Scenarios {
		switch {
		case s.ReportOnly:
			// Reported only; introspection-cached is judged below.
		case s.VariantOf != "":
			// Held to the observability budget below instead.
		case s.Kind == kindWarm:
			r.Budget = append(r.Budget, budgetLine{
				Rule:  fmt.Sprintf("%s throughput ≥ %.2f× bare proxy", s.Name, warmRatioMin),
				Value: fmt.Sprintf("%.2f×", s.Ratio), Pass: s.Ratio >= warmRatioMin})
		case s.Name == "jwt-rs256-cold":
			r.Budget = append(r.Budget, budgetLine{
				Rule:  fmt.Sprintf("%s throughput ≥ %.2f× bare proxy", s.Name, coldRS256RatioMin),
				Value: fmt.Sprintf("%.2f×", s.Ratio), Pass: s.Ratio >= coldRS256RatioMin})
		}
	}
	r.evaluateObservability()
	r.evaluateIntrospection()
	for _, s := range r.Scenarios {
		if s.Kind == kindReference || s.ReportOnly {
			continue
		}
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("%s p99 added over bare proxy at %v conns ≤ %s", s.Name, r.Settings["connections"], fmtMS(p99AddedMax)),
			Value: fmtMS(s.P99Added), Pass: s.P99Added <= p99AddedMax})
	}
	if s := r.Soak; s != nil {
		limit := max(uint64(float64(s.Baseline.HeapInuse)*soakGrowthFraction), soakGrowthFloor)
		growth := int64(s.End.HeapInuse) - int64(s.Baseline.HeapInuse)
		r.Budget = append(r.Budget, budgetLine{
			Rule:   fmt.Sprintf("heap in use after GC grows ≤ %s over the %s soak after warm-up", fmtBytes(limit), s.Duration),
			Value:  fmtSignedBytes(growth),
			Pass:   growth <= int64(limit),
			Detail: fmt.Sprintf("baseline %s, end %s; token cache full at baseline: %v", fmtBytes(s.Baseline.HeapInuse), fmtBytes(s.End.HeapInuse), s.CacheFullAtBaseline)})
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("goroutines steady over the soak (≤ baseline + %d)", soakGoroutineSlack),
			Value: fmt.Sprintf("%d → %d", s.Baseline.Goroutines, s.End.Goroutines),
			Pass:  s.End.Goroutines <= s.Baseline.Goroutines+soakGoroutineSlack})
	}
}

func (r *results) budgetMet() bool {
	for _, l := range r.Budget {
		if !l.Pass {
			return false
		}
	}
	return true
}

// markdown renders the results as BENCHMARKS.md shows them.
func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s · %s · %s · %s CPUs (%s)\n\n", r.Date, r.Machine["go"], r.Machine["os_arch"], r.Machine["cpus"], r.Machine["cpu"])
	fmt.Fprintf(&b, "%v connections; each scenario in turns with the bare proxy (%v slices a side): %v closed-loop, then %v at a fixed %.0f req/s (%.0f%% of the bare proxy's throughput).\n\n",
		r.Settings["connections"], r.Settings["slices"], r.Settings["throughput_per_side"], r.Settings["latency_per_side"], r.Settings["latency_rate"], 100*r.Settings["latency_rate_fraction_of_bare_proxy"].(float64))
	b.WriteString("| scenario | req/s | × bare proxy | p50 | p99 | p99.9 | p99 added | saturated p99 | server CPU/req | allocs/req | B/req |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Scenarios {
		added := "—"
		if s.Kind != kindReference {
			added = fmtMS(s.P99Added)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %s | %s | %s | %.1f µs | %.1f | %.0f |\n",
			s.Name, s.RPS, s.Ratio, fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), added, fmtMS(s.SatP99),
			float64(s.Throughput.CPUPerReq)/1e3, s.AllocsPerReq, s.BytesPerReq)
	}
	if s := r.Soak; s != nil {
		fmt.Fprintf(&b, "\nSoak: %s of mixed traffic (%d requests, %.0f req/s) over a pool of %d distinct tokens (token cache bound %d); heap in use after GC %s at %s → %s at the end; goroutines %d → %d.\n",
			s.Duration, s.Requests, s.RPS, s.TokenPool, s.CacheBound, fmtBytes(s.Baseline.HeapInuse), s.WarmupDuration, fmtBytes(s.End.HeapInuse), s.Baseline.Goroutines, s.End.Goroutines)
	}
	b.WriteString("\n| budget | measured | |\n|---|---:|---|\n")
	for _, l := range r.Budget {
		mark := "pass"
		if !l.Pass {
			mark = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", l.Rule, l.Value, mark)
	}
	return b.String()
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func fmtBytes(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func fmtSignedBytes(n int64) string {
	if n < 0 {
		return "-" + fmtBytes(uint64(-n))
	}
	return "+" + fmtBytes(uint64(n))
}

// Observability budget (issue 11): metrics on, tracing off within 3 % of
// the throughput without metrics; tracing at 1 % sampling within 5 %.
// Both are ratios of same-run ratios to the bare proxy, so a busy machine
// shifts both sides alike.
const (
	metricsCostMax = 0.03
	tracingCostMax = 0.05
)

func (r *results) evaluateObservability() {
	byName := map[string]*scenarioResult{}
	for _, s := range r.Scenarios {
		byName[s.Name] = s
	}
	off := byName["jwt-rs256-warm-nometrics"]
	on := byName["jwt-rs256-warm"]
	traced := byName["jwt-rs256-warm-traced"]
	if off == nil || off.Ratio == 0 {
		return
	}
	if on != nil {
		rel := on.Ratio / off.Ratio
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("metrics on: jwt-rs256-warm throughput ≥ %.2f× the same without metrics", 1-metricsCostMax),
			Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1-metricsCostMax,
			Detail: fmt.Sprintf("ratios to the bare proxy: %.3f with metrics, %.3f without", on.Ratio, off.Ratio)})
	}
	if traced != nil {
		rel := traced.Ratio / off.Ratio
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("tracing at 1%%: jwt-rs256-warm throughput ≥ %.2f× the same without metrics or tracing", 1-tracingCostMax),
			Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1-tracingCostMax,
			Detail: fmt.Sprintf("ratios to the bare proxy: %.3f traced, %.3f without", traced.Ratio, off.Ratio)})
	}
}

// Introspection budget (issue 13): a cached introspection answer costs at
// most twice what a warm JWT costs. Judged, like the observability budget,
// as a ratio of same-run ratios to the bare proxy: introspection-cached's
// throughput at least half of jwt-rs256-warm's.
const introspectionCostMax = 2.0

func (r *results) evaluateIntrospection() {
	var intro, warm *scenarioResult
	for _, s := range r.Scenarios {
		switch s.Name {
		case "introspection-cached":
			intro = s
		case "jwt-rs256-warm":
			warm = s
		}
	}
	if intro == nil || warm == nil || warm.Ratio == 0 {
		return
	}
	rel := intro.Ratio / warm.Ratio
	detail := fmt.Sprintf("ratios to the bare proxy: %.3f introspection-cached, %.3f jwt-rs256-warm", intro.Ratio, warm.Ratio)
	if intro.Throughput != nil && warm.Throughput != nil {
		detail += fmt.Sprintf("; server CPU/req %.1f µs vs %.1f µs",
			float64(intro.Throughput.CPUPerReq)/1e3, float64(warm.Throughput.CPUPerReq)/1e3)
	}
	r.Budget = append(r.Budget, budgetLine{
		Rule:  fmt.Sprintf("introspection cache hit: introspection-cached throughput ≥ 1/%.0f× jwt-rs256-warm's", introspectionCostMax),
		Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1/introspectionCostMax, Detail: detail})
}
