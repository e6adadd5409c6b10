package main

// Every scenario is measured side by side with the bare proxy: the two
// take turns in short slices, in the order B X X B B X X B ..., so that
// whatever the machine does meanwhile (other tenants of a virtual machine,
// frequency changes, a noisy neighbour) falls on both sides alike, and a
// slow drift cancels out. A ratio is taken only between the two sides of
// one such pairing.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// warmTokens is how many cold tokens a warm-up may use.
const warmTokens = 3000

// side is one half of a pairing: where its requests go and what they cost.
type side struct {
	srv    *child
	target *target
	client *http.Client
	phases []*phase
	allocs uint64
	bytes  uint64
	cpu    time.Duration // of the server process
	// upConns counts connections the upstream accepted during the side's
	// slices: a proxy that does not reuse its upstream connections shows
	// here.
	upConns int64
}

// exhausted reports whether the side's finite credentials are used up.
func (s *side) exhausted() bool {
	if p, ok := s.target.creds.(*pool); ok {
		return p.i.Load() >= int64(len(p.values))
	}
	p, ok := s.target.sets.(*setPool)
	return ok && p.i.Load() >= int64(len(p.values))
}

// merged is the side's slices as one phase.
func (s *side) merged() *phase {
	m := &phase{}
	for _, p := range s.phases {
		m.Requests += p.Requests
		m.Errors += p.Errors
		m.Elapsed += p.Elapsed
		m.lat = append(m.lat, p.lat...)
		if m.FirstErr == "" {
			m.FirstErr = p.FirstErr
		}
	}
	slices.Sort(m.lat)
	return m
}

