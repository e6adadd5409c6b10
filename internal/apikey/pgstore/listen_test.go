package pgstore

import (
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"

	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// changes collects OnChange calls.
type changes chan string

func (ch changes) onChange(id string) {
	select {
	case ch <- id:
	default: // a test that stops reading must not block the listener forever
	}
}

// expect waits up to 2s for OnChange(want), skipping other ids.
func (ch changes) expect(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	var seen []string
	for {
		select {
		case id := <-ch:
			if id == want {
				return
			}
			seen = append(seen, id)
		case <-timeout:
			t.Fatalf("OnChange(%q) not called within 2s (got %q)", want, seen)
		}
	}
}

func TestNotify(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	a := openOn(t, dsn, Options{Schema: schema}) // replica A writes
	got := make(changes, 100)
	openOn(t, dsn, Options{Schema: schema, OnChange: got.onChange}) // replica B caches
	ctx := testCtx(t)

	c := newConsumer(t, a)
	k := newKey(t, a, c.ID)
	got.expect(t, k.ID) // CreateKey notifies (negative caches)

	now := time.Now().UTC()
	k.Status, k.RevokedAt = apikey.StatusRevoked, &now
	if err := a.UpdateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got.expect(t, k.ID)

	// A failed update notifies nothing (the notification is in the
	// statement's transaction).
	if err := a.UpdateKey(ctx, &apikey.Key{ID: "k_missing", Status: apikey.StatusActive}); err == nil {
		t.Fatal("UpdateKey of a missing key succeeded")
	}

	k2 := newKey(t, a, c.ID)
	got.expect(t, k2.ID)
	if err := a.DeleteConsumer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for range 2 {
		select {
		case id := <-got:
			deleted = append(deleted, id)
		case <-time.After(2 * time.Second):
			t.Fatalf("DeleteConsumer: notified %q, want both keys", deleted)
		}
	}
	slices.Sort(deleted)
	want := []string{k.ID, k2.ID}
	slices.Sort(want)
	if !slices.Equal(deleted, want) {
		t.Errorf("DeleteConsumer notified %q, want %q", deleted, want)
	}
	select {
	case id := <-got:
		t.Errorf("unexpected OnChange(%q)", id)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNotifyAfterReconnect(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := newTCPProxy(t, dsn)
	a := openOn(t, dsn, Options{Schema: schema})
	got := make(changes, 100)
	openOn(t, viaProxy, Options{Schema: schema, OnChange: got.onChange})
	c := newConsumer(t, a)

	proxy.Stop() // B's listening connection breaks
	k := newKey(t, a, c.ID)
	time.Sleep(200 * time.Millisecond)
	proxy.Start()

	// The notification sent during the outage is lost: B must flush.
	got.expect(t, FlushAll)
	k2 := newKey(t, a, c.ID)
	got.expect(t, k2.ID)
	_ = k
}

func TestCloseStopsListener(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	got := make(changes, 100)
	s, err := Open(context.Background(), dsn, Options{Schema: schema, OnChange: got.onChange})
	if err != nil {
		t.Fatal(err)
	}
	newConsumer(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitNoDriverGoroutines(t)

	// Nothing is delivered after Close.
	w := openOn(t, dsn, Options{Schema: schema})
	newKey(t, w, newConsumer(t, w).ID)
	select {
	case id := <-got:
		t.Errorf("OnChange(%q) after Close", id)
	case <-time.After(200 * time.Millisecond):
	}
}

// Close returns promptly even while the listener is backing off from a
// database that has gone away.
func TestCloseWhileReconnecting(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := newTCPProxy(t, dsn)
	s, err := Open(context.Background(), viaProxy, Options{Schema: schema, OnChange: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitNoDriverGoroutines(t)
}

// A listening connection that goes silent without being closed (a network
// partition) is noticed by the idle check, and replaced.
func TestListenerDetectsSilentConnection(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := newTCPProxy(t, dsn)
	a := openOn(t, dsn, Options{Schema: schema})
	cfg, err := pgx.ParseConfig(viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	got := make(changes, 100)
	l := &listener{cfg: cfg, onChange: got.onChange,
		idleCheck: 100 * time.Millisecond, pingWait: 200 * time.Millisecond, minBackoff: 10 * time.Millisecond}
	conn, err := connectListener(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, conn)
	}()
	defer func() {
		cancel()
		<-done
	}()

	c := newConsumer(t, a)
	got.expect(t, newKey(t, a, c.ID).ID)
	proxy.Freeze()
	got.expect(t, FlushAll)
	got.expect(t, newKey(t, a, c.ID).ID)
}
