package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

const ms = time.Millisecond

type step struct {
	at        time.Duration // since the test's start
	cost      int
	key       string // default "k"
	allowed   bool
	remaining int
	retry     time.Duration
	reset     time.Duration
}

// gcraCases are GCRA's semantics, checked against every implementation.
// The limit: 10 per second (T = 100ms), bursts of 5 (τ = 500ms).
var gcraLimit = ratelimit.Limit{Name: "t", Rate: 10, Period: time.Second, Burst: 5}

var gcraCases = []struct {
	name  string
	steps []step
}{
	{"burst, then refused until one interval has passed", []step{
		{at: 0, cost: 1, allowed: true, remaining: 4, reset: 100 * ms},
		{at: 0, cost: 1, allowed: true, remaining: 3, reset: 200 * ms},
		{at: 0, cost: 1, allowed: true, remaining: 2, reset: 300 * ms},
		{at: 0, cost: 1, allowed: true, remaining: 1, reset: 400 * ms},
		{at: 0, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 0, cost: 1, allowed: false, remaining: 0, retry: 100 * ms, reset: 500 * ms},
		{at: 50 * ms, cost: 1, allowed: false, remaining: 0, retry: 50 * ms, reset: 450 * ms},
		{at: 100 * ms, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
	}},
	{"steady rate at the emission interval is always admitted", []step{
		{at: 0, cost: 5, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 100 * ms, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 200 * ms, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 300 * ms, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 350 * ms, cost: 1, allowed: false, remaining: 0, retry: 50 * ms, reset: 450 * ms},
	}},
	{"cost above one", []step{
		{at: 0, cost: 3, allowed: true, remaining: 2, reset: 300 * ms},
		{at: 0, cost: 3, allowed: false, remaining: 2, retry: 100 * ms, reset: 300 * ms},
		{at: 0, cost: 2, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 150 * ms, cost: 2, allowed: false, remaining: 1, retry: 50 * ms, reset: 350 * ms},
		{at: 200 * ms, cost: 2, allowed: true, remaining: 0, reset: 500 * ms},
	}},
	{"a cost above the burst never fits; retry-after is a full reset", []step{
		{at: 0, cost: 2, allowed: true, remaining: 3, reset: 200 * ms},
		{at: 0, cost: 6, allowed: false, remaining: 3, retry: 700 * ms, reset: 200 * ms},
		{at: 10 * time.Second, cost: 6, allowed: false, remaining: 5, retry: 500 * ms, reset: 0},
		{at: 10 * time.Second, cost: 1 << 62, allowed: false, remaining: 5, retry: 500 * ms, reset: 0},
	}},
	{"a quiet key is fully replenished", []step{
		{at: 0, cost: 5, allowed: true, remaining: 0, reset: 500 * ms},
		{at: 0, cost: 1, allowed: false, remaining: 0, retry: 100 * ms, reset: 500 * ms},
		{at: 500 * ms, cost: 1, allowed: true, remaining: 4, reset: 100 * ms},
		{at: time.Hour, cost: 1, allowed: true, remaining: 4, reset: 100 * ms},
	}},
	{"keys are independent", []step{
		{at: 0, cost: 5, key: "a", allowed: true, remaining: 0, reset: 500 * ms},
		{at: 0, cost: 1, key: "a", allowed: false, remaining: 0, retry: 100 * ms, reset: 500 * ms},
		{at: 0, cost: 1, key: "b", allowed: true, remaining: 4, reset: 100 * ms},
	}},
	{"a denied request is not counted", []step{
		{at: 0, cost: 4, allowed: true, remaining: 1, reset: 400 * ms},
		{at: 0, cost: 3, allowed: false, remaining: 1, retry: 200 * ms, reset: 400 * ms},
		{at: 0, cost: 3, allowed: false, remaining: 1, retry: 200 * ms, reset: 400 * ms},
		{at: 0, cost: 1, allowed: true, remaining: 0, reset: 500 * ms},
	}},
}

// runGCRACases runs the table against limiters made by newLimiter (one
// fresh limiter per case).
func runGCRACases(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	for _, tc := range gcraCases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t)
			start := time.Now().Truncate(time.Second)
			out := make([]ratelimit.Decision, 1)
			for i, s := range tc.steps {
				key := s.key
				if key == "" {
					key = "k"
				}
				allowed, err := l.Allow(context.Background(), []string{key}, start.Add(s.at), s.cost, out)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want := ratelimit.Decision{Allowed: s.allowed, Remaining: s.remaining, RetryAfter: s.retry, ResetAfter: s.reset}
				if allowed != s.allowed || out[0] != want {
					t.Fatalf("step %d (at %v, cost %d): got %v %+v, want %+v", i, s.at, s.cost, allowed, out[0], want)
				}
			}
		})
	}
}