func (s *side) measurement() (*measurement, error) {
	p := s.merged()
	if p.Errors > 0 {
		return nil, fmt.Errorf("%d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
	}
	if p.Requests == 0 {
		return nil, fmt.Errorf("no request completed")
	}
	return &measurement{
		Requests: p.Requests, Seconds: p.Elapsed.Seconds(), RPS: p.rate(),
		P50: p.quantile(0.50), P99: p.quantile(0.99), P999: p.quantile(0.999),
		AllocsPerReq:  float64(s.allocs) / float64(p.Requests),
		BytesPerReq:   float64(s.bytes) / float64(p.Requests),
		CPUPerReq:     s.cpu / time.Duration(p.Requests),
		UpstreamConns: s.upConns,
	}, nil
}

func (s *side) latency(rate float64) (*latency, error) {
	p := s.merged()
	if p.Errors > 0 {
		return nil, fmt.Errorf("%d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
	}
	if p.Requests == 0 {
		return nil, fmt.Errorf("no request completed")
	}
	return &latency{Rate: rate, Requests: p.Requests, P50: p.quantile(0.50), P99: p.quantile(0.99), P999: p.quantile(0.999)}, nil
}

// turns is the order of a pairing's slices: B X X B B X X B ...
func turns(n int) []bool {
	out := make([]bool, 0, 2*n)
	for i := range n {
		x := i%2 == 0
		out = append(out, !x, x)
	}
	return out
}

// targetFor builds a target for s with credentials for up to n requests.
func (b *bed) targetFor(s *scenario, n int) (*target, error) {
	t := &target{url: b.url(s), header: s.header, fixed: s.fixed}
	if s.credential != nil {
		cr, err := s.credential(n)
		if err != nil {
			return nil, err
		}
		t.creds = cr
	}
	if s.headerSets != nil {
		hs, err := s.headerSets(n)
		if err != nil {
			return nil, err
		}
		t.headers, t.sets = s.headers, hs
	}
	return t, nil
}

// newSide prepares a side: its target with credentials for n requests, and
// a client whose connections stay open across the side's slices.
func (b *bed) newSide(s *scenario, n, conns int) (*side, error) {
	t, err := b.targetFor(s, n)
	if err != nil {
		return nil, err
	}
	return &side{srv: b.server(s), target: t, client: b.client(s, conns)}, nil
}

// referenceSide is the bare proxy's side of a pairing with x. It sends
// the same requests as x, credential included (one of x's, repeated: the
// bare proxy does not look at it), so that both proxies parse and forward
// the same bytes.
func (b *bed) referenceSide(x, bare *scenario, conns int) (*side, error) {
	s, err := b.newSide(bare, 0, conns)
	if err != nil {
		return nil, err
	}
	s.target.fixed = x.fixed
	if x.headerSets != nil {
		hs, err := x.headerSets(1)
		if err != nil {
			return nil, err
		}
		v, _ := hs.nextSet()
		s.target.headers, s.target.sets = x.headers, repeatedSet(v)
		return s, nil
	}
	if x.credential == nil {
		return s, nil
	}
	cr, err := x.credential(1)
	if err != nil {
		return nil, err
	}
	v, _ := cr.next()
	s.target.header, s.target.creds = x.header, repeated(v)
	return s, nil
}

// measureAll calibrates the fixed rate on the bare proxy, then measures
// every other scenario paired with it.
func (b *bed) measureAll(ctx context.Context, o *options, list []*scenario, res *results, log io.Writer) error {
	var bare *scenario
	for _, s := range list {
		if s.Name == "bare-proxy" {
			bare = s
		}
	}
	cal, err := b.newSide(bare, 0, o.conns)
	if err != nil {
		return err
	}
	closedLoop(ctx, cal.client, cal.target, o.conns, o.warmup)
	p := closedLoop(ctx, cal.client, cal.target, o.conns, 2*time.Second)
	cal.client.CloseIdleConnections()
	if p.Errors > 0 || p.Requests == 0 {
		return fmt.Errorf("calibration on the bare proxy: %d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
	}
	rate := p.rate() * o.rateFraction
	res.Settings["latency_rate"] = rate
	fmt.Fprintf(log, "bench: bare proxy calibrated at %.0f req/s; latency phases at %.0f req/s\n", p.rate(), rate)

	byName := map[string]*scenario{}
	for _, s := range list {
		byName[s.Name] = s
	}
	var bareSides, bareLatency []*side
	for _, s := range list {
		if s == bare {
			continue
		}
		ref := bare
		if s.pairWith != "" {
			if ref = byName[s.pairWith]; ref == nil {
				return fmt.Errorf("%s: paired with %s, which is not selected", s.Name, s.pairWith)
			}
		}
		tx, tb, err := b.pairedThroughput(ctx, o, s, ref)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		lx, lb, err := b.pairedLatency(ctx, o, s, ref, rate)
		if err != nil {
			return fmt.Errorf("%s (latency): %w", s.Name, err)
		}
		if ref == bare {
			bareSides, bareLatency = append(bareSides, tb), append(bareLatency, lb)
		}
		sr, err := newScenarioResult(s, tx, tb, lx, lb, rate)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if ref != bare {
			sr.PairedWith = ref.Name
		}
		res.Scenarios = append(res.Scenarios, sr)
		fmt.Fprintf(log, "bench:   %-18s %8.0f req/s  %.2f× %s  p99 %s (%+.2f ms)  %.1f allocs/req  %.1f µs CPU/req (%s %.1f, %.2f×)  %d upstream conns\n",
			s.Name, sr.RPS, sr.Ratio, ref.Name, fmtMS(sr.P99), float64(sr.P99Added)/1e6, sr.AllocsPerReq,
			float64(sr.Throughput.CPUPerReq)/1e3, ref.Name, float64(sr.Reference.CPUPerReq)/1e3, sr.CPURatio, sr.Throughput.UpstreamConns)
	}
	// The bare proxy's own row: every slice it ran, beside every scenario.
	tb, lb := &side{}, &side{}
	for i := range bareSides {
		bs := bareSides[i]
		tb.phases, tb.allocs, tb.bytes = append(tb.phases, bs.phases...), tb.allocs+bs.allocs, tb.bytes+bs.bytes
		tb.cpu, tb.upConns = tb.cpu+bs.cpu, tb.upConns+bs.upConns
		lb.phases = append(lb.phases, bareLatency[i].phases...)
	}
	sr, err := newScenarioResult(bare, tb, tb, lb, lb, rate)
	if err != nil {
		return fmt.Errorf("bare-proxy: %w", err)
	}
	res.Scenarios = slices.Insert(res.Scenarios, min(1, len(res.Scenarios)), sr)
	return nil
}

// pair prepares both sides of a pairing of x with ref (the bare proxy, or
// the scenario x is paired with), credentials for n requests on x's side,
// and warms each side up (x's with credentials of its own, so a cold
// scenario's measured tokens stay unseen).
func (b *bed) pair(x, ref *scenario, n, conns int, warmUp func(*http.Client, *target) *phase) (sx, sb *side, err error) {
	if sx, err = b.newSide(x, n, conns); err != nil {
		return nil, nil, err
	}
	if ref.Kind == kindReference {
		sb, err = b.referenceSide(x, ref, conns)
	} else {
		// Another Gatehouse scenario: its own requests and credential.
		sb, err = b.newSide(ref, n, conns)
	}
	if err != nil {
		return nil, nil, err
	}
	warm, err := b.targetFor(x, warmTokens)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range []struct {
		s *side
		t *target
	}{{sx, warm}, {sb, sb.target}} {
		if p := warmUp(w.s.client, w.t); p.Errors > 0 {
			sx.client.CloseIdleConnections()
			sb.client.CloseIdleConnections()
			return nil, nil, fmt.Errorf("warm-up: %d errors, first: %s", p.Errors, p.FirstErr)
		}
	}
	return sx, sb, nil
}

// pairedThroughput measures x and its reference (bare: the bare proxy,
// or the scenario x is paired with) closed-loop, in turns.
func (b *bed) pairedThroughput(ctx context.Context, o *options, x, bare *scenario) (sx, sb *side, err error) {
	warmUp := func(c *http.Client, t *target) *phase { return closedLoop(ctx, c, t, o.conns, o.warmup) }
	if sx, sb, err = b.pair(x, bare, o.coldTokens, o.conns, warmUp); err != nil {
		return nil, nil, err
	}
	defer sx.client.CloseIdleConnections()
	defer sb.client.CloseIdleConnections()
	slice := o.duration / time.Duration(o.slices)
	var stopProfiles []func() error
	if o.cpuProfile == x.Name {
		// Both servers, for the whole pairing: each is busy only in its turns.
		stopProfiles = append(stopProfiles, sx.srv.profile(2*o.duration, x.Name+".cpu.pprof"),
			sb.srv.profile(2*o.duration, bare.Name+".cpu.pprof"))
	}
	for _, isX := range turns(o.slices) {
		s := sb
		if isX {
			s = sx
		}
		before, err := s.srv.stats(false)
		if err != nil {
			return nil, nil, err
		}
		upBefore, err := b.upstream.stats(false)
		if err != nil {
			return nil, nil, err
		}
		p := closedLoop(ctx, s.client, s.target, o.conns, slice)
		after, err := s.srv.stats(false)
		if err != nil {
			return nil, nil, err
		}
		upAfter, err := b.upstream.stats(false)
		if err != nil {
			return nil, nil, err
		}
		s.phases = append(s.phases, p)
		s.allocs += after.Mallocs - before.Mallocs
		s.bytes += after.TotalAlloc - before.TotalAlloc
		s.cpu += after.CPU - before.CPU
		s.upConns += upAfter.Conns - upBefore.Conns
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if sx.exhausted() {
			break // the cold tokens ran out: both sides have had their turns so far
		}
	}
	for _, stop := range stopProfiles {
		if err := stop(); err != nil {
			return nil, nil, fmt.Errorf("profile: %w", err)
		}
	}
	return sx, sb, nil
}

// pairedLatency measures x and its reference at the same fixed rate, in
// turns.
func (b *bed) pairedLatency(ctx context.Context, o *options, x, bare *scenario, rate float64) (sx, sb *side, err error) {
	n := int(rate*o.latency.Seconds()) + 100
	warmFor := min(o.warmup, time.Duration(float64(warmTokens)/rate*float64(time.Second)))
	// The warm-up opens the connections, at the same rate.
	warmUp := func(c *http.Client, t *target) *phase { return fixedRate(ctx, c, t, o.conns, rate, warmFor) }
	if sx, sb, err = b.pair(x, bare, n, o.conns, warmUp); err != nil {
		return nil, nil, err
	}
	defer sx.client.CloseIdleConnections()
	defer sb.client.CloseIdleConnections()
	slice := o.latency / time.Duration(o.slices)
	for _, isX := range turns(o.slices) {
		s := sb
		if isX {
			s = sx
		}
		s.phases = append(s.phases, fixedRate(ctx, s.client, s.target, o.conns, rate, slice))
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	return sx, sb, nil
}
