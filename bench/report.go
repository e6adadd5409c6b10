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
	// PairedWith names the scenario measured beside this one instead of
	// the bare proxy (Reference, RefLatency and every ratio are to it).
	PairedWith string `json:"paired_with,omitempty"`

	// Throughput and Reference are the scenario and the bare proxy in the
	// same closed-loop pairing; Latency and RefLatency at the same fixed rate.
	Throughput *measurement `json:"throughput"`
	Reference  *measurement `json:"reference"`
	Latency    *latency     `json:"latency"`
	RefLatency *latency     `json:"reference_latency"`

	// The table's figures.
	RPS   float64 `json:"rps"`
	Ratio float64 `json:"ratio_to_bare_proxy"` // throughput; to PairedWith when set
	// CPURatio is the server's CPU time per request over the reference's
	// (the bare proxy, or PairedWith), in the same pairing: the primary
	// figure in pinned mode.
	CPURatio     float64       `json:"cpu_ratio_to_bare_proxy"`
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
	if r.Reference.CPUPerReq > 0 {
		r.CPURatio = float64(r.Throughput.CPUPerReq) / float64(r.Reference.CPUPerReq)
	}
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
			"soak": o.soak.String(), "soak_warmup": o.soakWarmup.String(), "pinned": o.pinned,
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

// Pinned-mode budget (issue 16): the proxy's CPU time per request on its
// core, over the bare proxy's in the same pairing.
const (
	publicCPUMax    = 1.00
	warmCPUMax      = 1.10
	coldRS256CPUMax = 2.5
)

// pinned reports whether the run was pinned (its budget is in CPU time
// per request).
func (r *results) pinned() bool {
	p, _ := r.Settings["pinned"].(bool)
	return p
}

// speed is how fast s went relative to its reference, for the budget
// lines that compare two scenarios: throughput when not pinned; on a
// pinned core, where the load generator may be what limits throughput,
// the reference's CPU time per request over s's (the throughput each
// would reach on a core of its own).
func (r *results) speed(s *scenarioResult) float64 {
	if !r.pinned() {
		return s.Ratio
	}
	if s.CPURatio == 0 {
		return 0
	}
	return 1 / s.CPURatio
}

// evaluateBudget checks every budget line that this run measured.
func (r *results) evaluateBudget() {
	if r.pinned() {
		r.evaluatePinned()
	} else {
		r.evaluateThroughput()
	}
	r.evaluateObservability()
	r.evaluateIntrospection()
	r.evaluateSession()
	for _, s := range r.Scenarios {
		if s.Kind == kindReference || s.ReportOnly || s.PairedWith != "" {
			// A paired variant's p99 is to its base scenario, which has
			// its own line.
			continue
		}
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("%s p99 added over bare proxy at %v conns, %.0f%% of capacity ≤ %s", s.Name, r.Settings["connections"], 100*rateFraction(r), fmtMS(p99AddedMax)),
			Value: fmtMS(s.P99Added), Pass: s.P99Added <= p99AddedMax})
	}
	r.evaluateSoak()
}

func rateFraction(r *results) float64 {
	f, _ := r.Settings["latency_rate_fraction_of_bare_proxy"].(float64)
	return f
}

// evaluatePinned checks issue 16's lines: CPU time per request of the
// proxy on its core, as a multiple of the bare proxy's.
func (r *results) evaluatePinned() {
	for _, s := range r.Scenarios {
		limit := 0.0
		switch {
		case s.ReportOnly || s.VariantOf != "":
		case s.Kind == kindPublic:
			limit = publicCPUMax
		case s.Kind == kindWarm:
			limit = warmCPUMax
		case s.Name == "jwt-rs256-cold":
			limit = coldRS256CPUMax
		}
		if limit == 0 {
			continue
		}
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("%s CPU per request on the pinned core ≤ %.2f× bare proxy", s.Name, limit),
			Value: fmt.Sprintf("%.2f×", s.CPURatio), Pass: s.CPURatio > 0 && s.CPURatio <= limit,
			Detail: fmt.Sprintf("%.1f µs vs %.1f µs; throughput %.2f×", float64(s.Throughput.CPUPerReq)/1e3,
				float64(s.Reference.CPUPerReq)/1e3, s.Ratio)})
	}
}

