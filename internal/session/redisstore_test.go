package session_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/session"
)

func newStore(t *testing.T, opts ...session.StoreOption) (*session.RedisStore, redis.UniversalClient, string) {
	t.Helper()
	c := redistest.Client(t)
	opts = append([]session.StoreOption{session.WithCodec(newCodec(t, newKey(t)))}, opts...)
	return session.NewRedisStore(c.Redis(), c.Prefix(), opts...), c.Redis(), c.Prefix()
}

func sessionFor(t *testing.T, issuer, subject, sid string) *session.Session {
	t.Helper()
	s := typicalSession(t)
	s.Issuer, s.Subject, s.SID = issuer, subject, sid
	return s
}

func TestRedisStoreRoundTrip(t *testing.T) {
	store, rdb, prefix := newStore(t)
	ctx := context.Background()
	s := typicalSession(t)
	if err := store.Save(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := store.Load(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("Load:\n got %+v\nwant %+v", got, s)
	}

	// What Redis holds is sealed: no token, claim or identifier in the clear.
	var raw []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		raw = append(raw, k)
		if typ := rdb.Type(ctx, k).Val(); typ == "string" {
			raw = append(raw, rdb.Get(ctx, k).Val())
		} else {
			raw = append(raw, rdb.ZRange(ctx, k, 0, -1).Val()...)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	dump := strings.Join(raw, "\n")
	for _, secret := range []string{s.AccessToken[:40], s.RefreshToken, "alice@example.com", s.Subject, s.SID, s.Issuer} {
		if strings.Contains(dump, secret) {
			t.Fatalf("Redis holds %q in the clear", secret)
		}
	}
	if len(raw) < 6 { // session, sid index, subject index (key + value each)
		t.Fatalf("Redis holds %d keys+values, want a session and two indexes: %q", len(raw), raw)
	}
	for i := 0; i < len(raw); i += 2 {
		if k := raw[i]; !strings.Contains(k, "{") || !strings.HasSuffix(k, "}") {
			t.Fatalf("key %q has no Cluster hash tag", k)
		}
	}

	// Saving again replaces the data.
	s.AccessToken = "refreshed"
	if err := store.Save(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Load(ctx, s.ID); got == nil || got.AccessToken != "refreshed" {
		t.Fatalf("after a second Save: %+v", got)
	}

	if err := store.Delete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
	if err := store.Delete(ctx, s.ID); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestRedisStoreLoadRefuses(t *testing.T) {
	store, rdb, prefix := newStore(t)
	ctx := context.Background()
	a, b := typicalSession(t), typicalSession(t)
	for _, s := range []*session.Session{a, b} {
		if err := store.Save(ctx, s, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	missing, _ := session.NewID()
	otherKeys := session.NewRedisStore(rdb, prefix, session.WithCodec(newCodec(t, newKey(t)))) // same Redis, other key
	noCodec := session.NewRedisStore(rdb, prefix)

	// Copy b's sealed data under another ID: bound to b's ID, it must not open there.
	bData := rdb.Get(ctx, prefix+"session:{"+b.ID+"}").Val()
	swapID, _ := session.NewID()
	rdb.Set(ctx, prefix+"session:{"+swapID+"}", bData, time.Minute)

	for _, tc := range []struct {
		name  string
		store *session.RedisStore
		id    string
		want  error
	}{
		{"missing", store, missing, session.ErrNotFound},
		{"malformed id", store, "../x", session.ErrInvalid},
		{"sealed with a key no longer configured", otherKeys, a.ID, session.ErrInvalid},
		{"data moved to another id", store, swapID, session.ErrInvalid},
		{"no codec", noCodec, a.ID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.store.Load(ctx, tc.id)
			if err == nil || s != nil {
				t.Fatalf("Load = %v, %v; want an error", s, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Load err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := noCodec.Save(ctx, a, time.Minute); err == nil {
		t.Fatal("Save without a codec stored the session")
	}
	if err := store.Save(ctx, a, 0); err == nil {
		t.Fatal("Save with no TTL accepted")
	}
}

func TestRedisStoreTTL(t *testing.T) {
	store, rdb, prefix := newStore(t)
	ctx := context.Background()
	s := sessionFor(t, "https://idp.example", "alice", "sid-1")
	if err := store.Save(ctx, s, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ttl := rdb.PTTL(ctx, prefix+"session:{"+s.ID+"}").Val()
	if ttl <= 0 || ttl > 1500*time.Millisecond {
		t.Fatalf("session key TTL %v, want (0, 1.5s]", ttl)
	}
	// Indexes never expire before the sessions they list.
	iter := rdb.Scan(ctx, 0, prefix+"session-s*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		n++
		if it := rdb.PTTL(ctx, iter.Val()).Val(); it < ttl {
			t.Fatalf("index %s TTL %v below the session's %v", iter.Val(), it, ttl)
		}
	}
	if n != 2 {
		t.Fatalf("%d index keys, want 2", n)
	}
	time.Sleep(1700 * time.Millisecond)
	if _, err := store.Load(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Load after the TTL: %v, want ErrNotFound", err)
	}
}

func TestRedisStoreDeleteBySIDAndSubject(t *testing.T) {
	store, _, _ := newStore(t)
	ctx := context.Background()
	const idp, other = "https://idp.example", "https://other.example"
	save := func(s *session.Session) *session.Session {
		t.Helper()
		if err := store.Save(ctx, s, time.Minute); err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice1 := save(sessionFor(t, idp, "alice", "sid-a1"))
	alice2 := save(sessionFor(t, idp, "alice", "sid-a1")) // same IdP session, second device... or tab
	alice3 := save(sessionFor(t, idp, "alice", "sid-a2"))
	bob := save(sessionFor(t, idp, "bob", "sid-b"))
	aliceElsewhere := save(sessionFor(t, other, "alice", "sid-a1")) // same sub and sid at another issuer
	noSID := save(sessionFor(t, idp, "carol", ""))

	alive := func(ss ...*session.Session) {
		t.Helper()
		for _, s := range ss {
			if _, err := store.Load(ctx, s.ID); err != nil {
				t.Fatalf("session of %s/%s/%s: %v, want alive", s.Issuer, s.Subject, s.SID, err)
			}
		}
	}
	gone := func(ss ...*session.Session) {
		t.Helper()
		for _, s := range ss {
			if _, err := store.Load(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("session of %s/%s/%s: %v, want ErrNotFound", s.Issuer, s.Subject, s.SID, err)
			}
		}
	}

	n, err := store.DeleteBySID(ctx, idp, "sid-a1")
	if err != nil || n != 2 {
		t.Fatalf("DeleteBySID = %d, %v; want 2", n, err)
	}
	gone(alice1, alice2)
	alive(alice3, bob, aliceElsewhere, noSID)

	if n, err := store.DeleteBySID(ctx, idp, "sid-a1"); err != nil || n != 0 {
		t.Fatalf("second DeleteBySID = %d, %v; want 0", n, err)
	}
	if n, err := store.DeleteBySID(ctx, idp, "no-such-sid"); err != nil || n != 0 {
		t.Fatalf("DeleteBySID of an unknown sid = %d, %v; want 0", n, err)
	}

	// alice1 and alice2 are still listed under subject alice but already
	// gone: they are not counted.
	n, err = store.DeleteBySubject(ctx, idp, "alice")
	if err != nil || n != 1 {
		t.Fatalf("DeleteBySubject = %d, %v; want 1", n, err)
	}
	gone(alice3)
	alive(bob, aliceElsewhere, noSID)

	n, err = store.DeleteBySubject(ctx, idp, "carol")
	if err != nil || n != 1 {
		t.Fatalf("DeleteBySubject(carol) = %d, %v; want 1", n, err)
	}
	gone(noSID)
	alive(bob, aliceElsewhere)

	for _, args := range [][2]string{{"", "x"}, {idp, ""}} {
		if _, err := store.DeleteBySID(ctx, args[0], args[1]); err == nil {
			t.Fatalf("DeleteBySID(%q, %q) accepted", args[0], args[1])
		}
		if _, err := store.DeleteBySubject(ctx, args[0], args[1]); err == nil {
			t.Fatalf("DeleteBySubject(%q, %q) accepted", args[0], args[1])
		}
	}
}

// Index members whose sessions expired are pruned at the next Save, so
// an index does not grow with every login of a long-lived user.
func TestRedisStoreIndexPrunes(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store, rdb, prefix := newStore(t, session.WithClock(clock))
	ctx := context.Background()
	for range 5 {
		if err := store.Save(ctx, sessionFor(t, "https://idp.example", "dave", ""), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if err := store.Save(ctx, sessionFor(t, "https://idp.example", "dave", ""), time.Minute); err != nil {
		t.Fatal(err)
	}
	keys := rdb.Keys(ctx, prefix+"session-sub:*").Val()
	if len(keys) != 1 {
		t.Fatalf("subject index keys %q", keys)
	}
	if n := rdb.ZCard(ctx, keys[0]).Val(); n != 1 {
		t.Fatalf("subject index holds %d members after pruning, want 1", n)
	}
}

func TestRedisStoreManySessionsOfOneSubject(t *testing.T) {
	store, _, _ := newStore(t)
	ctx := context.Background()
	const count = 1200 // more than one delete batch
	for i := range count {
		if err := store.Save(ctx, sessionFor(t, "https://idp.example", "eve", fmt.Sprint("sid-", i%3)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	n, err := store.DeleteBySubject(ctx, "https://idp.example", "eve")
	if err != nil || n != count {
		t.Fatalf("DeleteBySubject = %d, %v; want %d", n, err, count)
	}
}

func TestRedisStoreOutageIsAnError(t *testing.T) {
	addr := redistest.Addr(t)
	proxy := redistest.NewProxy(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := redistest.Config(t, addr)
	store := session.NewRedisStore(rdb, cfg.KeyPrefix, session.WithCodec(newCodec(t, newKey(t))), session.WithTimeout(500*time.Millisecond))
	ctx := context.Background()
	s := typicalSession(t)
	if err := store.Save(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	defer func() { _ = proxy.Start() }()
	start := time.Now()
	got, err := store.Load(ctx, s.ID)
	if err == nil || got != nil || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Load during an outage = %v, %v; want a store error (neither not-found nor invalid)", got, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Load during an outage took %v", d)
	}
	if _, err := store.DeleteBySID(ctx, "https://idp.example", "x"); err == nil {
		t.Fatal("DeleteBySID during an outage reported success")
	}
}
