// Package storetest is the conformance suite every apikey.Store must pass.
// A store package calls Run from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apikey.Store { return openEmpty(t) })
//	}
//
// Beyond the comments on apikey.Store, the suite pins down these contracts:
//
//   - Callers supply ids (apikey.NewConsumerID, apikey.NewKeyID) and
//     CreatedAt; stores do not invent them.
//   - Times come back in UTC with at least microsecond precision (stores may
//     truncate to microseconds, as PostgreSQL does).
//   - ListConsumers and ListKeys order by CreatedAt, then ID (byte order).
//     ListKeys of an unknown consumer is empty, not an error.
//   - Nil and empty slices and maps are interchangeable.
//   - GetKey and LookupKey return Hash.
//   - UpdateKey changes only Status, ExpiresAt, RevokedAt, RotatedTo, Name,
//     Scopes, Routes and Tier; it ignores ConsumerID, Hash, Hint, CreatedAt
//     and LastUsedAt (last use belongs to TouchKeys, so a stale copy cannot
//     roll it back). An unknown id is ErrNotFound.
//   - TouchKeys ignores unknown ids and never moves LastUsedAt backwards,
//     also under concurrent calls.
//   - Stores keep no reference to the caller's structs, nor hand out
//     references to their own state.
//   - After Close, methods fail with ErrUnavailable; a second Close does
//     not panic.
//   - Every store is also a revocation.Store: entries round-trip with
//     their times in UTC, ListRevocations leaves out entries expired at
//     the given time and orders by CreatedAt then ID, a taken id is
//     ErrConflict, deleting an unknown id is ErrNotFound, an invalid entry
//     is ErrInvalid, and PruneRevocations deletes exactly the expired ones.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// Run exercises every Store method against a fresh, empty store from open
// (called once per subtest; the store is closed by Run, so open need not
// register a Close of its own, though a second Close must be harmless).
func Run(t *testing.T, open func(t *testing.T) apikey.Store) {
	for _, tc := range []struct {
		name   string
		fn     func(t *testing.T, s apikey.Store)
		closes bool // the test closes the store itself
	}{
		{name: "ConsumerRoundTrip", fn: testConsumerRoundTrip},
		{name: "ConsumerNotFound", fn: testConsumerNotFound},
		{name: "ConsumerConflicts", fn: testConsumerConflicts},
		{name: "ListConsumers", fn: testListConsumers},
		{name: "DeleteConsumer", fn: testDeleteConsumer},
		{name: "KeyRoundTrip", fn: testKeyRoundTrip},
		{name: "CreateKeyErrors", fn: testCreateKeyErrors},
		{name: "ListKeys", fn: testListKeys},
		{name: "LookupKey", fn: testLookupKey},
		{name: "UpdateKey", fn: testUpdateKey},
		{name: "UpdateKeyImmutableFields", fn: testUpdateKeyImmutable},
		{name: "TouchKeys", fn: testTouchKeys},
		{name: "Isolation", fn: testIsolation},
		{name: "Concurrency", fn: testConcurrency},
		{name: "KeyJSONHidesHash", fn: testKeyJSONHidesHash},
		{name: "Revocations", fn: testRevocations},
		{name: "RevocationsExpire", fn: testRevocationsExpire},
		{name: "RevocationsInvalid", fn: testRevocationsInvalid},
		{name: "Users", fn: testUsers},
		{name: "Closed", fn: testClosed, closes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			t.Cleanup(func() {
				if tc.closes {
					_ = s.Close() // must not panic; its error is free
					return
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// zone is deliberately not UTC: stores must return UTC.
var zone = time.FixedZone("UTC+05:30", 5*3600+30*60)

// base has sub-microsecond digits below half a microsecond, so a store that
// truncates and one that rounds to microseconds agree.
var base = time.Date(2026, 3, 14, 15, 9, 26, 123_456_400, zone)

func at(offset time.Duration) time.Time { return base.Add(offset) }

func ptr[T any](v T) *T { return &v }

func randomHash(t *testing.T) []byte {
	t.Helper()
	h := make([]byte, 32)
	if _, err := rand.Read(h); err != nil {
		t.Fatal(err)
	}
	return h
}

func newConsumer(name string) *apikey.Consumer {
	return &apikey.Consumer{ID: apikey.NewConsumerID(), Name: name, CreatedAt: base}
}

func newKey(t *testing.T, consumerID string) *apikey.Key {
	return &apikey.Key{
		ID:         apikey.NewKeyID(),
		ConsumerID: consumerID,
		Hash:       randomHash(t),
		Hint:       "gate_live_…a1b2",
		Status:     apikey.StatusActive,
		CreatedAt:  base,
	}
}

func mustCreateConsumer(t *testing.T, s apikey.Store, c *apikey.Consumer) *apikey.Consumer {
	t.Helper()
	if err := s.CreateConsumer(context.Background(), c); err != nil {
		t.Fatalf("CreateConsumer(%s): %v", c.ID, err)
	}
	return c
}

func mustCreateKey(t *testing.T, s apikey.Store, k *apikey.Key) *apikey.Key {
	t.Helper()
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
	return k
}

func mustGetKey(t *testing.T, s apikey.Store, id string) *apikey.Key {
	t.Helper()
	k, err := s.GetKey(context.Background(), id)
	if err != nil {
		t.Fatalf("GetKey(%s): %v", id, err)
	}
	if k == nil {
		t.Fatalf("GetKey(%s) returned nil", id)
	}
	return k
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

// sameTime compares at microsecond precision and requires UTC.
func sameTime(got, want time.Time) string {
	if !got.Truncate(time.Microsecond).Equal(want.Truncate(time.Microsecond)) {
		return fmt.Sprintf("%s, want %s", got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if got.Location() != time.UTC {
		return fmt.Sprintf("%s is in %s, want UTC", got.Format(time.RFC3339Nano), got.Location())
	}
	return ""
}

func sameTimePtr(got, want *time.Time) string {
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil:
		return "nil, want " + want.Format(time.RFC3339Nano)
	case want == nil:
		return got.Format(time.RFC3339Nano) + ", want nil"
	}
	return sameTime(*got, *want)
}

func sameStrings(got, want []string) string {
	if len(got) == 0 && len(want) == 0 {
		return ""
	}
	if !slices.Equal(got, want) {
		return fmt.Sprintf("%q, want %q", got, want)
	}
	return ""
}

func diffConsumer(got, want *apikey.Consumer) []string {
	var d []string
	add := func(field, msg string) {
		if msg != "" {
			d = append(d, field+": "+msg)
		}
	}
	if got == nil {
		return []string{"consumer is nil"}
	}
	if got.ID != want.ID {
		add("ID", fmt.Sprintf("%q, want %q", got.ID, want.ID))
	}
	if got.Name != want.Name {
		add("Name", fmt.Sprintf("%q, want %q", got.Name, want.Name))
	}
	add("Groups", sameStrings(got.Groups, want.Groups))
	add("Tags", sameStrings(got.Tags, want.Tags))
	if !(len(got.Metadata) == 0 && len(want.Metadata) == 0) && !maps.Equal(got.Metadata, want.Metadata) {
		add("Metadata", fmt.Sprintf("%v, want %v", got.Metadata, want.Metadata))
	}
	add("CreatedAt", sameTime(got.CreatedAt, want.CreatedAt))
	return d
}

func diffKey(got, want *apikey.Key) []string {
	var d []string
	add := func(field, msg string) {
		if msg != "" {
			d = append(d, field+": "+msg)
		}
	}
	str := func(field, g, w string) {
		if g != w {
			add(field, fmt.Sprintf("%q, want %q", g, w))
		}
	}
	if got == nil {
		return []string{"key is nil"}
	}
	str("ID", got.ID, want.ID)
	str("ConsumerID", got.ConsumerID, want.ConsumerID)
	if !bytes.Equal(got.Hash, want.Hash) {
		add("Hash", fmt.Sprintf("%x, want %x", got.Hash, want.Hash))
	}
	str("Hint", got.Hint, want.Hint)
	str("Name", got.Name, want.Name)
	add("Scopes", sameStrings(got.Scopes, want.Scopes))
	add("Routes", sameStrings(got.Routes, want.Routes))
	str("Tier", got.Tier, want.Tier)
	str("Status", string(got.Status), string(want.Status))
	add("CreatedAt", sameTime(got.CreatedAt, want.CreatedAt))
	add("ExpiresAt", sameTimePtr(got.ExpiresAt, want.ExpiresAt))
	add("RevokedAt", sameTimePtr(got.RevokedAt, want.RevokedAt))
	str("RotatedTo", got.RotatedTo, want.RotatedTo)
	add("LastUsedAt", sameTimePtr(got.LastUsedAt, want.LastUsedAt))
	return d
}

func checkConsumer(t *testing.T, what string, got, want *apikey.Consumer) {
	t.Helper()
	if d := diffConsumer(got, want); len(d) > 0 {
		t.Fatalf("%s:\n  %s", what, strings.Join(d, "\n  "))
	}
}

func checkKey(t *testing.T, what string, got, want *apikey.Key) {
	t.Helper()
	if d := diffKey(got, want); len(d) > 0 {
		t.Fatalf("%s:\n  %s", what, strings.Join(d, "\n  "))
	}
}

func consumerIDs(cs []*apikey.Consumer) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func keyIDs(ks []*apikey.Key) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

// ordered returns the ids of items sorted by created_at (at microsecond
// precision), then id: the order List* must use.
func ordered[T any](items []T, id func(T) string, created func(T) time.Time) []string {
	items = slices.Clone(items)
	slices.SortStableFunc(items, func(a, b T) int {
		if c := created(a).Truncate(time.Microsecond).Compare(created(b).Truncate(time.Microsecond)); c != 0 {
			return c
		}
		return strings.Compare(id(a), id(b))
	})
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = id(it)
	}
	return ids
}

func sortedKeyIDs(ks []*apikey.Key) []string {
	return ordered(ks, func(k *apikey.Key) string { return k.ID }, func(k *apikey.Key) time.Time { return k.CreatedAt })
}

func sortedConsumerIDs(cs []*apikey.Consumer) []string {
	return ordered(cs, func(c *apikey.Consumer) string { return c.ID }, func(c *apikey.Consumer) time.Time { return c.CreatedAt })
}

func testConsumerRoundTrip(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		c    *apikey.Consumer
	}{
		{"minimal", &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "minimal", CreatedAt: base}},
		{"full", &apikey.Consumer{
			ID:        apikey.NewConsumerID(),
			Name:      "billing-service",
			Groups:    []string{"payments", "internal"},
			Tags:      []string{"tier-1", "team.billing"},
			Metadata:  map[string]string{"owner": "alice@example.com", "cost_center": "42", "note": "ünïcødé, \"quotes\" and\nnewlines", "empty": ""},
			CreatedAt: at(time.Hour),
		}},
		{"empty collections", &apikey.Consumer{
			ID: apikey.NewConsumerID(), Name: "empty.collections",
			Groups: []string{}, Tags: []string{}, Metadata: map[string]string{}, CreatedAt: at(-time.Hour),
		}},
		{"UTC input", &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "utc", CreatedAt: base.UTC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustCreateConsumer(t, s, tc.c)
			got, err := s.GetConsumer(ctx, tc.c.ID)
			if err != nil {
				t.Fatalf("GetConsumer: %v", err)
			}
			checkConsumer(t, "GetConsumer", got, tc.c)
			got, err = s.GetConsumerByName(ctx, tc.c.Name)
			if err != nil {
				t.Fatalf("GetConsumerByName: %v", err)
			}
			checkConsumer(t, "GetConsumerByName", got, tc.c)
		})
	}
}

func testConsumerNotFound(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	mustCreateConsumer(t, s, newConsumer("present"))
	_, err := s.GetConsumer(ctx, apikey.NewConsumerID())
	wantErr(t, "GetConsumer(unknown)", err, apikey.ErrNotFound)
	_, err = s.GetConsumerByName(ctx, "absent")
	wantErr(t, "GetConsumerByName(unknown)", err, apikey.ErrNotFound)
	_, err = s.GetConsumer(ctx, "")
	wantErr(t, `GetConsumer("")`, err, apikey.ErrNotFound)
	wantErr(t, "DeleteConsumer(unknown)", s.DeleteConsumer(ctx, apikey.NewConsumerID()), apikey.ErrNotFound)
}

func testConsumerConflicts(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	orig := mustCreateConsumer(t, s, &apikey.Consumer{
		ID: apikey.NewConsumerID(), Name: "taken", Groups: []string{"g"}, CreatedAt: base,
	})
	for _, tc := range []struct {
		name string
		c    *apikey.Consumer
	}{
		{"duplicate id", &apikey.Consumer{ID: orig.ID, Name: "other-name", CreatedAt: base}},
		{"duplicate name", &apikey.Consumer{ID: apikey.NewConsumerID(), Name: orig.Name, CreatedAt: base}},
		{"duplicate both", &apikey.Consumer{ID: orig.ID, Name: orig.Name, CreatedAt: base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "CreateConsumer", s.CreateConsumer(ctx, tc.c), apikey.ErrConflict)
			got, err := s.GetConsumer(ctx, orig.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkConsumer(t, "original after conflict", got, orig)
			if tc.c.ID != orig.ID {
				_, err := s.GetConsumer(ctx, tc.c.ID)
				wantErr(t, "GetConsumer(rejected id)", err, apikey.ErrNotFound)
			}
			if tc.c.Name != orig.Name {
				_, err := s.GetConsumerByName(ctx, tc.c.Name)
				wantErr(t, "GetConsumerByName(rejected name)", err, apikey.ErrNotFound)
			}
		})
	}
	list, err := s.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("ListConsumers after conflicts = %q, want only %s", consumerIDs(list), orig.ID)
	}
}

func testListConsumers(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	list, err := s.ListConsumers(ctx)
	if err != nil {
		t.Fatalf("ListConsumers on empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("empty store lists %d consumers", len(list))
	}
	// Created out of order, with a tie on created_at broken by id.
	offsets := []time.Duration{3 * time.Second, time.Second, 2 * time.Second, time.Second, -time.Hour}
	var created []*apikey.Consumer
	want := make(map[string]*apikey.Consumer)
	for i, off := range offsets {
		c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: fmt.Sprintf("consumer-%d", i), Tags: []string{fmt.Sprint(i)}, CreatedAt: at(off)}
		mustCreateConsumer(t, s, c)
		want[c.ID] = c
		created = append(created, c)
	}
	list, err = s.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, wantIDs := consumerIDs(list), sortedConsumerIDs(created); !slices.Equal(got, wantIDs) {
		t.Fatalf("ListConsumers order = %q, want %q (created_at, then id)", got, wantIDs)
	}
	for _, c := range list {
		checkConsumer(t, "listed consumer "+c.ID, c, want[c.ID])
	}
}

func testDeleteConsumer(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	doomed := mustCreateConsumer(t, s, newConsumer("doomed"))
	kept := mustCreateConsumer(t, s, newConsumer("kept"))
	var doomedKeys []*apikey.Key
	for range 3 {
		doomedKeys = append(doomedKeys, mustCreateKey(t, s, newKey(t, doomed.ID)))
	}
	keptKey := mustCreateKey(t, s, newKey(t, kept.ID))

	if err := s.DeleteConsumer(ctx, doomed.ID); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	_, err := s.GetConsumer(ctx, doomed.ID)
	wantErr(t, "GetConsumer after delete", err, apikey.ErrNotFound)
	_, err = s.GetConsumerByName(ctx, doomed.Name)
	wantErr(t, "GetConsumerByName after delete", err, apikey.ErrNotFound)
	for _, k := range doomedKeys {
		_, err := s.GetKey(ctx, k.ID)
		wantErr(t, "GetKey of a deleted consumer's key", err, apikey.ErrNotFound)
		_, _, err = s.LookupKey(ctx, k.Hash)
		wantErr(t, "LookupKey of a deleted consumer's key", err, apikey.ErrNotFound)
	}
	if ks, err := s.ListKeys(ctx, doomed.ID); err != nil || len(ks) != 0 {
		t.Fatalf("ListKeys(deleted consumer) = %q, %v; want empty, nil", keyIDs(ks), err)
	}
	all, err := s.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(all); !slices.Equal(got, []string{keptKey.ID}) {
		t.Fatalf("ListKeys(all) after delete = %q, want %q", got, []string{keptKey.ID})
	}
	cs, err := s.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := consumerIDs(cs); !slices.Equal(got, []string{kept.ID}) {
		t.Fatalf("ListConsumers after delete = %q, want %q", got, []string{kept.ID})
	}
	if k, c, err := s.LookupKey(ctx, keptKey.Hash); err != nil || k.ID != keptKey.ID || c.ID != kept.ID {
		t.Fatalf("other consumer's key after delete: %v", err)
	}

	wantErr(t, "second DeleteConsumer", s.DeleteConsumer(ctx, doomed.ID), apikey.ErrNotFound)
	wantErr(t, "CreateKey for deleted consumer", s.CreateKey(ctx, newKey(t, doomed.ID)), apikey.ErrNotFound)

	// The name, the key ids and the hashes are free again.
	reborn := mustCreateConsumer(t, s, newConsumer(doomed.Name))
	again := doomedKeys[0]
	again.ConsumerID = reborn.ID
	mustCreateKey(t, s, again)
	if k, c, err := s.LookupKey(ctx, again.Hash); err != nil || k.ID != again.ID || c.ID != reborn.ID {
		t.Fatalf("reusing a deleted key's id and hash: %v", err)
	}
}

func fullKey(t *testing.T, consumerID string) *apikey.Key {
	k := newKey(t, consumerID)
	k.Name = "ci deploy key — ünïcødé"
	k.Scopes = []string{"orders:read", "orders:write", "https://api.example.com/x"}
	k.Routes = []string{"orders-api", "tag:public"}
	k.Tier = "gold"
	k.CreatedAt = at(time.Minute)
	k.ExpiresAt = ptr(at(90 * 24 * time.Hour))
	return k
}

func testKeyRoundTrip(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	for _, tc := range []struct {
		name string
		k    *apikey.Key
	}{
		{"minimal", newKey(t, c.ID)},
		{"full", fullKey(t, c.ID)},
		{"revoked and rotated", func() *apikey.Key {
			k := fullKey(t, c.ID)
			k.Status = apikey.StatusRevoked
			k.RevokedAt = ptr(at(2 * time.Minute))
			k.RotatedTo = apikey.NewKeyID()
			return k
		}()},
		{"empty collections", func() *apikey.Key {
			k := newKey(t, c.ID)
			k.Scopes, k.Routes = []string{}, []string{}
			return k
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustCreateKey(t, s, tc.k)
			checkKey(t, "GetKey", mustGetKey(t, s, tc.k.ID), tc.k)
		})
	}
	_, err := s.GetKey(ctx, apikey.NewKeyID())
	wantErr(t, "GetKey(unknown)", err, apikey.ErrNotFound)
	_, err = s.GetKey(ctx, "")
	wantErr(t, `GetKey("")`, err, apikey.ErrNotFound)
}

func testCreateKeyErrors(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	orig := mustCreateKey(t, s, fullKey(t, c.ID))
	for _, tc := range []struct {
		name   string
		mutate func(k *apikey.Key)
		want   error
	}{
		{"duplicate id", func(k *apikey.Key) { k.ID = orig.ID }, apikey.ErrConflict},
		{"duplicate hash", func(k *apikey.Key) { k.Hash = bytes.Clone(orig.Hash) }, apikey.ErrConflict},
		{"duplicate id and hash", func(k *apikey.Key) { k.ID, k.Hash = orig.ID, bytes.Clone(orig.Hash) }, apikey.ErrConflict},
		{"unknown consumer", func(k *apikey.Key) { k.ConsumerID = apikey.NewConsumerID() }, apikey.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, c.ID)
			tc.mutate(k)
			wantErr(t, "CreateKey", s.CreateKey(ctx, k), tc.want)
			checkKey(t, "original after rejected create", mustGetKey(t, s, orig.ID), orig)
			// Nothing of the rejected key was written.
			if k.ID != orig.ID {
				_, err := s.GetKey(ctx, k.ID)
				wantErr(t, "GetKey(rejected key)", err, apikey.ErrNotFound)
			}
			if !bytes.Equal(k.Hash, orig.Hash) {
				_, _, err := s.LookupKey(ctx, k.Hash)
				wantErr(t, "LookupKey(rejected key)", err, apikey.ErrNotFound)
			}
			got, _, err := s.LookupKey(ctx, orig.Hash)
			if err != nil || got.ID != orig.ID {
				t.Fatalf("LookupKey(original) after rejected create: %v", err)
			}
		})
	}
	all, err := s.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(all); !slices.Equal(got, []string{orig.ID}) {
		t.Fatalf("ListKeys after rejected creates = %q, want %q", got, []string{orig.ID})
	}
}

func testListKeys(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	a := mustCreateConsumer(t, s, newConsumer("a"))
	b := mustCreateConsumer(t, s, newConsumer("b"))
	keyless := mustCreateConsumer(t, s, newConsumer("keyless"))

	if ks, err := s.ListKeys(ctx, ""); err != nil || len(ks) != 0 {
		t.Fatalf("ListKeys on a store without keys = %q, %v", keyIDs(ks), err)
	}
	var aKeys, bKeys []*apikey.Key
	offsets := []time.Duration{5 * time.Second, 0, 3 * time.Second, 0, 0, -time.Hour, time.Microsecond}
	for i, off := range offsets {
		k := newKey(t, a.ID)
		if i%2 == 1 {
			k.ConsumerID = b.ID
		}
		k.Name = fmt.Sprint("key-", i)
		k.CreatedAt = at(off)
		mustCreateKey(t, s, k)
		if k.ConsumerID == a.ID {
			aKeys = append(aKeys, k)
		} else {
			bKeys = append(bKeys, k)
		}
	}
	byID := make(map[string]*apikey.Key)
	for _, k := range append(slices.Clone(aKeys), bKeys...) {
		byID[k.ID] = k
	}
	for _, tc := range []struct {
		name       string
		consumerID string
		want       []string
	}{
		{"consumer a", a.ID, sortedKeyIDs(aKeys)},
		{"consumer b", b.ID, sortedKeyIDs(bKeys)},
		{"all", "", sortedKeyIDs(append(slices.Clone(aKeys), bKeys...))},
		{"consumer without keys", keyless.ID, nil},
		{"unknown consumer", apikey.NewConsumerID(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.consumerID
			ks, err := s.ListKeys(ctx, id)
			if err != nil {
				t.Fatalf("ListKeys: %v", err)
			}
			if got := keyIDs(ks); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("ListKeys(%q) = %q, want %q (created_at, then id)", id, got, tc.want)
			}
			for _, k := range ks {
				checkKey(t, "listed key "+k.ID, k, byID[k.ID])
			}
		})
	}
}

