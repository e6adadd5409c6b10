package apikey

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
)

func testEntry(id string) *entry {
	return newEntry(&apikey.Key{ID: id, Status: apikey.StatusActive}, &apikey.Consumer{ID: "c_" + id, Name: id})
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(time.Minute, time.Minute, 10)
	now := time.Unix(1_900_000_000, 0)
	fetch := func(e *entry) func(context.Context, []byte) (*entry, error) {
		return func(context.Context, []byte) (*entry, error) { return e, nil }
	}
	for i := range 5 {
		if _, err := c.load(context.Background(), fmt.Appendf(nil, "pos-%d", i), now, fetch(testEntry(fmt.Sprint("k", i)))); err != nil {
			t.Fatal(err)
		}
	}
	// A flood of unknown keys stays in its half and evicts no found key.
	for i := range 1000 {
		if _, err := c.load(context.Background(), fmt.Appendf(nil, "neg-%d", i), now, fetch(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if pos, neg := c.len(); pos != 5 || neg != 5 {
		t.Fatalf("cache holds %d found and %d unknown, want 5 and 5", pos, neg)
	}
	for i := range 5 {
		if e, ok := c.get(fmt.Appendf(nil, "pos-%d", i), now); !ok || e == nil {
			t.Fatalf("found key %d was evicted by unknown ones", i)
		}
	}
	for i := range 100 {
		_, _ = c.load(context.Background(), fmt.Appendf(nil, "more-%d", i), now, fetch(testEntry(fmt.Sprint("m", i))))
	}
	c.mu.RLock()
	pos, ids := len(c.pos), len(c.byID)
	c.mu.RUnlock()
	if pos != 5 || ids != 5 {
		t.Fatalf("%d found entries and %d id links, want 5 and 5", pos, ids)
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	c := newCache(time.Minute, time.Second, 4) // 2 unknown slots
	now := time.Unix(1_900_000_000, 0)
	none := func(context.Context, []byte) (*entry, error) { return nil, nil }
	_, _ = c.load(context.Background(), []byte("old"), now, none)
	_, _ = c.load(context.Background(), []byte("fresh"), now.Add(2*time.Second), none)
	_, _ = c.load(context.Background(), []byte("new"), now.Add(2*time.Second), none)
	if _, ok := c.get([]byte("fresh"), now.Add(2*time.Second)); !ok {
		t.Fatal("a live entry was evicted while an expired one was there")
	}
}

// TestLookupDuringInvalidateIsNotCached covers the race of a revocation
// with a lookup that read the key before it: what the lookup read must
// not be cached.
func TestLookupDuringInvalidateIsNotCached(t *testing.T) {
	c := newCache(time.Hour, time.Hour, 100)
	now := time.Unix(1_900_000_000, 0)
	e, err := c.load(context.Background(), []byte("h"), now, func(context.Context, []byte) (*entry, error) {
		c.invalidate("k1") // arrives while the store answers
		return testEntry("k1"), nil
	})
	if err != nil || e == nil {
		t.Fatalf("got %v, %v", e, err)
	}
	if _, ok := c.get([]byte("h"), now); ok {
		t.Fatal("a lookup that raced an invalidation was cached")
	}
}

func TestLookupErrorsAndPanicsAreNotCached(t *testing.T) {
	c := newCache(time.Hour, time.Hour, 100)
	now := time.Unix(1_900_000_000, 0)
	if _, err := c.load(context.Background(), []byte("h"), now, func(context.Context, []byte) (*entry, error) {
		return nil, apikey.ErrUnavailable
	}); err == nil {
		t.Fatal("no error")
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = c.load(context.Background(), []byte("h"), now, func(context.Context, []byte) (*entry, error) { panic("store bug") })
	}()
	if _, ok := c.get([]byte("h"), now); ok {
		t.Fatal("a failed lookup was cached")
	}
	if len(c.inflight) != 0 {
		t.Fatal("a failed lookup stayed in flight")
	}
}

func TestWaiterStopsOnCancel(t *testing.T) {
	c := newCache(time.Hour, time.Hour, 100)
	now := time.Unix(1_900_000_000, 0)
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = c.load(context.Background(), []byte("h"), now, func(ctx context.Context, _ []byte) (*entry, error) {
			close(started)
			<-release
			return nil, ctx.Err()
		})
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.load(ctx, []byte("h"), now, nil); err != context.Canceled {
		t.Fatalf("waiter got %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
}

func TestToucherFlushesEarlyWhenFullAndStops(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	st := &touchRecorder{Store: bolt}
	tt := NewToucher(st, time.Hour, nil)
	tt.mu.Lock()
	tt.max = 10
	tt.mu.Unlock()
	for i := range 10 {
		tt.Touch(fmt.Sprint("k", i), time.Unix(int64(i), 0))
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.calls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a full Toucher did not write early")
		}
		time.Sleep(time.Millisecond)
	}
	if err := tt.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tt.done:
	default:
		t.Fatal("the writer goroutine outlived Close")
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if len(tt.pending) > tt.max {
		t.Fatalf("%d pending touches, bound %d", len(tt.pending), tt.max)
	}
}

// touchRecorder counts TouchKeys calls on the real store.
type touchRecorder struct {
	apikey.Store
	mu sync.Mutex
	n  int
}

func (s *touchRecorder) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.Store.TouchKeys(ctx, lastUsed)
}

func (s *touchRecorder) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
