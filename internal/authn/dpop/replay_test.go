package dpop

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func key(i int) ReplayKey { return replayKey("jkt", string(rune('a'+i%26))+string(rune(i))) }

func TestMemoryReplayCache(t *testing.T) {
	ctx := context.Background()
	now := t0
	c := NewMemoryReplayCache(3, func() time.Time { return now })
	seen := func(k ReplayKey, until time.Duration) (bool, error) {
		return c.SeenBefore(ctx, k, now.Add(until))
	}
	steps := []struct {
		name    string
		advance time.Duration
		key     ReplayKey
		until   time.Duration
		seen    bool
		err     error
		len     int
	}{
		{name: "first", key: key(1), until: 10 * time.Second, len: 1},
		{name: "again", key: key(1), until: 10 * time.Second, seen: true, len: 1},
		{name: "second", key: key(2), until: 20 * time.Second, len: 2},
		{name: "third", key: key(3), until: 30 * time.Second, len: 3},
		{name: "full, nothing expired", key: key(4), until: 30 * time.Second, err: ErrReplayCacheFull, len: 3},
		{name: "still remembered when full", key: key(2), until: 30 * time.Second, seen: true, len: 3},
		{name: "first expired, room made", advance: 11 * time.Second, key: key(4), until: 30 * time.Second, len: 3},
		{name: "full again", key: key(1), until: 30 * time.Second, err: ErrReplayCacheFull, len: 3},
		{name: "later: expired entries dropped on use", advance: 25 * time.Second, key: key(5), until: time.Second, len: 2},
		{name: "until already past", key: key(6), until: -time.Second, len: 2},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		got, err := seen(s.key, s.until)
		if got != s.seen || !errors.Is(err, s.err) {
			t.Errorf("%s: SeenBefore = %v, %v; want %v, %v", s.name, got, err, s.seen, s.err)
		}
		if n := c.Len(); n != s.len {
			t.Errorf("%s: Len = %d, want %d", s.name, n, s.len)
		}
	}
}

func TestMemoryReplayCacheReinsertAfterExpiry(t *testing.T) {
	ctx := context.Background()
	now := t0
	c := NewMemoryReplayCache(8, func() time.Time { return now })
	head, k := key(1), key(2)
	mustNew := func(k ReplayKey, until time.Time) {
		t.Helper()
		if seen, err := c.SeenBefore(ctx, k, until); seen || err != nil {
			t.Fatalf("SeenBefore = %v, %v; want a new key", seen, err)
		}
	}
	mustNew(head, t0.Add(50*time.Second))
	mustNew(k, t0.Add(time.Second))
	// k expires behind a live head: it stays in the ring, and is new again.
	now = t0.Add(2 * time.Second)
	mustNew(k, t0.Add(60*time.Second))
	// Dropping the head and k's old ring entry must keep k's new recording.
	now = t0.Add(51 * time.Second)
	mustNew(key(3), t0.Add(60*time.Second))
	if seen, _ := c.SeenBefore(ctx, k, t0.Add(60*time.Second)); !seen {
		t.Fatal("re-recorded key forgotten when its old entry was dropped")
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2 (k and key 3)", n)
	}
}

func TestMemoryReplayCacheGrowsInOrder(t *testing.T) {
	ctx := context.Background()
	now := t0
	c := NewMemoryReplayCache(1000, func() time.Time { return now })
	// Fill past the first ring sizes with entries that expire in order,
	// expire some from the head, then grow again across the wrap.
	for i := range 100 {
		if _, err := c.SeenBefore(ctx, key(i), now.Add(time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(50 * time.Second)
	for i := 100; i < 300; i++ {
		if seen, err := c.SeenBefore(ctx, key(i), now.Add(time.Hour)); seen || err != nil {
			t.Fatalf("key %d: %v %v", i, seen, err)
		}
	}
	for i := 50; i < 300; i++ {
		if seen, _ := c.SeenBefore(ctx, key(i), now.Add(time.Hour)); !seen {
			t.Fatalf("key %d forgotten", i)
		}
	}
}

func TestMemoryReplayCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c := NewMemoryReplayCache(1<<12, fixedClock)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				// Every goroutine offers the same 500 keys: each must be
				// new exactly once.
				_ = g
				seen, err := c.SeenBefore(ctx, key(i), t0.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := fresh.Load(); n != 500 {
		t.Fatalf("%d keys were new, want 500", n)
	}
}

func TestMemoryReplayCacheCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := NewMemoryReplayCache(4, fixedClock)
	if _, err := c.SeenBefore(ctx, key(1), t0.Add(time.Minute)); err == nil {
		t.Fatal("a cancelled context was answered")
	}
}

func TestReplayKey(t *testing.T) {
	if replayKey("ab", "c") == replayKey("a", "bc") {
		t.Error("key and jti boundaries are ambiguous")
	}
	if s := replayKey("a", "b").String(); len(s) != 43 {
		t.Errorf("String() = %q", s)
	}
}
