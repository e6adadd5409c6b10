package keymgmt

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/audit"
)

// recorder is an audit.Logger that keeps events.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Log(e *audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, *e)
}

func (r *recorder) ofType(typ string) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	svc         *Service
	store       apikey.Store
	audit       *recorder
	clock       *clock
	mu          sync.Mutex
	invalidated []string
}

func (e *env) wasInvalidated(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.invalidated, id)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h, err := apikey.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, audit: &recorder{}, clock: &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	e.svc = &Service{
		Store:  st,
		Format: apikey.Format{Prefix: "gate_test_"},
		Hasher: h,
		Audit:  e.audit,
		Invalidate: func(id string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.invalidated = append(e.invalidated, id)
		},
		Now: e.clock.Now,
	}
	return e
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	if !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("ValidationError does not match apikey.ErrInvalid")
	}
	var out []string
	for _, f := range verr.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestCreateConsumerValidation(t *testing.T) {
	big := map[string]string{}
	for i := range 33 {
		big[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	for _, tc := range []struct {
		name string
		in   NewConsumer
		want []string
	}{
		{"missing name", NewConsumer{}, []string{"name"}},
		{"bad name", NewConsumer{Name: "has space"}, []string{"name"}},
		{"id-shaped name", NewConsumer{Name: "c_abcdefghijklmnop"}, []string{"name"}},
		{"bad group", NewConsumer{Name: "ok", Groups: []string{"fine", "-bad"}}, []string{"groups[1]"}},
		{"duplicate tag", NewConsumer{Name: "ok", Tags: []string{"a", "a"}}, []string{"tags[1]"}},
		{"too many metadata", NewConsumer{Name: "ok", Metadata: big}, []string{"metadata"}},
		{"long metadata key", NewConsumer{Name: "ok", Metadata: map[string]string{strings.Repeat("k", 65): "v"}}, []string{"metadata"}},
		{"long metadata value", NewConsumer{Name: "ok", Metadata: map[string]string{"team": strings.Repeat("v", 513)}}, []string{"metadata.team"}},
		{"several", NewConsumer{Name: "", Groups: []string{"x y"}, Tags: []string{""}}, []string{"name", "groups[0]", "tags[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.CreateConsumer(context.Background(), tc.in)
			if got := fieldsOf(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("fields = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCreateKeyValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	past := e.clock.Now().Add(-time.Second)
	now := e.clock.Now()
	for _, tc := range []struct {
		name string
		in   NewKey
		want []string
	}{
		{"bad name", NewKey{Name: "a b"}, []string{"name"}},
		{"bad scope", NewKey{Scopes: []string{"read", "has space"}}, []string{"scopes[1]"}},
		{"empty scope", NewKey{Scopes: []string{""}}, []string{"scopes[0]"}},
		{"bad route", NewKey{Routes: []string{"/x"}}, []string{"routes[0]"}},
		{"bad tier", NewKey{Tier: "gold tier"}, []string{"rate_limit_tier"}},
		{"past expiry", NewKey{ExpiresAt: &past}, []string{"expires_at"}},
		{"expiry now", NewKey{ExpiresAt: &now}, []string{"expires_at"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.svc.CreateKey(ctx, "acme", tc.in)
			if got := fieldsOf(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("fields = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme", Groups: []string{"partners"}, Metadata: map[string]string{"team": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("duplicate name: err = %v, want ErrConflict", err)
	}
	for _, ref := range []string{c.ID, "acme"} {
		got, err := e.svc.GetConsumer(ctx, ref)
		if err != nil || got.ID != c.ID {
			t.Fatalf("GetConsumer(%q) = %v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"nobody", "c_aaaaaaaaaaaaaaaa", "x/y", ""} {
		if _, err := e.svc.GetConsumer(ctx, ref); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("GetConsumer(%q) err = %v, want ErrNotFound", ref, err)
		}
	}

	exp := e.clock.Now().Add(48 * time.Hour)
	k, secret, err := e.svc.CreateKey(ctx, "acme", NewKey{Name: "ci", Scopes: []string{"read"}, Routes: []string{"orders"}, Tier: "gold", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Format.Check(secret); err != nil {
		t.Fatalf("secret does not pass Format.Check: %v", err)
	}
	found, fc, err := e.store.LookupKey(ctx, e.svc.Hasher.Hash(secret))
	if err != nil || found.ID != k.ID || fc.ID != c.ID {
		t.Fatalf("LookupKey = %v, %v, %v", found, fc, err)
	}
	if k.Hint != apikey.Hint(secret) || !k.Usable(e.clock.Now()) {
		t.Errorf("key = %+v", k)
	}

	// Rotate with a grace period.
	e.clock.Advance(time.Minute)
	grace := time.Hour
	nk, nsecret, old, err := e.svc.RotateKey(ctx, k.ID, &grace)
	if err != nil {
		t.Fatal(err)
	}
	if nsecret == secret || nk.ID == k.ID {
		t.Fatal("rotation reused the key")
	}
	if nk.Name != "ci" || !slices.Equal(nk.Scopes, []string{"read"}) || !slices.Equal(nk.Routes, []string{"orders"}) || nk.Tier != "gold" || !nk.ExpiresAt.Equal(exp) {
		t.Errorf("successor did not copy the old key: %+v", nk)
	}
	if old.RotatedTo != nk.ID || !old.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("old key = %+v", old)
	}
	stored, _ := e.svc.GetKey(ctx, k.ID)
	if !stored.Usable(e.clock.Now().Add(59*time.Minute)) || stored.Usable(e.clock.Now().Add(time.Hour)) {
		t.Errorf("old key usable window wrong: %+v", stored)
	}
	if !e.wasInvalidated(k.ID) {
		t.Error("rotation did not invalidate the old key")
	}
	if _, _, _, err := e.svc.RotateKey(ctx, k.ID, nil); !errors.Is(err, ErrKeyRotated) {
		t.Errorf("second rotation err = %v, want ErrKeyRotated", err)
	}

	// Grace 0 (the default RotationGrace): the old key stops at once.
	nk2, _, old2, err := e.svc.RotateKey(ctx, nk.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if old2.Usable(e.clock.Now()) {
		t.Error("old key still usable after rotation with zero grace")
	}

	// A grace past the old expiry keeps the old expiry.
	long := 100 * time.Hour
	_, _, old3, err := e.svc.RotateKey(ctx, nk2.ID, &long)
	if err != nil {
		t.Fatal(err)
	}
	if !old3.ExpiresAt.Equal(exp) {
		t.Errorf("grace extended the expiry: %v, want %v", old3.ExpiresAt, exp)
	}
	neg := -time.Second
	if _, _, _, err := e.svc.RotateKey(ctx, old3.RotatedTo, &neg); !slices.Equal(fieldsOf(t, err), []string{"grace"}) {
		t.Errorf("negative grace err = %v", err)
	}

	// Revoke: idempotent, invalidates, cannot rotate afterwards.
	r1, err := e.svc.RevokeKey(ctx, old3.RotatedTo)
	if err != nil || r1.Status != apikey.StatusRevoked || r1.RevokedAt == nil {
		t.Fatalf("RevokeKey = %+v, %v", r1, err)
	}
	r2, err := e.svc.RevokeKey(ctx, old3.RotatedTo)
	if err != nil || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Fatalf("second RevokeKey = %+v, %v", r2, err)
	}
	if !e.wasInvalidated(r1.ID) {
		t.Error("revocation did not invalidate")
	}
	if _, _, _, err := e.svc.RotateKey(ctx, r1.ID, nil); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("rotate revoked err = %v, want ErrKeyRevoked", err)
	}
	if got := e.audit.ofType(TypeKeyRevoked); len(got) != 1 {
		t.Errorf("%d revoke events, want 1", len(got))
	}

	keys, err := e.svc.ListKeys(ctx, "acme")
	if err != nil || len(keys) != 4 {
		t.Fatalf("ListKeys = %d keys, %v", len(keys), err)
	}
	if _, err := e.svc.ListKeys(ctx, "nobody"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("ListKeys(unknown) err = %v", err)
	}

	// Delete cascades and invalidates every key.
	if err := e.svc.DeleteConsumer(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !e.wasInvalidated(k.ID) {
			t.Errorf("key %s not invalidated on delete", k.ID)
		}
		if _, err := e.svc.GetKey(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("key %s survived its consumer: %v", k.ID, err)
		}
	}

	// Audit: one event per action, never a secret.
	for typ, n := range map[string]int{TypeConsumerCreated: 1, TypeKeyCreated: 4, TypeKeyRotated: 3, TypeKeyRevoked: 1, TypeConsumerDeleted: 1} {
		evs := e.audit.ofType(typ)
		if len(evs) != n {
			t.Errorf("%s: %d events, want %d", typ, len(evs), n)
		}
		for _, ev := range evs {
			if ev.Outcome != audit.OutcomeAllow || ev.Subject != c.ID || ev.ClientID != "acme" || ev.Reason != strings.TrimPrefix(typ, "apikey.") {
				t.Errorf("event %+v", ev)
			}
			if typ != TypeConsumerCreated && typ != TypeConsumerDeleted && !strings.HasPrefix(ev.CredentialID, "k_") {
				t.Errorf("event without key id: %+v", ev)
			}
		}
	}
	for _, ev := range e.audit.events {
		for _, s := range []string{secret, nsecret} {
			if strings.Contains(ev.CredentialID+ev.Subject+ev.ClientID+ev.Reason, s) {
				t.Errorf("event carries a secret: %+v", ev)
			}
		}
	}
}

func TestRotateExpiredKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	exp := e.clock.Now().Add(time.Minute)
	k, _, err := e.svc.CreateKey(ctx, "acme", NewKey{ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if _, _, _, err := e.svc.RotateKey(ctx, k.ID, nil); !errors.Is(err, ErrKeyExpired) {
		t.Errorf("err = %v, want ErrKeyExpired", err)
	}
	if _, _, _, err := e.svc.RotateKey(ctx, "not-a-key", nil); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentRotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, _, err := e.svc.CreateKey(ctx, "acme", NewKey{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, rotated := 0, 0
	for range 8 {
		wg.Go(func() {
			_, _, _, err := e.svc.RotateKey(ctx, k.ID, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrKeyRotated):
				rotated++
			default:
				t.Errorf("RotateKey: %v", err)
			}
		})
		wg.Go(func() {
			if _, err := e.svc.ListKeys(ctx, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || rotated != 7 {
		t.Errorf("%d rotations succeeded, %d refused; want 1 and 7", ok, rotated)
	}
}

func TestExpirySweep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) *time.Time { t := e.clock.Now().Add(d); return &t }
	k1, _, _ := e.svc.CreateKey(ctx, "acme", NewKey{ExpiresAt: at(10 * time.Minute)})
	k2, _, _ := e.svc.CreateKey(ctx, "acme", NewKey{ExpiresAt: at(30 * time.Minute)})
	k3, _, _ := e.svc.CreateKey(ctx, "acme", NewKey{ExpiresAt: at(10 * time.Minute)}) // revoked before expiry
	if _, _, err := e.svc.CreateKey(ctx, "acme", NewKey{}); err != nil {              // never expires
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeKey(ctx, k3.ID); err != nil {
		t.Fatal(err)
	}
	w := &expiryWatcher{s: e.svc, since: e.clock.Now(), start: e.clock.Now(), lookback: time.Minute, emitted: map[string]time.Time{}}
	expired := func() []string {
		var ids []string
		for _, ev := range e.audit.ofType(TypeKeyExpired) {
			ids = append(ids, ev.CredentialID)
			if ev.Subject == "" || ev.ClientID != "acme" || ev.Outcome != audit.OutcomeAllow {
				t.Errorf("event %+v", ev)
			}
		}
		return ids
	}
	w.sweep(ctx)
	if got := expired(); len(got) != 0 {
		t.Fatalf("expired before time: %v", got)
	}
	e.clock.Advance(10 * time.Minute)
	w.sweep(ctx)
	w.sweep(ctx) // same window again: nothing new
	e.clock.Advance(30 * time.Second)
	w.sweep(ctx) // overlapping window: k1 remembered
	if got := expired(); !slices.Equal(got, []string{k1.ID}) {
		t.Fatalf("expired = %v, want [%s]", got, k1.ID)
	}
	// A rotation with zero grace expires the old key at once.
	nk, _, _, err := e.svc.RotateKey(ctx, k2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	w.sweep(ctx)
	w.sweep(ctx)
	if got := expired(); !slices.Equal(got, []string{k1.ID, k2.ID, nk.ID}) {
		t.Fatalf("expired = %v, want [%s %s %s]", got, k1.ID, k2.ID, nk.ID)
	}
	if len(w.emitted) != 0 {
		t.Errorf("emitted set not pruned: %d entries", len(w.emitted))
	}
}

func TestWatchExpiry(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := e.svc.CreateConsumer(ctx, NewConsumer{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	exp := e.clock.Now().Add(time.Minute)
	k, _, err := e.svc.CreateKey(ctx, "acme", NewKey{ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.svc.WatchExpiry(ctx, time.Millisecond)
	}()
	time.Sleep(5 * time.Millisecond)
	e.clock.Advance(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for len(e.audit.ofType(TypeKeyExpired)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // more sweeps: still one event
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchExpiry did not return after cancel")
	}
	evs := e.audit.ofType(TypeKeyExpired)
	if len(evs) != 1 || evs[0].CredentialID != k.ID {
		t.Errorf("events = %+v, want one for %s", evs, k.ID)
	}
}
