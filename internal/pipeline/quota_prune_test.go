package pipeline

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/quota"
)

// TestPruneQuotas: the pruner drops expired counters of a real store
// and stops when its context ends.
func TestPruneQuotas(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Take(ctx, quota.Take{Key: "k", Window: 1, Limit: 5, ExpireAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pruneQuotas(pctx, s, time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Pruned: a take in the same window starts again at 1.
		n, _, err := s.Counts(ctx, "k", 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired counter was never pruned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
