package pgstore

import (
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"

	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

func TestConsumers(t *testing.T) {
	s, _ := openStore(t, Options{})
	ctx := testCtx(t)
	loc := time.FixedZone("UTC+2", 2*3600)
	c := &apikey.Consumer{
		ID:        apikey.NewConsumerID(),
		Name:      "billing",
		Groups:    []string{"partners", "eu"},
		Tags:      []string{"tier-1"},
		Metadata:  map[string]string{"owner": "team-billing", "ticket": "OPS-1"},
		CreatedAt: time.Date(2026, 11, 1, 12, 0, 0, 123456000, loc),
	}
	if err := s.CreateConsumer(ctx, c); err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	want := *c
	want.CreatedAt = c.CreatedAt.UTC()

	got, err := s.GetConsumer(ctx, c.ID)
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetConsumer = %+v, %v; want %+v", got, err, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	got, err = s.GetConsumerByName(ctx, "billing")
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetConsumerByName = %+v, %v; want %+v", got, err, want)
	}

	bare := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "bare", CreatedAt: want.CreatedAt.Add(time.Second)}
	if err := s.CreateConsumer(ctx, bare); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListConsumers(ctx)
	if err != nil || len(list) != 2 || list[0].ID != c.ID || !reflect.DeepEqual(*list[1], *bare) {
		t.Fatalf("ListConsumers = %+v, %v; want [billing, bare] with nil lists", list, err)
	}

	for _, tc := range []struct {
		name string
		c    *apikey.Consumer
		want error
	}{
		{"duplicate id", &apikey.Consumer{ID: c.ID, Name: "other"}, apikey.ErrConflict},
		{"duplicate name", &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "billing"}, apikey.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateConsumer(ctx, tc.c); !errors.Is(err, tc.want) {
				t.Errorf("CreateConsumer = %v, want %v", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.GetConsumer(ctx, "c_missing"); return err }},
		{"get by name", func() error { _, err := s.GetConsumerByName(ctx, "missing"); return err }},
		{"delete", func() error { return s.DeleteConsumer(ctx, "c_missing") }},
		{"get key", func() error { _, err := s.GetKey(ctx, "k_missing"); return err }},
		{"lookup", func() error { _, _, err := s.LookupKey(ctx, randomHash()); return err }},
		{"update key", func() error {
			return s.UpdateKey(ctx, &apikey.Key{ID: "k_missing", Status: apikey.StatusRevoked})
		}},
		{"key of unknown consumer", func() error {
			return s.CreateKey(ctx, &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: "c_missing", Hash: randomHash(), Status: apikey.StatusActive})
		}},
	} {
		t.Run("not found/"+tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, apikey.ErrNotFound) || isUnavailable(err) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	s, _ := openStore(t, Options{})
	ctx := testCtx(t)
	c := newConsumer(t, s)
	other := newConsumer(t, s)
	exp := time.Date(2027, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", -5*3600))
	k := &apikey.Key{
		ID:         apikey.NewKeyID(),
		ConsumerID: c.ID,
		Hash:       randomHash(),
		Hint:       "gate_live_…a1b2",
		Name:       "ci",
		Scopes:     []string{"orders:read", "orders:write"},
		Routes:     []string{"orders"},
		Tier:       "gold",
		Status:     apikey.StatusActive,
		CreatedAt:  time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		ExpiresAt:  &exp,
	}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	want := *k
	utcExp := exp.UTC()
	want.ExpiresAt = &utcExp

	got, err := s.GetKey(ctx, k.ID)
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetKey = %+v, %v; want %+v", got, err, want)
	}
	gk, gc, err := s.LookupKey(ctx, k.Hash)
	if err != nil || !reflect.DeepEqual(*gk, want) || !reflect.DeepEqual(*gc, *c) {
		t.Fatalf("LookupKey = %+v, %+v, %v; want %+v, %+v", gk, gc, err, want, c)
	}
	k2 := newKey(t, s, c.ID)
	k3 := newKey(t, s, other.ID)

	for _, tc := range []struct {
		consumer string
		want     []string
	}{
		{c.ID, []string{k.ID, k2.ID}},
		{other.ID, []string{k3.ID}},
		{"", []string{k.ID, k2.ID, k3.ID}},
		{"c_missing", nil},
	} {
		ks, err := s.ListKeys(ctx, tc.consumer)
		var ids []string
		for _, k := range ks {
			ids = append(ids, k.ID)
		}
		if err != nil || !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ListKeys(%q) = %v, %v; want %v", tc.consumer, ids, err, tc.want)
		}
	}

	for _, tc := range []struct {
		name string
		k    apikey.Key
	}{
		{"duplicate id", apikey.Key{ID: k.ID, ConsumerID: c.ID, Hash: randomHash(), Status: apikey.StatusActive}},
		{"duplicate hash", apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: k.Hash, Status: apikey.StatusActive}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateKey(ctx, &tc.k); !errors.Is(err, apikey.ErrConflict) {
				t.Errorf("CreateKey = %v, want ErrConflict", err)
			}
		})
	}
	if err := s.CreateKey(ctx, &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: c.ID, Hash: randomHash(), Status: "paused"}); err == nil {
		t.Error("CreateKey with status paused succeeded")
	}

	// UpdateKey replaces the mutable fields and nothing else.
	now := time.Now().UTC().Truncate(time.Microsecond)
	upd := *got
	upd.Status = apikey.StatusRevoked
	upd.RevokedAt = &now
	upd.ExpiresAt = nil
	upd.RotatedTo = k2.ID
	upd.Name = "renamed"
	upd.Scopes = nil
	upd.Routes = []string{"a", "b"}
	upd.Tier = ""
	upd.ConsumerID = other.ID // immutable
	upd.Hash = randomHash()   // immutable
	upd.Hint = "changed"      // immutable
	upd.CreatedAt = now       // immutable
	if err := s.UpdateKey(ctx, &upd); err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want = upd
	want.ConsumerID, want.Hash, want.Hint, want.CreatedAt = k.ConsumerID, k.Hash, k.Hint, k.CreatedAt
	if got, err := s.GetKey(ctx, k.ID); err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("after UpdateKey, GetKey = %+v, %v; want %+v", got, err, want)
	}

	// DeleteConsumer takes its keys along, and only its keys.
	if err := s.DeleteConsumer(ctx, c.ID); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	for _, id := range []string{k.ID, k2.ID} {
		if _, err := s.GetKey(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("GetKey(%s) after DeleteConsumer = %v, want ErrNotFound", id, err)
		}
	}
	if _, _, err := s.LookupKey(ctx, k.Hash); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("LookupKey after DeleteConsumer = %v, want ErrNotFound", err)
	}
	if _, err := s.GetKey(ctx, k3.ID); err != nil {
		t.Errorf("other consumer's key: %v", err)
	}
}