// evaluateThroughput checks the throughput lines of an unpinned run.
func (r *results) evaluateThroughput() {
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
}

// evaluateSoak checks the soak's heap and goroutine lines.
func (r *results) evaluateSoak() {
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
	if r.pinned() {
		fmt.Fprintf(&b, "Pinned: every proxy alone on core %s with GOMAXPROCS=1, the load generator and the upstream on core(s) %s. The primary figure is the proxy's CPU time per request; × is to the bare proxy in the same pairing (or to the scenario named).\n\n",
			r.Machine["pinned_core"], r.Machine["load_cores"])
		b.WriteString("| scenario | CPU/req | CPU × bare | req/s | × bare (req/s) | p50 | p99 | p99 added | allocs/req | B/req |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Scenarios {
			fmt.Fprintf(&b, "| %s | %.1f µs | %s | %.0f | %s | %s | %s | %s | %s | %s |\n",
				s.Name, float64(s.Throughput.CPUPerReq)/1e3, pairedRatio(s, s.CPURatio), s.RPS, pairedRatio(s, s.Ratio),
				fmtMS(s.P50), fmtMS(s.P99), added(s), perReq(s, s.AllocsPerReq, "%.1f"), perReq(s, s.BytesPerReq, "%.0f"))
		}
	} else {
		b.WriteString("| scenario | req/s | × bare proxy | p50 | p99 | p99.9 | p99 added | saturated p99 | server CPU/req | CPU × bare | allocs/req | B/req |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Scenarios {
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %.1f µs | %s | %s | %s |\n",
				s.Name, s.RPS, pairedRatio(s, s.Ratio), fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), added(s), fmtMS(s.SatP99),
				float64(s.Throughput.CPUPerReq)/1e3, pairedRatio(s, s.CPURatio), perReq(s, s.AllocsPerReq, "%.1f"), perReq(s, s.BytesPerReq, "%.0f"))
		}
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

// pairedRatio prints a ratio, naming the scenario it is to when that is
// not the bare proxy.
func pairedRatio(s *scenarioResult, v float64) string {
	if s.PairedWith != "" {
		return fmt.Sprintf("%.2f (× %s)", v, s.PairedWith)
	}
	return fmt.Sprintf("%.2f", v)
}

// added is the p99 added column: none for the references.
func added(s *scenarioResult) string {
	if s.Kind == kindReference {
		return "—"
	}
	if s.PairedWith != "" {
		return fmtMS(s.P99Added) + " (over " + s.PairedWith + ")"
	}
	return fmtMS(s.P99Added)
}

