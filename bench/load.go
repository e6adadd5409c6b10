package main

// The load generator is an in-process Go client rather than wrk: it needs
// nothing installed, speaks the same HTTP/1.1 stack as the servers, keeps
// every latency (exact percentiles, no histogram buckets), checks every
// response's status, can hand each request a different credential (the
// cold-token scenarios), and can run at a fixed request rate measuring from
// each request's intended start, which corrects for coordinated omission.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// credentials hands out the credential for each request.
type credentials interface {
	// next returns the header value for one request; ok is false when a
	// finite supply is used up, which ends the phase.
	next() (value string, ok bool)
}

// repeated sends the same credential every time (a warm cache).
type repeated string

func (r repeated) next() (string, bool) { return string(r), true }

// pool sends each of its credentials once, in order (a cold cache).
type pool struct {
	values []string
	i      atomic.Int64
}

func (p *pool) next() (string, bool) {
	i := p.i.Add(1) - 1
	if i >= int64(len(p.values)) {
		return "", false
	}
	return p.values[i], true
}

// cycle sends its credentials round and round (the soak's churning cache).
type cycle struct {
	values []string
	i      atomic.Uint64
}

func (c *cycle) next() (string, bool) {
	return c.values[(c.i.Add(1)-1)%uint64(len(c.values))], true
}

// headerSets hands out, for credentials carried in several headers (a
// DPoP-bound token and its proof), the values of each header for one
// request, in the order of the scenario's headers.
type headerSets interface {
	nextSet() (values []string, ok bool)
}

// repeatedSet sends the same header values every time.
type repeatedSet []string

func (r repeatedSet) nextSet() ([]string, bool) { return r, true }

// setPool sends each of its header sets once, in order (a fresh DPoP
// proof every request).
type setPool struct {
	values [][]string
	i      atomic.Int64
}

func (p *setPool) nextSet() ([]string, bool) {
	i := p.i.Add(1) - 1
	if i >= int64(len(p.values)) {
		return nil, false
	}
	return p.values[i], true
}

// target is where a phase sends its requests and how it authenticates.
type target struct {
	url    string
	header string // credential header; empty for none
	creds  credentials
	// headers and sets replace header and creds for credentials carried
	// in several headers; nil for every other scenario.
	headers []string
	sets    headerSets
	// fixed headers go with every request.
	fixed http.Header
}

// phase is the outcome of one load phase.
type phase struct {
	Requests int64
	Errors   int64
	FirstErr string
	Elapsed  time.Duration
	// Latencies of successful requests, sorted.
	lat []time.Duration
}

func (p *phase) rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Requests) / p.Elapsed.Seconds()
}

// quantile returns the q-quantile (nearest rank) of the latencies.
func (p *phase) quantile(q float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(p.lat)))) - 1
	return p.lat[max(0, min(i, len(p.lat)-1))]
}

// newClient is a client with conns keep-alive connections to one host.
func newClient(conns int) *http.Client { return newTLSClient(conns, nil, true) }

// newTLSClient is newClient speaking HTTPS with tc (nil: plain HTTP). With
// keepAlive false every request opens a connection of its own (a full TLS
// handshake each time: tc has no session cache). A custom TLS
// configuration keeps the client on HTTP/1.1, like the plain scenarios.
func newTLSClient(conns int, tc *tls.Config, keepAlive bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: 10 * time.Second,
	}
}

// do sends one request and reads the whole answer; it is an error unless
// the status is 200.
func do(ctx context.Context, c *http.Client, t *target) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return true, err
	}
	for k, v := range t.fixed {
		req.Header[k] = v
	}
	if t.creds != nil {
		v, ok := t.creds.next()
		if !ok {
			return false, nil
		}
		req.Header.Set(t.header, v)
	} else if t.sets != nil {
		vs, ok := t.sets.nextSet()
		if !ok {
			return false, nil
		}
		for i, h := range t.headers {
			req.Header.Set(h, vs[i])
		}
	}
	res, err := c.Do(req)
	if err != nil {
		return true, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		return true, err
	}
	if res.StatusCode != http.StatusOK {
		return true, fmt.Errorf("status %d", res.StatusCode)
	}
	return true, nil
}

// recorder gathers results from the workers of one phase.
type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	errors   int64
	firstErr string
}

func (r *recorder) add(lat []time.Duration, errs int64, first error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = append(r.lat, lat...)
	r.errors += errs
	if first != nil && r.firstErr == "" {
		r.firstErr = first.Error()
	}
}

func (r *recorder) phase(elapsed time.Duration) *phase {
	slices.Sort(r.lat)
	return &phase{Requests: int64(len(r.lat)) + r.errors, Errors: r.errors, FirstErr: r.firstErr, Elapsed: elapsed, lat: r.lat}
}

// closedLoop keeps conns requests in flight for d (or until the
// credentials run out): each connection sends its next request as soon as
// the previous one is answered. This measures throughput; its latencies
// are those of a saturated server. Requests in flight at the end are
// waited for, not cancelled, so connections stay open for the next phase
// (a cancelled request closes its connection, at every hop).
func closedLoop(ctx context.Context, c *http.Client, t *target, conns int, d time.Duration) *phase {
	var rec recorder
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	var last atomic.Int64 // when the last request finished, for an honest elapsed time
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var errs int64
			var first error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				more, err := do(ctx, c, t)
				if !more {
					break
				}
				end := time.Now()
				storeMax(&last, int64(end.Sub(start)))
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted: not the server's failure
					}
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, end.Sub(t0))
			}
			rec.add(lat, errs, first)
		})
	}
	wg.Wait()
	return rec.phase(time.Duration(last.Load()))
}

// fixedRate offers rate requests per second for d over at most conns
// connections, whether or not earlier requests were answered, and
// measures each latency from the moment its request was due. This is the
// latency a server adds below saturation.
func fixedRate(ctx context.Context, c *http.Client, t *target, conns int, rate float64, d time.Duration) *phase {
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(d / interval)
	var rec recorder
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(5 * time.Millisecond)
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, total/int64(conns)+16)
			var errs int64
			var first error
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				due := start.Add(time.Duration(i) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				more, err := do(ctx, c, t)
				if !more {
					break
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(due))
			}
			rec.add(lat, errs, first)
		})
	}
	wg.Wait()
	return rec.phase(time.Since(start))
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}
