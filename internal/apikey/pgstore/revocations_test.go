package pgstore

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// TestRevocationNotify: revocation-list writes notify the other replicas'
// OnRevocationChange (and not their key OnChange), failed writes do not,
// and a reconnect calls it (changes may have been missed). A store with
// only OnRevocationChange listens too.
func TestRevocationNotify(t *testing.T) {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	proxy, viaProxy := newTCPProxy(t, dsn)
	a := openOn(t, dsn, Options{Schema: schema})
	revs := make(changes, 100)
	keys := make(changes, 100)
	b := openOn(t, viaProxy, Options{Schema: schema, OnChange: keys.onChange, OnRevocationChange: func() { revs.onChange("rev") }})
	only := make(changes, 100)
	c := openOn(t, dsn, Options{Schema: schema, OnRevocationChange: func() { only.onChange("rev") }})
	if !b.Listening() || !c.Listening() {
		t.Fatal("stores with OnRevocationChange do not listen")
	}
	ctx := testCtx(t)
	now := time.Now().UTC()
	e := &revocation.Entry{ID: revocation.NewID(), Kind: revocation.KindJTI, Value: "j", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.AddRevocations(ctx, []*revocation.Entry{e}); err != nil {
		t.Fatal(err)
	}
	revs.expect(t, "rev")
	only.expect(t, "rev")
	if err := a.AddRevocations(ctx, []*revocation.Entry{e}); err == nil {
		t.Fatal("a duplicate id was stored")
	}
	if err := a.DeleteRevocation(ctx, revocation.NewID()); err == nil {
		t.Fatal("deleting an unknown entry succeeded")
	}
	if err := a.DeleteRevocation(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	revs.expect(t, "rev")
	select {
	case id := <-revs:
		t.Errorf("a failed write notified (%q)", id)
	case id := <-keys:
		t.Errorf("a revocation reached the key OnChange (%q)", id)
	case <-time.After(200 * time.Millisecond):
	}

	proxy.Stop() // b's listening connection breaks
	time.Sleep(200 * time.Millisecond)
	proxy.Start()
	revs.expect(t, "rev")
	keys.expect(t, FlushAll)
}
