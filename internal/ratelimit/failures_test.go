package ratelimit_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

type failStep struct {
	at      time.Duration
	op      string // "fail", "blocked", "reset"
	key     string
	blocked bool // fail: lockedNow; blocked: blocked
}

var failPolicy = ratelimit.FailurePolicy{Threshold: 3, Window: time.Minute, Lockout: 10 * time.Minute}

var failCases = []struct {
	name  string
	steps []failStep
}{
	{"threshold locks out once", []failStep{
		{op: "fail", key: "ip"}, {op: "blocked", key: "ip"},
		{op: "fail", key: "ip"}, {op: "blocked", key: "ip"},
		{op: "fail", key: "ip", blocked: true}, {op: "blocked", key: "ip", blocked: true},
		{op: "fail", key: "ip"}, // already locked: not a new lockout
		{op: "blocked", key: "ip", blocked: true},
	}},
	{"keys are independent", []failStep{
		{op: "fail", key: "a"}, {op: "fail", key: "a"}, {op: "fail", key: "a", blocked: true},
		{op: "blocked", key: "b"}, {op: "fail", key: "b"}, {op: "blocked", key: "a", blocked: true},
	}},
	{"a success resets the count, not a lockout", []failStep{
		{op: "fail", key: "k"}, {op: "fail", key: "k"}, {op: "reset", key: "k"},
		{op: "fail", key: "k"}, {op: "fail", key: "k"}, {op: "blocked", key: "k"},
		{op: "fail", key: "k", blocked: true}, {op: "reset", key: "k"}, {op: "blocked", key: "k", blocked: true},
	}},
}