// perReq prints an allocation figure, or "n/a" for a server that does not
// report them (nginx).
func perReq(s *scenarioResult, v float64, format string) string {
	if v == 0 && s.Kind == kindReference && s.Name == "nginx" {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
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
// the throughput without metrics; tracing at 1 % within 5 % of neither.
// Each variant is paired directly with the scenario it is compared with
// (jwt-rs256-warm-nometrics beside jwt-rs256-warm, jwt-rs256-warm-traced
// beside jwt-rs256-warm-nometrics), so each line is one same-run ratio.
// (They used to be ratios of two ratios to the bare proxy, and the bare
// proxy's own slice-to-slice noise printed a false FAIL.) Pinned, the
// ratio is of CPU time per request (speed).
const (
	metricsCostMax = 0.03
	tracingCostMax = 0.05
)

func (r *results) evaluateObservability() {
	byName := map[string]*scenarioResult{}
	for _, s := range r.Scenarios {
		byName[s.Name] = s
	}
	measure := "throughput"
	if r.pinned() {
		measure = "throughput per core (1 / CPU per request)"
	}
	// off is measured beside jwt-rs256-warm: metrics on ÷ off is the
	// inverse of its ratio.
	if off := byName["jwt-rs256-warm-nometrics"]; off != nil && off.PairedWith == "jwt-rs256-warm" {
		if sp := r.speed(off); sp > 0 {
			rel := 1 / sp
			r.Budget = append(r.Budget, budgetLine{
				Rule:  fmt.Sprintf("metrics on: jwt-rs256-warm %s ≥ %.2f× the same without metrics", measure, 1-metricsCostMax),
				Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1-metricsCostMax,
				Detail: fmt.Sprintf("paired directly: %.0f vs %.0f req/s, %.1f vs %.1f µs CPU/req (metrics on vs off)",
					off.Reference.RPS, off.Throughput.RPS, float64(off.Reference.CPUPerReq)/1e3, float64(off.Throughput.CPUPerReq)/1e3)})
		}
	}
	if traced := byName["jwt-rs256-warm-traced"]; traced != nil && traced.PairedWith == "jwt-rs256-warm-nometrics" {
		if rel := r.speed(traced); rel > 0 {
			r.Budget = append(r.Budget, budgetLine{
				Rule:  fmt.Sprintf("tracing at 1%%: jwt-rs256-warm %s ≥ %.2f× the same without metrics or tracing", measure, 1-tracingCostMax),
				Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1-tracingCostMax,
				Detail: fmt.Sprintf("paired directly: %.0f vs %.0f req/s, %.1f vs %.1f µs CPU/req (traced vs neither)",
					traced.Throughput.RPS, traced.Reference.RPS, float64(traced.Throughput.CPUPerReq)/1e3, float64(traced.Reference.CPUPerReq)/1e3)})
		}
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
	if intro == nil || warm == nil || r.speed(warm) == 0 {
		return
	}
	rel := r.speed(intro) / r.speed(warm)
	detail := fmt.Sprintf("ratios to the bare proxy: %.3f introspection-cached, %.3f jwt-rs256-warm", intro.Ratio, warm.Ratio)
	if intro.Throughput != nil && warm.Throughput != nil {
		detail += fmt.Sprintf("; server CPU/req %.1f µs vs %.1f µs",
			float64(intro.Throughput.CPUPerReq)/1e3, float64(warm.Throughput.CPUPerReq)/1e3)
	}
	r.Budget = append(r.Budget, budgetLine{
		Rule:  fmt.Sprintf("introspection cache hit: introspection-cached throughput ≥ 1/%.0f× jwt-rs256-warm's", introspectionCostMax),
		Value: fmt.Sprintf("%.3f×", rel), Pass: rel >= 1/introspectionCostMax, Detail: detail})
}

// Session budget (issue 15): a warm browser session costs no more than a
// warm JWT. session-warm is paired directly with jwt-rs256-warm, so the
// line is one same-run ratio: its CPU time per request over
// jwt-rs256-warm's, at most 1 (pinned or not).
const sessionCostMax = 1.0

func (r *results) evaluateSession() {
	for _, s := range r.Scenarios {
		if s.Name != "session-warm" || s.PairedWith != "jwt-rs256-warm" || s.Throughput == nil || s.Reference == nil {
			continue
		}
		r.Budget = append(r.Budget, budgetLine{
			Rule:  fmt.Sprintf("session-warm CPU per request ≤ %.2f× jwt-rs256-warm's (a warm session costs no more than a warm JWT)", sessionCostMax),
			Value: fmt.Sprintf("%.3f×", s.CPURatio), Pass: s.CPURatio > 0 && s.CPURatio <= sessionCostMax,
			Detail: fmt.Sprintf("paired directly: %.1f vs %.1f µs CPU/req, %.0f vs %.0f req/s (session vs JWT)",
				float64(s.Throughput.CPUPerReq)/1e3, float64(s.Reference.CPUPerReq)/1e3, s.Throughput.RPS, s.Reference.RPS)})
	}
}
