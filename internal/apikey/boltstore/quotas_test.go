package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/quota"
	"github.com/gatehouse/gatehouse/internal/quota/quotatest"
)

func TestQuotaStore(t *testing.T) {
	open := func(t *testing.T) (string, *Store) {
		path := filepath.Join(t.TempDir(), "keys.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return path, s
	}
	paths := map[quota.Store]string{}
	quotatest.Run(t, "", func(t *testing.T) quota.Store {
		p, s := open(t)
		paths[s] = p
		return s
	}, func(t *testing.T, old quota.Store) quota.Store {
		if err := old.(*Store).Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(paths[old], Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestPruneQuotas(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keys.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for i, exp := range []time.Time{now.Add(-time.Second), now.Add(time.Hour)} {
		if _, err := s.Take(ctx, quota.Take{Key: "k", Window: int64(i), Limit: 5, ExpireAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneQuotas(ctx, now); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if cur, prev, _ := s.Counts(ctx, "k", 1, 0); cur != 1 || prev != 0 {
		t.Fatalf("after pruning: %d %d", cur, prev)
	}
}

// BenchmarkQuotaTake measures one durable count (a committed, fsynced
// batch), one caller per goroutine.
func BenchmarkQuotaTake(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "keys.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Take(ctx, quota.Take{Key: "bench", Window: 1, Limit: 1 << 40, ExpireAt: exp}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
