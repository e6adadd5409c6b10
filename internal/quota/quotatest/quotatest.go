// Package quotatest is the conformance suite every quota.Store passes:
// counting up to the limit and no further, atomically under concurrency,
// rolling capacity, the exceeded mark once per window, and (with reopen)
// counts that survive closing and reopening the store.
package quotatest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/quota"
)

// Run runs the suite. open returns a store; reopen, if not nil, closes
// the given store and opens the same data again (a restart).
func Run(t *testing.T, prefix string, open func(t *testing.T) quota.Store, reopen func(t *testing.T, s quota.Store) quota.Store) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	t.Run("limit", func(t *testing.T) {
		s := open(t)
		key := prefix + "limit\x00consumer"
		for i := int64(1); i <= 3; i++ {
			r, err := s.Take(ctx, quota.Take{Key: key, Window: 7, Prev: 6, Limit: 3, ExpireAt: exp})
			if err != nil || !r.OK || r.Cur != i {
				t.Fatalf("take %d: %+v, %v", i, r, err)
			}
		}
		r, err := s.Take(ctx, quota.Take{Key: key, Window: 7, Prev: 6, Limit: 3, ExpireAt: exp})
		if err != nil || r.OK || r.Cur != 3 {
			t.Fatalf("over the limit: %+v, %v (want refused at 3)", r, err)
		}
		// Another window counts apart.
		if r, err := s.Take(ctx, quota.Take{Key: key, Window: 8, Prev: 7, Limit: 3, ExpireAt: exp}); err != nil || !r.OK || r.Cur != 1 {
			t.Fatalf("next window: %+v, %v", r, err)
		}
		if cur, prev, err := s.Counts(ctx, key, 8, 7); err != nil || cur != 1 || prev != 3 {
			t.Fatalf("counts: %d %d %v", cur, prev, err)
		}
		if reopen != nil {
			s = reopen(t, s)
			if cur, prev, err := s.Counts(ctx, key, 8, 7); err != nil || cur != 1 || prev != 3 {
				t.Fatalf("counts after reopening: %d %d %v (a restart lost counts)", cur, prev, err)
			}
			if r, err := s.Take(ctx, quota.Take{Key: key, Window: 7, Limit: 3, ExpireAt: exp}); err != nil || r.OK {
				t.Fatalf("after reopening, a full window admitted: %+v, %v", r, err)
			}
		}
	})
	t.Run("rolling", func(t *testing.T) {
		s := open(t)
		key := prefix + "rolling"
		for range 4 {
			if _, err := s.Take(ctx, quota.Take{Key: key, Window: 1, Limit: 10, ExpireAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		// Half of the previous window's 4 still counts: 10 − 2 = 8 fit.
		n := 0
		for range 10 {
			r, err := s.Take(ctx, quota.Take{Key: key, Window: 2, Prev: 1, PrevWeight: 0.5, Limit: 10, ExpireAt: exp})
			if err != nil {
				t.Fatal(err)
			}
			if r.OK {
				n++
			}
			if r.Prev != 4 {
				t.Fatalf("previous window read %d, want 4", r.Prev)
			}
		}
		if n != 8 {
			t.Fatalf("admitted %d, want 8", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		s := open(t)
		key := prefix + "concurrent"
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Take(ctx, quota.Take{Key: key, Window: 1, Limit: 7, ExpireAt: exp})
				if err != nil {
					t.Error(err)
					return
				}
				if r.OK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 7 {
			t.Fatalf("admitted %d of 20 concurrent requests, want exactly 7", ok)
		}
	})
	t.Run("exceeded once", func(t *testing.T) {
		s := open(t)
		key := prefix + "exceeded"
		for i, want := range []bool{true, false, false} {
			first, err := s.MarkExceeded(ctx, key, 5, exp)
			if err != nil || first != want {
				t.Fatalf("mark %d: %v, %v; want %v", i, first, err, want)
			}
		}
		if first, err := s.MarkExceeded(ctx, key, 6, exp); err != nil || !first {
			t.Fatalf("next window: %v %v", first, err)
		}
	})
}
