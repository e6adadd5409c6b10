// Command bench is Gatehouse's load-test harness. It prices what
// authentication costs by measuring, in one run and on one machine, the
// same trivial upstream reached directly, through a bare
// httputil.ReverseProxy, and through Gatehouse with each kind of
// credential; then it checks the performance budget in BENCHMARKS.md.
//
//	go run ./bench                 # the full run (about 6 minutes)
//	go run ./bench -quick          # a quick look (about 1 minute)
//
// Everything listens on 127.0.0.1, every phase is bounded in time (and the
// cold phases in requests), and every server process exits when the
// harness does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// options are the harness's knobs; the defaults are the documented run.
type options struct {
	conns        int
	rounds       int
	warmup       time.Duration
	duration     time.Duration // closed-loop throughput phase
	latency      time.Duration // fixed-rate latency phase
	rateFraction float64       // of the bare proxy's throughput
	coldTokens   int           // most tokens a cold throughput phase may use
	soak         time.Duration
	soakWarmup   time.Duration
	only         string
	jsonPath     string
	cpuProfile   string
	check        bool
	keep         bool
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runChild(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.conns, "conns", 64, "concurrent connections of the load generator")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each scenario's result is the median over rounds")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each phase")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "closed-loop (throughput) phase per scenario and round")
	fs.DurationVar(&o.latency, "latency", 3*time.Second, "fixed-rate (latency) phase per scenario and round")
	fs.Float64Var(&o.rateFraction, "rate", 0.25, "fixed rate of the latency phase, as a fraction of the bare proxy's throughput in the same round")
	fs.IntVar(&o.coldTokens, "cold-tokens", 30000, "distinct tokens minted for each cold throughput phase (the phase ends when they run out)")
	fs.DurationVar(&o.soak, "soak", 60*time.Second, "memory soak of Gatehouse after the rounds; 0 skips it")
	fs.DurationVar(&o.soakWarmup, "soak-warmup", 15*time.Second, "part of the soak before the baseline heap is taken")
	fs.StringVar(&o.only, "only", "", "comma-separated scenario names to run (direct and bare-proxy always run)")
	fs.StringVar(&o.jsonPath, "json", "bench-results.json", "where to write the results as JSON")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "scenario whose throughput phase (in the first round) is CPU-profiled in Gatehouse; written to <scenario>.cpu.pprof")
	fs.BoolVar(&o.check, "check", true, "exit with status 1 when the budget is not met")
	fs.BoolVar(&o.keep, "keep", false, "keep the run directory (configuration, access and audit logs)")
	quick := fs.Bool("quick", false, "a quick look: 1 round, 1 s phases, 10 s soak")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		// Only what was not given explicitly.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, value := range map[string]string{"rounds": "1", "duration": "1s", "latency": "1s", "soak": "10s", "soak-warmup": "4s", "cold-tokens": "10000"} {
			if !set[name] {
				_ = fs.Set(name, value)
			}
		}
	}
	switch {
	case o.conns < 1 || o.conns > 1024:
		return nil, fmt.Errorf("-conns must be 1..1024")
	case o.rounds < 1 || o.rounds > 20:
		return nil, fmt.Errorf("-rounds must be 1..20")
	case o.duration <= 0 || o.duration > 5*time.Minute || o.latency <= 0 || o.latency > 5*time.Minute:
		return nil, fmt.Errorf("-duration and -latency must be in (0, 5m]")
	case o.rateFraction <= 0 || o.rateFraction > 1:
		return nil, fmt.Errorf("-rate must be in (0, 1]")
	case o.coldTokens < 100 || o.coldTokens > 1_000_000:
		return nil, fmt.Errorf("-cold-tokens must be 100..1000000")
	case o.soak < 0 || o.soak > 10*time.Minute || (o.soak > 0 && o.soakWarmup >= o.soak):
		return nil, fmt.Errorf("-soak must be at most 10m and longer than -soak-warmup")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := measure(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, res.markdown())
	data, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		err = os.WriteFile(o.jsonPath, append(data, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: writing %s: %v\n", o.jsonPath, err)
		return 1
	}
	fmt.Fprintf(stdout, "\nResults written to %s.\n", o.jsonPath)
	if o.check && !res.budgetMet() {
		return 1
	}
	return 0
}

// measure runs the rounds and the soak.
func measure(ctx context.Context, o *options, log io.Writer) (*results, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(log, "bench: run directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b, err := startBed(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer b.stop()

	list, err := selectScenarios(b.scenarios(), o.only)
	if err != nil {
		return nil, err
	}
	if err := b.selfCheck(ctx, list); err != nil {
		return nil, fmt.Errorf("self-check: %w", err)
	}
	res := newResults(o, list)
	for round := range o.rounds {
		if err := b.round(ctx, o, list, res, round, log); err != nil {
			return nil, err
		}
	}
	res.summarise()
	if o.soak > 0 {
		s, err := b.soak(ctx, o, log)
		if err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		res.Soak = s
	}
	res.evaluateBudget()
	return res, nil
}

func selectScenarios(all []*scenario, only string) ([]*scenario, error) {
	if only == "" {
		return all, nil
	}
	want := map[string]bool{"direct": true, "bare-proxy": true}
	for n := range strings.SplitSeq(only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []*scenario
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var names []string
		for _, s := range all {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("-only: unknown scenario (known: %s)", strings.Join(names, ", "))
	}
	return out, nil
}

// round measures every scenario once: first the throughput of each, then,
// at a rate derived from the bare proxy's throughput, the latency of each.
func (b *bed) round(ctx context.Context, o *options, list []*scenario, res *results, round int, log io.Writer) error {
	fmt.Fprintf(log, "bench: round %d/%d: throughput\n", round+1, o.rounds)
	var bareRate float64
	for _, s := range list {
		m, err := b.throughput(ctx, o, s, round == 0 && o.cpuProfile == s.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		res.add(s.Name, round, m)
		fmt.Fprintf(log, "bench:   %-18s %9.0f req/s  p99 %s  %.1f allocs/req\n", s.Name, m.RPS, fmtMS(m.P99), m.AllocsPerReq)
		if s.Name == "bare-proxy" {
			bareRate = m.RPS
		}
	}
	if bareRate == 0 {
		return fmt.Errorf("the bare proxy served nothing")
	}
	rate := bareRate * o.rateFraction
	fmt.Fprintf(log, "bench: round %d/%d: latency at %.0f req/s\n", round+1, o.rounds, rate)
	for _, s := range list {
		lm, err := b.latencyAt(ctx, o, s, rate)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		res.addLatency(s.Name, round, lm)
		fmt.Fprintf(log, "bench:   %-18s p50 %s  p99 %s  p99.9 %s\n", s.Name, fmtMS(lm.P50), fmtMS(lm.P99), fmtMS(lm.P999))
	}
	return nil
}

// targetFor builds the phase's target with credentials for up to n requests.
func (b *bed) targetFor(s *scenario, n int) (*target, error) {
	t := &target{url: b.url(s), header: s.header}
	if s.credential != nil {
		cr, err := s.credential(n)
		if err != nil {
			return nil, err
		}
		t.creds = cr
	}
	return t, nil
}

// warmTokens is how many cold tokens a warm-up may use.
const warmTokens = 3000

// throughput warms a scenario up, then measures it closed-loop.
func (b *bed) throughput(ctx context.Context, o *options, s *scenario, profile bool) (*measurement, error) {
	warm, err := b.targetFor(s, warmTokens)
	if err != nil {
		return nil, err
	}
	main, err := b.targetFor(s, o.coldTokens)
	if err != nil {
		return nil, err
	}
	client := newClient(o.conns)
	defer client.CloseIdleConnections()
	if p := closedLoop(ctx, client, warm, o.conns, o.warmup); p.Errors > 0 {
		return nil, fmt.Errorf("warm-up: %d errors, first: %s", p.Errors, p.FirstErr)
	}
	srv := b.server(s)
	before, err := srv.stats(false)
	if err != nil {
		return nil, err
	}
	var stopProfile func() error
	if profile {
		stopProfile = srv.profile(o.duration, s.Name+".cpu.pprof")
	}
	p := closedLoop(ctx, client, main, o.conns, o.duration)
	after, err := srv.stats(false)
	if err != nil {
		return nil, err
	}
	if stopProfile != nil {
		if err := stopProfile(); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Errors > 0 {
		return nil, fmt.Errorf("%d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
	}
	if p.Requests == 0 {
		return nil, fmt.Errorf("no request completed")
	}
	m := &measurement{
		Requests: p.Requests, Seconds: p.Elapsed.Seconds(), RPS: p.rate(),
		P50: p.quantile(0.50), P99: p.quantile(0.99), P999: p.quantile(0.999),
		AllocsPerReq: float64(after.Mallocs-before.Mallocs) / float64(p.Requests),
		BytesPerReq:  float64(after.TotalAlloc-before.TotalAlloc) / float64(p.Requests),
	}
	return m, nil
}

// latencyAt measures a scenario at a fixed request rate.
func (b *bed) latencyAt(ctx context.Context, o *options, s *scenario, rate float64) (*latency, error) {
	n := int(rate*o.latency.Seconds()) + 100
	warm, err := b.targetFor(s, min(warmTokens, n))
	if err != nil {
		return nil, err
	}
	main, err := b.targetFor(s, n)
	if err != nil {
		return nil, err
	}
	client := newClient(o.conns)
	defer client.CloseIdleConnections()
	// The warm-up opens the connections, at the same rate.
	if p := fixedRate(ctx, client, warm, o.conns, rate, min(o.warmup, time.Duration(float64(warmTokens)/rate*float64(time.Second)))); p.Errors > 0 {
		return nil, fmt.Errorf("warm-up: %d errors, first: %s", p.Errors, p.FirstErr)
	}
	p := fixedRate(ctx, client, main, o.conns, rate, o.latency)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Errors > 0 {
		return nil, fmt.Errorf("%d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
	}
	return &latency{Rate: rate, Requests: p.Requests, P50: p.quantile(0.50), P99: p.quantile(0.99), P999: p.quantile(0.999)}, nil
}

// profile starts a CPU profile of the child for d and returns a function
// that waits for it and writes it to path.
func (c *child) profile(d time.Duration, path string) func() error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			secs := max(1, int(d.Round(time.Second)/time.Second))
			res, err := newClient(1).Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.Control, secs))
			if err != nil {
				return err
			}
			defer res.Body.Close()
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, res.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return func() error {
		err := <-done
		if err == nil {
			abs, _ := filepath.Abs(path)
			fmt.Fprintf(os.Stderr, "bench: CPU profile written to %s (go tool pprof -top %s)\n", abs, path)
		}
		return err
	}
}

// median of a non-empty list.
func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// machine describes where the numbers come from.
func machine() map[string]string {
	m := map[string]string{
		"go":         runtime.Version(),
		"os_arch":    runtime.GOOS + "/" + runtime.GOARCH,
		"cpus":       fmt.Sprint(runtime.NumCPU()),
		"gomaxprocs": fmt.Sprint(runtime.GOMAXPROCS(0)),
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