func TestTouchKeys(t *testing.T) {
	s, _ := openStore(t, Options{})
	ctx := testCtx(t)
	c := newConsumer(t, s)
	a, b := newKey(t, s, c.ID), newKey(t, s, c.ID)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

	lastUsed := func(id string) *time.Time {
		t.Helper()
		k, err := s.GetKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k.LastUsedAt
	}
	if err := s.TouchKeys(ctx, nil); err != nil {
		t.Fatalf("TouchKeys(nil): %v", err)
	}
	if err := s.TouchKeys(ctx, map[string]time.Time{a.ID: t0, b.ID: t0.Add(time.Minute), "k_deleted": t0}); err != nil {
		t.Fatalf("TouchKeys: %v", err)
	}
	if got := lastUsed(a.ID); got == nil || !got.Equal(t0) || got.Location() != time.UTC {
		t.Errorf("a.LastUsedAt = %v, want %v UTC", got, t0)
	}
	// An older time (a slow replica flushing late) does not move it back.
	if err := s.TouchKeys(ctx, map[string]time.Time{a.ID: t0.Add(-time.Hour), b.ID: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(a.ID); !got.Equal(t0) {
		t.Errorf("a.LastUsedAt = %v after older touch, want %v", got, t0)
	}
	if got := lastUsed(b.ID); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("b.LastUsedAt = %v, want %v", got, t0.Add(2*time.Minute))
	}

	// Replicas flushing overlapping batches at once neither deadlock nor
	// lose the latest time.
	var keys []string
	for range 20 {
		keys = append(keys, newKey(t, s, c.ID).ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				batch := map[string]time.Time{}
				for j, id := range keys {
					batch[id] = t0.Add(time.Duration(w*10+i+j) * time.Second)
				}
				if err := s.TouchKeys(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent TouchKeys: %v", err)
	}
	for j, id := range keys {
		if got, want := lastUsed(id), t0.Add(time.Duration(79+j)*time.Second); !got.Equal(want) {
			t.Errorf("key %d LastUsedAt = %v, want %v", j, got, want)
		}
	}
}

func TestMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 {
		t.Fatalf("loadMigrations = %v, %v", ms, err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d (no gaps)", m.name, m.version, i+1)
		}
	}

	t.Run("idempotent", func(t *testing.T) {
		dsn := pgtest.TestDSN(t)
		schema := pgtest.FreshSchema(t, dsn)
		s1 := openOn(t, dsn, Options{Schema: schema})
		c := newConsumer(t, s1)
		s1.Close()
		s2 := openOn(t, dsn, Options{Schema: schema})
		if _, err := s2.GetConsumer(testCtx(t), c.ID); err != nil {
			t.Errorf("data lost on reopen: %v", err)
		}
		checkVersions(t, s2, len(ms))
	})

	t.Run("concurrent opens", func(t *testing.T) {
		dsn := pgtest.TestDSN(t)
		schema := pgtest.FreshSchema(t, dsn)
		const replicas = 4
		stores := make([]*Store, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range replicas {
			wg.Go(func() {
				<-start
				stores[i], errs[i] = Open(testCtx(t), dsn, Options{Schema: schema})
			})
		}
		close(start)
		wg.Wait()
		for i := range replicas {
			if errs[i] != nil {
				t.Errorf("replica %d: Open: %v", i, errs[i])
				continue
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		if !t.Failed() {
			checkVersions(t, stores[0], len(ms))
		}
	})

	t.Run("invalid schema", func(t *testing.T) {
		for _, schema := range []string{"Upper", "1abc", "has-dash", "pg_catalog", "a\"b", string(make([]byte, 64))} {
			if _, err := Open(context.Background(), "postgres://127.0.0.1:1/x", Options{Schema: schema}); err == nil || isUnavailable(err) {
				t.Errorf("Open(schema %q) = %v, want an invalid schema error", schema, err)
			}
		}
	})
}

// checkVersions checks that every migration is recorded exactly once.
func checkVersions(t *testing.T, s *Store, n int) {
	t.Helper()
	var count, maxV int
	q := fmt.Sprintf(`SELECT count(*), max(version) FROM %s.schema_migrations`, pgx.Identifier{s.schema}.Sanitize())
	if err := s.pool.QueryRow(testCtx(t), q).Scan(&count, &maxV); err != nil {
		t.Fatal(err)
	}
	if count != n || maxV != n {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", count, maxV, n)
	}
}

func TestUnavailable(t *testing.T) {
	// Nothing listens on port 1: connecting fails at once (or within the
	// one-second connect timeout).
	start := time.Now()
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1", Options{})
	if !isUnavailable(err) {
		t.Fatalf("Open on a closed port = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v to fail", d)
	}

	// A store whose database goes away mid-life fails every call as
	// unavailable (the gateway answers 503, never lets the request in).
	dsn := pgtest.TestDSN(t)
	proxy, viaProxy := newTCPProxy(t, dsn)
	schema := pgtest.FreshSchema(t, dsn)
	s := openOn(t, viaProxy+"&connect_timeout=1", Options{Schema: schema})
	c := newConsumer(t, s)
	k := newKey(t, s, c.ID)
	proxy.Stop()

	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"LookupKey", func() error { _, _, err := s.LookupKey(ctx, k.Hash); return err }},
		{"GetKey", func() error { _, err := s.GetKey(ctx, k.ID); return err }},
		{"ListConsumers", func() error { _, err := s.ListConsumers(ctx); return err }},
		{"UpdateKey", func() error { return s.UpdateKey(ctx, k) }},
		{"TouchKeys", func() error { return s.TouchKeys(ctx, map[string]time.Time{k.ID: time.Now()}) }},
		{"DeleteConsumer", func() error { return s.DeleteConsumer(ctx, c.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !isUnavailable(err) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
		})
	}

	// A deadline that expires while waiting for the server is a timeout,
	// also unavailable.
	proxy.Start()
	short, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-short.Done()
	if _, _, err := s.LookupKey(short, k.Hash); !isUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LookupKey with expired deadline = %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	// And the store recovers once the database is back.
	if _, _, err := s.LookupKey(ctx, k.Hash); err != nil {
		t.Errorf("LookupKey after the database came back: %v", err)
	}

	s.Close()
	if _, _, err := s.LookupKey(ctx, k.Hash); !isUnavailable(err) {
		t.Errorf("LookupKey after Close = %v, want ErrUnavailable", err)
	}
}