func runFailCases(t *testing.T, newCounter func(t *testing.T) ratelimit.FailureCounter) {
	for _, tc := range failCases {
		t.Run(tc.name, func(t *testing.T) {
			fc := newCounter(t)
			start := time.Now()
			ctx := context.Background()
			for i, s := range tc.steps {
				now := start.Add(s.at)
				switch s.op {
				case "fail":
					locked, retry, err := fc.Fail(ctx, s.key, now)
					if err != nil || locked != s.blocked || (locked && retry != failPolicy.Lockout) {
						t.Fatalf("step %d fail(%s) = %v, %v, %v; want lockedNow %v", i, s.key, locked, retry, err, s.blocked)
					}
				case "blocked":
					blocked, retry, err := fc.Blocked(ctx, s.key, now)
					if err != nil || blocked != s.blocked || (blocked && (retry <= 0 || retry > failPolicy.Lockout)) {
						t.Fatalf("step %d blocked(%s) = %v, %v, %v; want %v", i, s.key, blocked, retry, err, s.blocked)
					}
				case "reset":
					if err := fc.Reset(ctx, s.key); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func TestFailuresLocal(t *testing.T) {
	runFailCases(t, func(t *testing.T) ratelimit.FailureCounter {
		f, err := ratelimit.NewLocalFailures(failPolicy, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestFailuresRedis(t *testing.T) {
	c := redistest.Client(t)
	n := 0
	runFailCases(t, func(t *testing.T) ratelimit.FailureCounter {
		n++
		f, err := ratelimit.NewRedisFailures(c, failPolicy, fmt.Sprint("case", n))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestFailuresLocalWindowAndLockoutEnd(t *testing.T) {
	f, err := ratelimit.NewLocalFailures(failPolicy, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	f.Fail(ctx, "k", start)
	f.Fail(ctx, "k", start)
	// The window ended: the count starts again.
	if locked, _, _ := f.Fail(ctx, "k", start.Add(2*time.Minute)); locked {
		t.Fatal("failures of an ended window counted")
	}
	f.Fail(ctx, "k", start.Add(2*time.Minute))
	if locked, _, _ := f.Fail(ctx, "k", start.Add(2*time.Minute)); !locked {
		t.Fatal("no lockout at the threshold")
	}
	if blocked, _, _ := f.Blocked(ctx, "k", start.Add(2*time.Minute+failPolicy.Lockout)); blocked {
		t.Fatal("still blocked after the lockout")
	}
}

func TestFailuresRedisLockoutExpires(t *testing.T) {
	p := ratelimit.FailurePolicy{Threshold: 1, Window: time.Minute, Lockout: 100 * time.Millisecond}
	f, err := ratelimit.NewRedisFailures(redistest.Client(t), p, "expiry")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if locked, _, err := f.Fail(ctx, "k", time.Now()); !locked || err != nil {
		t.Fatalf("Fail = %v, %v", locked, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		blocked, _, err := f.Blocked(ctx, "k", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lockout never ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A table flooded with keys stays bounded but never forgets a lockout.
func TestFailuresLocalBounded(t *testing.T) {
	f, err := ratelimit.NewLocalFailures(ratelimit.FailurePolicy{Threshold: 2, Window: time.Minute, Lockout: time.Hour}, 64*4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	f.Fail(ctx, "attacker", now)
	f.Fail(ctx, "attacker", now)
	for i := 0; i < 10000; i++ {
		f.Fail(ctx, fmt.Sprint("flood-", i), now)
	}
	if n := f.Len(); n > 64*4+1 {
		t.Fatalf("%d keys held, bound 256", n)
	}
	if blocked, _, _ := f.Blocked(ctx, "attacker", now); !blocked {
		t.Fatal("a flood of keys freed a locked-out key")
	}
}

func TestConcurrency(t *testing.T) {
	c := ratelimit.NewConcurrency(2)
	for i, tc := range []struct {
		op   string
		key  string
		want bool
	}{
		{"acquire", "a", true}, {"acquire", "a", true}, {"acquire", "a", false},
		{"acquire", "b", true}, {"release", "a", true}, {"acquire", "a", true}, {"acquire", "a", false},
	} {
		switch tc.op {
		case "acquire":
			if got := c.Acquire(tc.key); got != tc.want {
				t.Fatalf("step %d: Acquire(%s) = %v", i, tc.key, got)
			}
		case "release":
			c.Release(tc.key)
		}
	}
	c.Release("a")
	c.Release("a")
	c.Release("b")
	if c.Keys() != 0 || c.InFlight("a") != 0 {
		t.Fatalf("%d keys held after every release", c.Keys())
	}
}

func TestConcurrencyUnderLoad(t *testing.T) {
	c := ratelimit.NewConcurrency(3)
	done := make(chan bool)
	var peak, in int64
	var mu = make(chan struct{}, 1)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 500; i++ {
				if c.Acquire("route") {
					mu <- struct{}{}
					in++
					peak = max(peak, in)
					<-mu
					mu <- struct{}{}
					in--
					<-mu
					c.Release("route")
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	if peak > 3 || c.Keys() != 0 {
		t.Fatalf("peak %d in flight with a bound of 3; %d keys left", peak, c.Keys())
	}
}

func TestConcurrencyIdleKeysBounded(t *testing.T) {
	c := ratelimit.NewConcurrency(1)
	for i := 0; i < 10000; i++ {
		k := fmt.Sprint("route-", i)
		if !c.Acquire(k) {
			t.Fatalf("Acquire(%s) refused", k)
		}
		c.Release(k)
	}
	if n := c.Held(); n > 64*64 {
		t.Fatalf("%d idle slots held", n)
	}
	if c.Keys() != 0 {
		t.Fatalf("%d keys in flight", c.Keys())
	}
}

// With Redis down, failures are counted and locked out locally: the
// protection never switches off.
func TestFallbackFailuresRedisDown(t *testing.T) {
	cfg := config.DefaultRedis()
	cfg.Addresses = []string{closedAddr(t)}
	shared, err := ratelimit.NewRedisFailures(redistest.ClientFor(t, cfg), failPolicy, "down")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ratelimit.NewFallbackFailures(shared, failPolicy, 0)
	if err != nil {
		t.Fatal(err)
	}
	runFailCases(t, func(t *testing.T) ratelimit.FailureCounter {
		f, err := ratelimit.NewFallbackFailures(shared, failPolicy, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
	ctx := context.Background()
	if _, _, err := f.Blocked(ctx, "k", time.Now()); err != nil || f.Degraded() != 1 {
		t.Fatalf("Blocked with Redis down: %v, degraded %d", err, f.Degraded())
	}
}

func TestFallbackFailuresRedisUp(t *testing.T) {
	shared, err := ratelimit.NewRedisFailures(redistest.Client(t), failPolicy, "up")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ratelimit.NewFallbackFailures(shared, failPolicy, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		f.Fail(ctx, "k", time.Now())
	}
	// The lockout is in Redis, where every replica sees it.
	if blocked, _, err := shared.Blocked(ctx, "k", time.Now()); !blocked || err != nil || f.Degraded() != 0 {
		t.Fatalf("shared counter: blocked %v, %v; degraded %d", blocked, err, f.Degraded())
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
