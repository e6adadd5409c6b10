package pgstore

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
)

// TestBlackholedDatabaseCannotHangCalls: with the database partitioned
// (packets dropped, nothing refused), every call returns ErrUnavailable
// within its deadline even when the caller gives none, and a burst of calls
// leaves no goroutines or sockets behind beyond the pool's bound.
func TestBlackholedDatabaseCannotHangCalls(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := pgtest.NewProxy(t, dsn)
	const acquire, statement, connect = 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond
	s := openOn(t, viaProxy+"&pool_max_conns=4", Options{Schema: schema, AcquireTimeout: acquire, StatementTimeout: statement, ConnectTimeout: connect})
	c := newConsumer(t, s)
	k := newKey(t, s, c.ID)
	if _, _, err := s.LookupKey(context.Background(), k.Hash); err != nil {
		t.Fatal(err)
	}

	proxy.Blackhole()
	bound := acquire + statement + time.Second // the operation deadline
	before := runtime.NumGoroutine()
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		start := time.Now()
		for range 100 {
			wg.Go(func() {
				// No deadline from the caller: the store's own must hold.
				_, _, err := s.LookupKey(context.Background(), k.Hash)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		if took := time.Since(start); took > bound+time.Second {
			t.Fatalf("round %d: 100 lookups took %s, want under %s", round, took, bound+time.Second)
		}
		for err := range errs {
			if !isUnavailable(err) {
				t.Fatalf("round %d: %v, want ErrUnavailable", round, err)
			}
		}
		// The pool holds at most pool_max_conns connections (and pgx a
		// cancel connection per query it gave up on): bounded by the pool,
		// not by the number of calls.
		if n := proxy.Open(); n > 4*2+2 {
			t.Fatalf("round %d: %d connections open through the proxy after 100 calls", round, n)
		}
		if n := runtime.NumGoroutine(); n > before+30 {
			t.Fatalf("round %d: %d goroutines, %d before the burst", round, n, before)
		}
	}
	// Other calls are bounded too (the admin API uses them).
	start := time.Now()
	if _, err := s.ListKeys(context.Background(), ""); !isUnavailable(err) {
		t.Fatalf("ListKeys: %v", err)
	}
	if err := s.CreateConsumer(context.Background(), c); !isUnavailable(err) {
		t.Fatalf("CreateConsumer: %v", err)
	}
	if took := time.Since(start); took > 2*bound {
		t.Fatalf("took %s", took)
	}

	t.Logf("outage phase done at %s", time.Since(start))
	proxy.Heal()
	waitFor(t, 10*time.Second, func() bool {
		_, _, err := s.LookupKey(context.Background(), k.Hash)
		return err == nil
	})
	t.Logf("healed at %s", time.Since(start))
	t.Cleanup(func() { t.Logf("closed at %s", time.Since(start)) })
}

// TestListenerLogsDisconnectAndReconnectOnce: an outage of the listening
// connection is one warning and one info line, however many reconnect
// attempts it takes.
func TestListenerLogsDisconnectAndReconnectOnce(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := newTCPProxy(t, dsn)
	var buf syncBuffer
	flushed := make(chan struct{}, 10)
	s := openOn(t, viaProxy, Options{Schema: schema, Log: slog.New(slog.NewTextHandler(&buf, nil)),
		OnChange: func(id string) {
			if id == FlushAll {
				flushed <- struct{}{}
			}
		}})
	_ = s
	proxy.Stop()
	time.Sleep(1500 * time.Millisecond) // several failed attempts
	proxy.Start()
	select {
	case <-flushed:
	case <-time.After(15 * time.Second):
		t.Fatal("the listener did not reconnect")
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(buf.String(), "reconnected") })
	out := buf.String()
	if n := strings.Count(out, "listener disconnected"); n != 1 {
		t.Fatalf("%d disconnect lines, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "listener reconnected"); n != 1 {
		t.Fatalf("%d reconnect lines, want 1:\n%s", n, out)
	}
	if strings.Contains(out, "password") || strings.Contains(out, viaProxy) {
		t.Fatalf("the log names the DSN:\n%s", out)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
