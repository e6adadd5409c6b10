package pgstore

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/quota"
	"github.com/gatehouse/gatehouse/internal/quota/quotatest"
)

func TestQuotaStore(t *testing.T) {
	type opened struct{ dsn, schema string }
	where := map[quota.Store]opened{}
	quotatest.Run(t, "", func(t *testing.T) quota.Store {
		s, dsn := openStore(t, Options{})
		where[s] = opened{dsn, s.schema}
		return s
	}, func(t *testing.T, old quota.Store) quota.Store {
		o := where[old]
		if err := old.(*Store).Close(); err != nil {
			t.Fatal(err)
		}
		return openOn(t, o.dsn, Options{Schema: o.schema})
	})
}

func TestPruneQuotas(t *testing.T) {
	s, _ := openStore(t, Options{})
	ctx := testCtx(t)
	now := time.Now()
	for i, exp := range []time.Time{now.Add(-time.Second), now.Add(time.Hour)} {
		if _, err := s.Take(ctx, quota.Take{Key: "k", Window: int64(i), Limit: 5, ExpireAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneQuotas(ctx, now); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
}