func TestGCRALocal(t *testing.T) {
	runGCRACases(t, func(t *testing.T) ratelimit.Limiter {
		l, err := ratelimit.NewLocal([]ratelimit.Limit{gcraLimit}, ratelimit.GCRAOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestGCRARedis(t *testing.T) {
	c := redistest.Client(t)
	n := 0
	runGCRACases(t, func(t *testing.T) ratelimit.Limiter {
		n++
		l, err := ratelimit.NewRedis(c, []ratelimit.Limit{gcraLimit}, ratelimit.RedisOptions{Namespace: fmt.Sprint("case", n)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// Two limits of one request are all or nothing: a request the second
// limit refuses is not counted by the first.
var multiLimits = []ratelimit.Limit{
	{Name: "shared", Rate: 3, Period: time.Second},
	{Name: "each", Rate: 1, Period: time.Second},
}

var multiSteps = []struct {
	keys    []string
	allowed bool
	first   ratelimit.Decision
}{
	{[]string{"k", "b1"}, true, ratelimit.Decision{Allowed: true, Remaining: 2, ResetAfter: 333333 * time.Microsecond}},
	{[]string{"k", "b1"}, false, ratelimit.Decision{Remaining: 1, ResetAfter: 666666 * time.Microsecond}},
	{[]string{"k", "b2"}, true, ratelimit.Decision{Allowed: true, Remaining: 1, ResetAfter: 666666 * time.Microsecond}},
	{[]string{"k", "b3"}, true, ratelimit.Decision{Allowed: true, Remaining: 0, ResetAfter: 999999 * time.Microsecond}},
	{[]string{"k", "b4"}, false, ratelimit.Decision{Remaining: 0, RetryAfter: 333333 * time.Microsecond, ResetAfter: 999999 * time.Microsecond}},
}

func runMulti(t *testing.T, l ratelimit.Limiter, exactMicros bool) {
	start := time.Now().Truncate(time.Second)
	out := make([]ratelimit.Decision, 2)
	for i, s := range multiSteps {
		allowed, err := l.Allow(context.Background(), s.keys, start, 1, out)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got := out[0]
		if !exactMicros {
			// In memory the interval is 333333333ns, in Redis 333333µs.
			got.ResetAfter = got.ResetAfter.Truncate(time.Microsecond)
			got.RetryAfter = got.RetryAfter.Truncate(time.Microsecond)
		}
		if allowed != s.allowed || got.Remaining != s.first.Remaining || got.Allowed != s.first.Allowed {
			t.Fatalf("step %d %v: got %v %+v, want %v %+v", i, s.keys, allowed, out[0], s.allowed, s.first)
		}
	}
}

func TestAllOrNothingLocal(t *testing.T) {
	l, err := ratelimit.NewLocal(multiLimits, ratelimit.GCRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runMulti(t, l, false)
}

func TestAllOrNothingRedis(t *testing.T) {
	l, err := ratelimit.NewRedis(redistest.Client(t), multiLimits, ratelimit.RedisOptions{Namespace: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	runMulti(t, l, true)
}

// Three replicas sharing one Redis admit what one limit admits.
func TestReplicasShareOneLimit(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	limit := ratelimit.Limit{Name: "shared", Rate: 500, Period: time.Second, Burst: 50}
	const replicas, duration = 3, time.Second
	// Real time, not a virtual clock: the keys' TTLs in Redis run in real
	// time, so on a slow machine a virtual second that lasts longer would
	// let keys expire and admit a fresh burst.
	start := time.Now()
	deadline := start.Add(duration)
	var admitted [replicas]int
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	for r := 0; r < replicas; r++ {
		l, err := ratelimit.NewRedis(redistest.ClientFor(t, cfg), []ratelimit.Limit{limit}, ratelimit.RedisOptions{Namespace: "replicas"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]ratelimit.Decision, 1)
			// Each replica offers requests as fast as one Redis round
			// trip allows (well over the limit) until the deadline.
			for now := time.Now(); now.Before(deadline); now = time.Now() {
				ok, err := l.Allow(context.Background(), []string{"consumer-1"}, now, 1, out)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					admitted[r]++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := admitted[0] + admitted[1] + admitted[2]
	want := limit.Burst + int(duration/limit.Interval())
	if lo, hi := want*95/100, want*105/100; total < lo || total > hi {
		t.Fatalf("three replicas admitted %d (%v), want %d ± 5%%", total, admitted, want)
	}
	for r, n := range admitted {
		if n == 0 {
			t.Fatalf("replica %d admitted nothing: %v", r, admitted)
		}
	}
}

func TestEvictionBoundsMemory(t *testing.T) {
	g, err := ratelimit.NewGCRA(ratelimit.Limit{Name: "t", Rate: 1, Period: time.Second}, ratelimit.GCRAOptions{MaxKeys: 64 * 10})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
	}
	for _, k := range keys[:10000] {
		if !g.Allow(k, start, 1).Allowed {
			t.Fatalf("first request of %s refused", k)
		}
	}
	if n := g.Len(); n > 640 || n < 320 {
		t.Fatalf("%d keys held with MaxKeys 640 and every key live", n)
	}
	// Replenished keys are dropped before live ones.
	later := start.Add(2 * time.Second)
	for _, k := range keys[10000:10100] {
		g.Allow(k, later, 1)
	}
	if n := g.Len(); n > 640 {
		t.Fatalf("%d keys held after a sweep", n)
	}
	if got := g.Sweep(start.Add(time.Hour)); got == 0 || g.Len() != 0 {
		t.Fatalf("Sweep dropped %d, %d keys left", got, g.Len())
	}
}

func TestRefund(t *testing.T) {
	g, err := ratelimit.NewGCRA(gcraLimit, ratelimit.GCRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g.Allow("k", now, 5)
	if g.Allow("k", now, 1).Allowed {
		t.Fatal("admitted past the burst")
	}
	g.Refund("k", now, 2)
	if d := g.Allow("k", now, 2); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after a refund of 2: %+v", d)
	}
	g.Refund("k", now, 5)
	if g.Len() != 0 {
		t.Fatal("a key refunded to replenishment is still held")
	}
}

func TestLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    ratelimit.Limit
		ok   bool
	}{
		{"valid", ratelimit.Limit{Name: "per-second", Rate: 10, Period: time.Second}, true},
		{"no rate", ratelimit.Limit{Name: "x", Period: time.Second}, false},
		{"no period", ratelimit.Limit{Name: "x", Rate: 1}, false},
		{"negative burst", ratelimit.Limit{Name: "x", Rate: 1, Period: time.Second, Burst: -1}, false},
		{"finer than a microsecond", ratelimit.Limit{Name: "x", Rate: 2_000_000, Period: time.Second}, false},
		{"longer than a year", ratelimit.Limit{Name: "x", Rate: 1, Period: 400 * 24 * time.Hour}, false},
		{"name with a quote", ratelimit.Limit{Name: `a"b`, Rate: 1, Period: time.Second}, false},
		{"empty name", ratelimit.Limit{Rate: 1, Period: time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.l.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDivide(t *testing.T) {
	l := ratelimit.Limit{Name: "x", Rate: 100, Period: time.Minute, Burst: 30}
	for _, tc := range []struct {
		n           int
		rate, burst int
	}{{0, 100, 30}, {1, 100, 30}, {3, 33, 10}, {1000, 1, 1}} {
		d := l.Divide(tc.n)
		if d.Rate != tc.rate || (tc.n > 1 && d.Burst != tc.burst) {
			t.Fatalf("Divide(%d) = %+v", tc.n, d)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	l, err := ratelimit.NewLocal(multiLimits, ratelimit.GCRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"consumer-1", "203.0.113.9"}
	out := make([]ratelimit.Decision, 2)
	now := time.Now()
	l.Allow(context.Background(), keys, now, 1, out)
	if n := testing.AllocsPerRun(100, func() { l.Allow(context.Background(), keys, now, 1, out) }); n != 0 {
		t.Fatalf("Local.Allow allocates %v times per decision", n)
	}
	c := ratelimit.NewConcurrency(4)
	if n := testing.AllocsPerRun(100, func() {
		if c.Acquire("route-a") {
			c.Release("route-a")
		}
	}); n != 0 {
		t.Fatalf("Concurrency allocates %v times per request", n)
	}
}
