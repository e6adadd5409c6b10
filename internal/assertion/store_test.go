package assertion_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/assertion"
)

func ringOver(t *testing.T, s assertion.Store, now func() time.Time) *assertion.KeyRing {
	t.Helper()
	sealer, err := assertion.NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := assertion.NewKeyRing(assertion.RingConfig{Store: s, Sealer: sealer, Algorithm: assertion.ES256,
		RotationInterval: 24 * time.Hour, PrePublish: time.Hour, Retain: 10 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func jwks(t *testing.T, r *assertion.KeyRing, now time.Time) string {
	t.Helper()
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := r.JWKS(now)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBoltStoreKeepsKeys: the embedded store keeps the keys across a
// restart, so backends see no new key after one.
func TestBoltStoreKeepsKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	now := time.Now()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := jwks(t, ringOver(t, s, func() time.Time { return now }), now)
	_ = s.Close()
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after := jwks(t, ringOver(t, s, func() time.Time { return now.Add(time.Minute) }), now.Add(time.Minute))
	if before != after || strings.Count(after, `"kid"`) != 2 {
		t.Fatalf("keys changed across a restart:\n%s\n%s", before, after)
	}
}

// TestPostgresReplicasShareKeys: replicas on one PostgreSQL store that
// refresh at the same moment generate the keys once and publish the same.
func TestPostgresReplicasShareKeys(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	now := time.Now()
	var rings []*assertion.KeyRing
	for range 3 {
		s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		rings = append(rings, ringOver(t, s, func() time.Time { return now }))
	}
	var wg sync.WaitGroup
	for _, r := range rings {
		wg.Go(func() {
			if err := r.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	first := jwks(t, rings[0], now)
	if strings.Count(first, `"kid"`) != 2 {
		t.Fatalf("want the signing key and its successor, got %s", first)
	}
	k0, _ := rings[0].Signing(now)
	for i, r := range rings[1:] {
		if got := jwks(t, r, now); got != first {
			t.Fatalf("replica %d publishes other keys:\n%s\n%s", i+1, got, first)
		}
		if k, _ := r.Signing(now); k.ID != k0.ID {
			t.Fatalf("replica %d signs with %s, replica 0 with %s", i+1, k.ID, k0.ID)
		}
	}
}
