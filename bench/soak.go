package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/jwt"
)

// soakResult is the memory soak: Gatehouse's heap under steady load.
type soakResult struct {
	Duration       string  `json:"duration"`
	WarmupDuration string  `json:"baseline_at"`
	Requests       int64   `json:"requests"`
	RPS            float64 `json:"rps"`
	// TokenPool distinct tokens are sent round and round, more than the
	// verified-token cache holds (CacheBound), so the cache is full and
	// evicting for the whole measured part.
	TokenPool           int      `json:"token_pool"`
	CacheBound          int      `json:"token_cache_bound"`
	CacheFullAtBaseline bool     `json:"token_cache_full_at_baseline"`
	Baseline            stats    `json:"baseline"` // after a GC, at the end of the warm-up
	End                 stats    `json:"end"`      // after a GC, just before the load stops
	Samples             []sample `json:"samples"`  // without GC, every 5 s
}

type sample struct {
	At         string `json:"at"`
	HeapInuse  uint64 `json:"heap_inuse"`
	Goroutines int    `json:"goroutines"`
}

// soak sends mixed traffic to Gatehouse for o.soak: a quarter of the
// connections each on the public route, the API key, cycling JWTs and the
// CEL policy. It records the heap in use after a GC once the warm-up is
// over and the token cache is full, and again just before the end.
func (b *bed) soak(ctx context.Context, o *options, log io.Writer) (*soakResult, error) {
	fmt.Fprintf(log, "bench: soak for %s\n", o.soak)
	poolSize := jwt.DefaultCacheSize + 2000
	toks, err := b.mint("es256", poolSize)
	if err != nil {
		return nil, err
	}
	for i := range toks {
		toks[i] = "Bearer " + toks[i]
	}
	tokens := &cycle{values: toks}
	celTok, err := b.mint("rs256", 1)
	if err != nil {
		return nil, err
	}
	g := b.gate
	base := "http://" + g.Addr
	targets := []*target{
		{url: base + "/public/x"},
		{url: base + "/apikey/x", header: "X-API-Key", creds: repeated(b.apiKey)},
		{url: base + "/jwt/x", header: "Authorization", creds: tokens},
		{url: base + "/policy/acme/orders", header: "Authorization", creds: repeated("Bearer " + celTok[0])},
	}
	conns := max(1, o.conns/len(targets))
	client := newClient(conns * len(targets))
	defer client.CloseIdleConnections()

	res := &soakResult{Duration: o.soak.String(), TokenPool: poolSize, CacheBound: jwt.DefaultCacheSize}
	start := time.Now()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		phases []*phase
	)
	for _, t := range targets {
		wg.Go(func() {
			p := closedLoop(ctx, client, t, conns, o.soak)
			mu.Lock()
			phases = append(phases, p)
			mu.Unlock()
		})
	}

	// Baseline: the warm-up is over and every token has been sent once.
	deadline := start.Add(o.soak - time.Second)
	for time.Since(start) < o.soakWarmup || (tokens.i.Load() < uint64(poolSize) && time.Now().Before(deadline.Add(-o.soak/4))) {
		time.Sleep(50 * time.Millisecond)
	}
	res.CacheFullAtBaseline = tokens.i.Load() >= uint64(poolSize)
	res.WarmupDuration = time.Since(start).Round(time.Second).String()
	if res.Baseline, err = g.stats(true); err != nil {
		return nil, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(min(5*time.Second, time.Until(deadline)))
		s, err := g.stats(false)
		if err != nil {
			return nil, err
		}
		res.Samples = append(res.Samples, sample{At: time.Since(start).Round(time.Second).String(), HeapInuse: s.HeapInuse, Goroutines: s.Goroutines})
	}
	if res.End, err = g.stats(true); err != nil {
		return nil, err
	}
	wg.Wait()
	var elapsed time.Duration
	for _, p := range phases {
		if p.Errors > 0 {
			return nil, fmt.Errorf("%d of %d requests failed, first: %s", p.Errors, p.Requests, p.FirstErr)
		}
		res.Requests += p.Requests
		elapsed = max(elapsed, p.Elapsed)
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	return res, ctx.Err()
}
