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
}

// latency is one fixed-rate phase.
type latency struct {
	Rate     float64       `json:"rate"`
	Requests int64         `json:"requests"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
}

// scenarioResult is a scenario's rounds and their medians.
type scenarioResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        kind   `json:"kind"`

	Rounds  []*measurement `json:"rounds"`
	Latency []*latency     `json:"latency_rounds"`

	// Medians over rounds.
	RPS          float64 `json:"rps"`
	Ratio        float64 `json:"ratio_to_bare_proxy"` // median of each round's ratio
	AllocsPerReq float64 `json:"allocs_per_request"`
	BytesPerReq  float64 `json:"bytes_per_request"`
	// Saturated (closed-loop) latency percentiles.
	SatP50  time.Duration `json:"saturated_p50_ns"`
	SatP99  time.Duration `json:"saturated_p99_ns"`
	SatP999 time.Duration `json:"saturated_p999_ns"`
	// Fixed-rate latency percentiles and the p99 added over the bare proxy.
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	P99Added time.Duration `json:"p99_added_ns"` // median of each round's difference
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

	byName map[string]*scenarioResult
}

func newResults(o *options, list []*scenario) *results {
	r := &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Settings: map[string]any{
			"connections": o.conns, "rounds": o.rounds, "warmup": o.warmup.String(),
			"throughput_phase": o.duration.String(), "latency_phase": o.latency.String(),
			"latency_rate_fraction_of_bare_proxy": o.rateFraction, "cold_tokens_per_phase": o.coldTokens,
			"soak": o.soak.String(), "soak_warmup": o.soakWarmup.String(),
		},
		byName: map[string]*scenarioResult{},
	}
	for _, s := range list {
		sr := &scenarioResult{Name: s.Name, Description: s.Description, Kind: s.Kind}
		r.Scenarios = append(r.Scenarios, sr)
		r.byName[s.Name] = sr
	}
	return r
}

func (r *results) add(name string, _ int, m *measurement) {
	r.byName[name].Rounds = append(r.byName[name].Rounds, m)
}

func (r *results) addLatency(name string, _ int, l *latency) {
	r.byName[name].Latency = append(r.byName[name].Latency, l)
}

// summarise takes the medians; ratios and added latency are computed per
// round (against the bare proxy of the same round) before the median.
func (r *results) summarise() {
	bare := r.byName["bare-proxy"]
	for _, s := range r.Scenarios {
		var rps, ratio, allocs, bytes []float64
		var s50, s99, s999, p50, p99, p999, added []time.Duration
		for i, m := range s.Rounds {
			rps = append(rps, m.RPS)
			ratio = append(ratio, m.RPS/bare.Rounds[i].RPS)
			allocs = append(allocs, m.AllocsPerReq)
			bytes = append(bytes, m.BytesPerReq)
			s50, s99, s999 = append(s50, m.P50), append(s99, m.P99), append(s999, m.P999)
		}
		for i, l := range s.Latency {
			p50, p99, p999 = append(p50, l.P50), append(p99, l.P99), append(p999, l.P999)
			added = append(added, l.P99-bare.Latency[i].P99)
		}
		s.RPS, s.Ratio, s.AllocsPerReq, s.BytesPerReq = median(rps), median(ratio), median(allocs), median(bytes)
		s.SatP50, s.SatP99, s.SatP999 = median(s50), median(s99), median(s999)
		s.P50, s.P99, s.P999, s.P99Added = median(p50), median(p99), median(p999), median(added)
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
	for _, s := range r.Scenarios {
		if s.Kind == kindReference {
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
	fmt.Fprintf(&b, "%v connections, %v rounds (medians), throughput phases of %v, latency phases of %v at %.0f%% of the bare proxy's throughput.\n\n",
		r.Settings["connections"], r.Settings["rounds"], r.Settings["throughput_phase"], r.Settings["latency_phase"], 100*r.Settings["latency_rate_fraction_of_bare_proxy"].(float64))
	b.WriteString("| scenario | req/s | × bare proxy | p50 | p99 | p99.9 | p99 added | saturated p99 | allocs/req | B/req |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Scenarios {
		added := "—"
		if s.Kind != kindReference {
			added = fmtMS(s.P99Added)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %s | %s | %s | %s | %s | %.1f | %.0f |\n",
			s.Name, s.RPS, s.Ratio, fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), added, fmtMS(s.SatP99), s.AllocsPerReq, s.BytesPerReq)
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