func testLookupKey(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, &apikey.Consumer{
		ID: apikey.NewConsumerID(), Name: "looked-up", Groups: []string{"partners"},
		Tags: []string{"eu"}, Metadata: map[string]string{"plan": "pro"}, CreatedAt: base,
	})
	other := mustCreateConsumer(t, s, newConsumer("other"))
	k := mustCreateKey(t, s, fullKey(t, c.ID))
	mustCreateKey(t, s, newKey(t, other.ID))

	gotKey, gotConsumer, err := s.LookupKey(ctx, k.Hash)
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	checkKey(t, "LookupKey key", gotKey, k)
	checkConsumer(t, "LookupKey consumer", gotConsumer, c)

	for _, tc := range []struct {
		name string
		hash []byte
	}{
		{"unknown hash", randomHash(t)},
		{"empty hash", []byte{}},
		{"nil hash", nil},
		{"prefix of a hash", k.Hash[:16]},
		{"hash plus a byte", append(bytes.Clone(k.Hash), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.LookupKey(ctx, tc.hash)
			wantErr(t, "LookupKey", err, apikey.ErrNotFound)
		})
	}
}

func testUpdateKey(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	k := mustCreateKey(t, s, fullKey(t, c.ID))
	// Each step applies to the result of the previous one, so fields are
	// both set and cleared.
	for _, tc := range []struct {
		name   string
		mutate func(k *apikey.Key)
	}{
		{"rename", func(k *apikey.Key) { k.Name = "renamed" }},
		{"clear name", func(k *apikey.Key) { k.Name = "" }},
		{"change scopes", func(k *apikey.Key) { k.Scopes = []string{"admin"} }},
		{"clear scopes", func(k *apikey.Key) { k.Scopes = nil }},
		{"change routes", func(k *apikey.Key) { k.Routes = []string{"a", "b", "c"} }},
		{"clear routes", func(k *apikey.Key) { k.Routes = []string{} }},
		{"change tier", func(k *apikey.Key) { k.Tier = "bronze" }},
		{"clear tier", func(k *apikey.Key) { k.Tier = "" }},
		{"clear expiry", func(k *apikey.Key) { k.ExpiresAt = nil }},
		{"set expiry", func(k *apikey.Key) { k.ExpiresAt = ptr(at(7 * 24 * time.Hour)) }},
		{"rotate", func(k *apikey.Key) {
			k.RotatedTo = apikey.NewKeyID()
			k.ExpiresAt = ptr(at(24 * time.Hour).UTC())
		}},
		{"revoke", func(k *apikey.Key) {
			k.Status = apikey.StatusRevoked
			k.RevokedAt = ptr(at(time.Hour + 987*time.Nanosecond))
		}},
		{"reinstate", func(k *apikey.Key) {
			k.Status = apikey.StatusActive
			k.RevokedAt = nil
			k.RotatedTo = ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := mustGetKey(t, s, k.ID)
			tc.mutate(cur)
			if err := s.UpdateKey(ctx, cur); err != nil {
				t.Fatalf("UpdateKey: %v", err)
			}
			checkKey(t, "GetKey after UpdateKey", mustGetKey(t, s, k.ID), cur)
			got, _, err := s.LookupKey(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			checkKey(t, "LookupKey after UpdateKey", got, cur)
		})
	}
	unknown := newKey(t, c.ID)
	wantErr(t, "UpdateKey(unknown)", s.UpdateKey(ctx, unknown), apikey.ErrNotFound)
	if _, err := s.GetKey(ctx, unknown.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("UpdateKey(unknown) created the key: %v", err)
	}
}

func testUpdateKeyImmutable(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	other := mustCreateConsumer(t, s, newConsumer("other"))
	k := mustCreateKey(t, s, fullKey(t, c.ID))
	used := at(10 * time.Minute)
	if err := s.TouchKeys(ctx, map[string]time.Time{k.ID: used}); err != nil {
		t.Fatal(err)
	}
	want := mustGetKey(t, s, k.ID)

	stale := *want
	stale.ConsumerID = other.ID
	stale.Hash = randomHash(t)
	stale.Hint = "gate_live_…XXXX"
	stale.CreatedAt = at(-24 * time.Hour)
	stale.LastUsedAt = nil
	stale.Name = "mutable"
	if err := s.UpdateKey(ctx, &stale); err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want.Name = "mutable"
	checkKey(t, "immutable fields after UpdateKey", mustGetKey(t, s, k.ID), want)
	if gotKey, gotConsumer, err := s.LookupKey(ctx, k.Hash); err != nil || gotKey.ID != k.ID || gotConsumer.ID != c.ID {
		t.Fatalf("LookupKey(original hash) after UpdateKey: %v", err)
	}
	_, _, err := s.LookupKey(ctx, stale.Hash)
	wantErr(t, "LookupKey(hash passed to UpdateKey)", err, apikey.ErrNotFound)
	if ks, err := s.ListKeys(ctx, other.ID); err != nil || len(ks) != 0 {
		t.Fatalf("UpdateKey moved the key to another consumer: %q, %v", keyIDs(ks), err)
	}
}

func testTouchKeys(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	k1 := mustCreateKey(t, s, newKey(t, c.ID))
	k2 := mustCreateKey(t, s, newKey(t, c.ID))
	k3 := mustCreateKey(t, s, newKey(t, c.ID))

	if err := s.TouchKeys(ctx, nil); err != nil {
		t.Fatalf("TouchKeys(nil): %v", err)
	}
	if err := s.TouchKeys(ctx, map[string]time.Time{}); err != nil {
		t.Fatalf("TouchKeys(empty): %v", err)
	}
	t1 := at(time.Hour) // sub-microsecond digits, non-UTC zone
	for _, tc := range []struct {
		name  string
		touch map[string]time.Time
		want  map[string]*time.Time // expected LastUsedAt after the step
	}{
		{"first use, unknown ids ignored",
			map[string]time.Time{k1.ID: t1, k2.ID: t1.Add(time.Second), apikey.NewKeyID(): t1, "": t1},
			map[string]*time.Time{k1.ID: &t1, k2.ID: ptr(t1.Add(time.Second)), k3.ID: nil}},
		{"later use advances",
			map[string]time.Time{k1.ID: t1.Add(time.Minute)},
			map[string]*time.Time{k1.ID: ptr(t1.Add(time.Minute)), k2.ID: ptr(t1.Add(time.Second)), k3.ID: nil}},
		{"earlier use never moves back",
			map[string]time.Time{k1.ID: t1, k2.ID: t1.Add(-time.Microsecond), k3.ID: t1.Add(-time.Hour)},
			map[string]*time.Time{k1.ID: ptr(t1.Add(time.Minute)), k2.ID: ptr(t1.Add(time.Second)), k3.ID: ptr(t1.Add(-time.Hour))}},
		{"same time is harmless",
			map[string]time.Time{k2.ID: t1.Add(time.Second)},
			map[string]*time.Time{k1.ID: ptr(t1.Add(time.Minute)), k2.ID: ptr(t1.Add(time.Second)), k3.ID: ptr(t1.Add(-time.Hour))}},
		{"one microsecond later advances",
			map[string]time.Time{k3.ID: t1.Add(-time.Hour + time.Microsecond).UTC()},
			map[string]*time.Time{k1.ID: ptr(t1.Add(time.Minute)), k2.ID: ptr(t1.Add(time.Second)), k3.ID: ptr(t1.Add(-time.Hour + time.Microsecond))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.TouchKeys(ctx, tc.touch); err != nil {
				t.Fatalf("TouchKeys: %v", err)
			}
			for id, want := range tc.want {
				got := mustGetKey(t, s, id)
				if d := sameTimePtr(got.LastUsedAt, want); d != "" {
					t.Fatalf("LastUsedAt of %s: %s", id, d)
				}
			}
		})
	}
	// Other fields are untouched, and LookupKey sees the last use.
	got, _, err := s.LookupKey(ctx, k1.Hash)
	if err != nil {
		t.Fatal(err)
	}
	want := *k1
	want.LastUsedAt = ptr(t1.Add(time.Minute))
	checkKey(t, "LookupKey after TouchKeys", got, &want)
}

func testIsolation(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := &apikey.Consumer{
		ID: apikey.NewConsumerID(), Name: "isolated", Groups: []string{"g"},
		Tags: []string{"t"}, Metadata: map[string]string{"k": "v"}, CreatedAt: base,
	}
	mustCreateConsumer(t, s, c)
	wantC := *c
	wantC.Groups, wantC.Tags, wantC.Metadata = []string{"g"}, []string{"t"}, map[string]string{"k": "v"}
	c.Name, c.Groups[0], c.Tags[0], c.Metadata["k"] = "changed", "changed", "changed", "changed"

	k := fullKey(t, wantC.ID)
	mustCreateKey(t, s, k)
	wantK := *k
	wantK.Hash, wantK.Scopes, wantK.Routes = bytes.Clone(k.Hash), slices.Clone(k.Scopes), slices.Clone(k.Routes)
	wantK.ExpiresAt = ptr(*k.ExpiresAt)
	k.Hash[0] ^= 0xff
	k.Scopes[0], k.Routes[0], k.Name = "changed", "changed", "changed"
	*k.ExpiresAt = k.ExpiresAt.Add(time.Hour)

	got, err := s.GetConsumer(ctx, wantC.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkConsumer(t, "consumer after the caller changed its struct", got, &wantC)
	got.Groups[0], got.Metadata["k"] = "changed again", "changed again"
	again, err := s.GetConsumer(ctx, wantC.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkConsumer(t, "consumer after the caller changed a returned struct", again, &wantC)

	gotK := mustGetKey(t, s, wantK.ID)
	checkKey(t, "key after the caller changed its struct", gotK, &wantK)
	gotK.Hash[0] ^= 0xff
	gotK.Scopes[0] = "changed again"
	checkKey(t, "key after the caller changed a returned struct", mustGetKey(t, s, wantK.ID), &wantK)
	if _, _, err := s.LookupKey(ctx, wantK.Hash); err != nil {
		t.Fatalf("LookupKey(original hash): %v", err)
	}
}

func testConcurrency(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("busy"))
	probe := mustCreateKey(t, s, newKey(t, c.ID))

	const writers = 50
	keys := make([]*apikey.Key, writers)
	for i := range keys {
		keys[i] = newKey(t, c.ID)
		keys[i].Name = fmt.Sprint("concurrent-", i)
		keys[i].CreatedAt = at(time.Duration(i%7) * time.Millisecond)
	}
	start := make(chan struct{})
	done := make(chan struct{})
	errs := make(chan error, 2*writers+8)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			<-start
			if err := s.CreateKey(ctx, k); err != nil {
				errs <- fmt.Errorf("CreateKey(%s): %w", k.ID, err)
			}
		})
	}
	// Readers and last-use writers on a key that already exists, alongside
	// the creates; the latest touch must win whatever the interleaving.
	var latest time.Time
	for i := range 4 {
		touchAt := at(time.Duration(i+1) * time.Hour)
		if touchAt.After(latest) {
			latest = touchAt
		}
		wg.Go(func() {
			<-start
			if err := s.TouchKeys(ctx, map[string]time.Time{probe.ID: touchAt}); err != nil {
				errs <- fmt.Errorf("TouchKeys: %w", err)
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			<-start
			for {
				select {
				case <-done:
					return
				default:
				}
				if k, _, err := s.LookupKey(ctx, probe.Hash); err != nil || k.ID != probe.ID {
					errs <- fmt.Errorf("LookupKey during writes: %v", err)
					return
				}
				if _, err := s.ListKeys(ctx, c.ID); err != nil {
					errs <- fmt.Errorf("ListKeys during writes: %w", err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	list, err := s.ListKeys(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != writers+1 {
		t.Fatalf("ListKeys = %d keys, want %d", len(list), writers+1)
	}
	if got, want := keyIDs(list), sortedKeyIDs(append(slices.Clone(keys), probe)); !slices.Equal(got, want) {
		t.Fatalf("ListKeys order = %q, want %q", got, want)
	}
	for _, k := range keys {
		checkKey(t, "GetKey", mustGetKey(t, s, k.ID), k)
		got, gotC, err := s.LookupKey(ctx, k.Hash)
		if err != nil || got.ID != k.ID || gotC.ID != c.ID {
			t.Fatalf("LookupKey(%s): %v", k.ID, err)
		}
	}
	if d := sameTimePtr(mustGetKey(t, s, probe.ID).LastUsedAt, &latest); d != "" {
		t.Fatalf("LastUsedAt after concurrent touches: %s", d)
	}
}

func testKeyJSONHidesHash(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	k := mustCreateKey(t, s, fullKey(t, c.ID))
	got := mustGetKey(t, s, k.ID)
	looked, _, err := s.LookupKey(ctx, k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := s.ListKeys(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{got, looked, listed} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{
			`"hash"`,
			base64.StdEncoding.EncodeToString(k.Hash),
			base64.RawURLEncoding.EncodeToString(k.Hash),
			hex.EncodeToString(k.Hash),
		} {
			if strings.Contains(strings.ToLower(string(out)), strings.ToLower(leak)) {
				t.Fatalf("JSON of a stored key exposes its hash (%s): %s", leak, out)
			}
		}
	}
}

func testClosed(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	c := mustCreateConsumer(t, s, newConsumer("owner"))
	k := mustCreateKey(t, s, newKey(t, c.ID))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateConsumer", func() error { return s.CreateConsumer(ctx, newConsumer("late")) }},
		{"GetConsumer", func() error { _, err := s.GetConsumer(ctx, c.ID); return err }},
		{"GetConsumerByName", func() error { _, err := s.GetConsumerByName(ctx, c.Name); return err }},
		{"ListConsumers", func() error { _, err := s.ListConsumers(ctx); return err }},
		{"DeleteConsumer", func() error { return s.DeleteConsumer(ctx, c.ID) }},
		{"CreateKey", func() error { return s.CreateKey(ctx, newKey(t, c.ID)) }},
		{"GetKey", func() error { _, err := s.GetKey(ctx, k.ID); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx, ""); return err }},
		{"LookupKey", func() error { _, _, err := s.LookupKey(ctx, k.Hash); return err }},
		{"UpdateKey", func() error { return s.UpdateKey(ctx, k) }},
		{"TouchKeys", func() error { return s.TouchKeys(ctx, map[string]time.Time{k.ID: base}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Fail closed: a closed store is unavailable, never "not found".
			wantErr(t, tc.name+" after Close", tc.call(), apikey.ErrUnavailable)
		})
	}
}
