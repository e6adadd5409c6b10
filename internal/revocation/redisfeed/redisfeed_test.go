package redisfeed_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/revocation/redisfeed"
)

var quiet = slog.New(slog.DiscardHandler)

// env is one PostgreSQL store opened without LISTEN (as behind PgBouncer)
// and one Redis, shared by the processes a test plays.
type env struct {
	store *pgstore.Store
	redis config.Redis // direct to the server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	addr := redistest.Addr(t)
	dsn := pgtest.TestDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No OnChange and no OnRevocationChange: the store does not listen,
	// so only the Redis feed (or polling) can carry a change.
	store, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: pgtest.FreshSchema(t, dsn), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if store.Listening() {
		t.Fatal("the store listens; the test needs it deaf")
	}
	return &env{store: store, redis: redistest.Config(t, addr)}
}

// process is one gateway process's revocation side: its replica over
// the shared store, its Redis feed and its admin service.
type process struct {
	replica *revocation.Replica
	feed    *redisfeed.Feed
	svc     *revocation.Service
}

// process starts a process whose Redis is reached at addr (the server,
// or a proxy in front of it) and which polls every poll while its feed is
// down. Resync is an hour: a change reaches it by the feed or by polling.
func (e *env) process(t *testing.T, addr string, poll time.Duration) *process {
	t.Helper()
	cfg := e.redis
	cfg.Addresses = []string{addr}
	cfg.Breaker.CoolDown = config.Duration(100 * time.Millisecond)
	feed := redisfeed.New(redistest.ClientFor(t, cfg), redisfeed.Options{Log: quiet,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	t.Cleanup(feed.Close)
	r, err := revocation.NewReplica(revocation.ReplicaConfig{Store: e.store, Feed: feed,
		PollInterval: poll, ResyncInterval: time.Hour, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &process{replica: r, feed: feed, svc: &revocation.Service{Store: e.store, Replica: r, Announce: feed.Announce}}
}

// revoke revokes jti through p's service.
func (p *process) revoke(t *testing.T, jti string) {
	t.Helper()
	if _, err := p.svc.Revoke(context.Background(), revocation.Request{Kind: revocation.KindJTI, Values: []string{jti}}); err != nil {
		t.Fatal(err)
	}
}

// has reports whether p's list holds an entry for jti.
func (p *process) has(jti string) bool {
	return slices.ContainsFunc(p.replica.List.Entries(), func(e *revocation.Entry) bool { return e.Value == jti })
}

// waitFor polls cond every 2ms until it holds (returning how long it
// took) or the limit passes (failing the test).
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func stats(ds []time.Duration) string {
	slices.Sort(ds)
	return fmt.Sprintf("min %v, median %v, max %v (%d trials)", ds[0].Round(100*time.Microsecond),
		ds[len(ds)/2].Round(100*time.Microsecond), ds[len(ds)-1].Round(100*time.Microsecond), len(ds))
}

// TestPropagation: a revocation through process A reaches process B by
// Redis alone (no LISTEN, polling and resync an hour apart).
func TestPropagation(t *testing.T) {
	e := newEnv(t)
	addr := e.redis.Addresses[0]
	a, b := e.process(t, addr, time.Hour), e.process(t, addr, time.Hour)
	for _, p := range []*process{a, b} {
		waitFor(t, "subscription confirmed", 5*time.Second, p.feed.Listening)
		if p.replica.Polling() {
			t.Fatal("a replica whose feed listens polls")
		}
	}
	var ds []time.Duration
	for i := range 10 {
		jti := fmt.Sprintf("jti-%d", i)
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		start := time.Now()
		from.revoke(t, jti)
		if !from.has(jti) {
			t.Fatal("the writing process does not refuse the token when Revoke returns")
		}
		waitFor(t, "the other process to hear of "+jti, 5*time.Second, func() bool { return to.has(jti) })
		ds = append(ds, time.Since(start))
	}
	t.Logf("propagation to the other process by Redis pub/sub (from the call to Revoke): %s", stats(ds))

	// Unrevoke travels the same way.
	id := a.replica.List.Entries()[0].ID
	if err := a.svc.Unrevoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion to reach B", 5*time.Second, func() bool {
		return !slices.ContainsFunc(b.replica.List.Entries(), func(e *revocation.Entry) bool { return e.ID == id })
	})
}

// TestOutage cuts the Redis of two processes (one polling every 100ms,
// one never) while process A still reaches Redis: they stop listening
// and poll; the poller converges by polling; when Redis is back both
// listen again and the other one picks up, by the reload that follows a
// resubscription, what was revoked while it was away. Then A's own Redis
// is cut: its announcement waits and is published once Redis is back.
func TestOutage(t *testing.T) {
	e := newEnv(t)
	addr := e.redis.Addresses[0]
	proxy := redistest.NewProxy(t, addr)
	a := e.process(t, addr, time.Hour)
	poller := e.process(t, proxy.Addr(), 100*time.Millisecond)
	deaf := e.process(t, proxy.Addr(), time.Hour)
	all := []*process{a, poller, deaf}
	for _, p := range all {
		waitFor(t, "subscription confirmed", 5*time.Second, p.feed.Listening)
	}
	// settle lets the reloads already asked for (after subscribing, after
	// a message) finish, so that a later write cannot ride on them.
	settle := func() { time.Sleep(100 * time.Millisecond) }
	a.revoke(t, "before")
	waitFor(t, "a revocation to reach every process", 5*time.Second, func() bool { return poller.has("before") && deaf.has("before") })
	settle()

	proxy.Stop()
	for _, p := range []*process{poller, deaf} {
		waitFor(t, "the cut process to stop listening", 5*time.Second, func() bool { return !p.feed.Listening() && p.replica.Polling() })
	}
	if a.replica.Polling() {
		t.Fatal("process A, whose Redis is up, polls")
	}
	a.revoke(t, "while-down")
	d := waitFor(t, "the polling process to converge", 5*time.Second, func() bool { return poller.has("while-down") })
	t.Logf("while Redis is cut: converged by polling (poll_interval 100ms) in %v", d.Round(time.Millisecond))
	if deaf.has("while-down") {
		t.Fatal("a process that neither hears nor polls has the entry: the test cannot tell the reload on resubscription apart")
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, "the cut processes to listen again and reload", 5*time.Second, func() bool {
		return poller.feed.Listening() && deaf.feed.Listening() && !deaf.replica.Polling() && deaf.has("while-down")
	})
	t.Logf("Redis back: subscribed again and reloaded in %v", d.Round(time.Millisecond))
	a.revoke(t, "after")
	waitFor(t, "a revocation after the outage to arrive by Redis", 5*time.Second, func() bool { return deaf.has("after") })
	settle()

	// Now the writer is the one cut off: its announcement is retried.
	proxy.Stop()
	waitFor(t, "the cut processes to stop listening", 5*time.Second, func() bool { return !deaf.feed.Listening() })
	deaf.revoke(t, "announced-late")
	time.Sleep(300 * time.Millisecond) // A cannot hear of it yet
	if a.has("announced-late") {
		t.Fatal("A heard of a change whose announcement cannot have been published")
	}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcement to be published once Redis is back", 5*time.Second, func() bool { return a.has("announced-late") })
}

// TestCloseStopsGoroutines: Close ends the feed's goroutines and its
// subscription connection, whether it is subscribed or waiting to
// resubscribe.
func TestCloseStopsGoroutines(t *testing.T) {
	addr := redistest.Addr(t)
	for _, tc := range []struct {
		name string
		down bool
	}{
		{name: "subscribed"},
		{name: "redis down, resubscribing", down: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := redistest.NewProxy(t, addr)
			cfg := redistest.Config(t, addr)
			cfg.Addresses = []string{proxy.Addr()}
			client := redistest.ClientFor(t, cfg)
			before := runtime.NumGoroutine()
			feed := redisfeed.New(client, redisfeed.Options{Log: quiet, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			waitFor(t, "subscription confirmed", 5*time.Second, feed.Listening)
			if tc.down {
				proxy.Stop()
				waitFor(t, "the feed to notice", 5*time.Second, func() bool { return !feed.Listening() })
				feed.Announce() // a publish retried until Close
			}
			done := make(chan struct{})
			go func() { feed.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return")
			}
			if feed.Listening() {
				t.Error("a closed feed listens")
			}
			waitFor(t, "the feed's goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
		})
	}
}

// TestIdlePing: a quiet subscription is pinged (here every 20ms) and
// stays up, and messages still arrive between the pings.
func TestIdlePing(t *testing.T) {
	addr := redistest.Addr(t)
	cfg := redistest.Config(t, addr)
	sub := redisfeed.New(redistest.ClientFor(t, cfg), redisfeed.Options{Log: quiet, IdleCheck: 20 * time.Millisecond, PingWait: time.Second})
	t.Cleanup(sub.Close)
	pub := redisfeed.New(redistest.ClientFor(t, cfg), redisfeed.Options{Log: quiet})
	t.Cleanup(pub.Close)
	var heard atomic.Int64
	cancel := sub.Subscribe(func() { heard.Add(1) })
	defer cancel()
	waitFor(t, "subscription confirmed", 5*time.Second, sub.Listening)
	waitFor(t, "the reload that follows the subscription", 5*time.Second, func() bool { return heard.Load() == 1 })
	for range 15 { // 300ms: many idle checks
		time.Sleep(20 * time.Millisecond)
		if !sub.Listening() {
			t.Fatal("an idle subscription dropped while Redis answers its pings")
		}
	}
	if heard.Load() != 1 {
		t.Fatalf("%d changes heard while nothing was published, want the 1 after subscribing", heard.Load())
	}
	pub.Announce()
	waitFor(t, "an announcement to arrive after idle pings", 5*time.Second, func() bool { return heard.Load() == 2 })
	if sub.Channel() != cfg.KeyPrefix+"revocations" {
		t.Errorf("channel %q, want %q", sub.Channel(), cfg.KeyPrefix+"revocations")
	}
}

// TestOwnAnnouncementSkipped: the process that wrote has applied its
// change already; its own message does not reload it again, while every
// other process hears it.
func TestOwnAnnouncementSkipped(t *testing.T) {
	cfg := redistest.Config(t, redistest.Addr(t))
	var heard [2]atomic.Int64
	var feeds [2]*redisfeed.Feed
	for i := range feeds {
		feeds[i] = redisfeed.New(redistest.ClientFor(t, cfg), redisfeed.Options{Log: quiet})
		t.Cleanup(feeds[i].Close)
		feeds[i].Subscribe(func() { heard[i].Add(1) })
		waitFor(t, "subscription confirmed", 5*time.Second, feeds[i].Listening)
		waitFor(t, "the reload that follows the subscription", 5*time.Second, func() bool { return heard[i].Load() == 1 })
	}
	feeds[0].Announce()
	waitFor(t, "the other process to hear", 5*time.Second, func() bool { return heard[1].Load() == 2 })
	time.Sleep(50 * time.Millisecond) // the same message reached the writer by now
	if n := heard[0].Load(); n != 1 {
		t.Errorf("the writer heard %d changes, want only the 1 after subscribing", n)
	}
}
