package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

func revocations(t *testing.T, s apikey.Store) revocation.Store {
	t.Helper()
	rs, ok := s.(revocation.Store)
	if !ok {
		t.Fatalf("%T does not implement revocation.Store", s)
	}
	return rs
}

func newRevocation(kind revocation.Kind, iss, value string, created time.Time) *revocation.Entry {
	e := &revocation.Entry{ID: revocation.NewID(), Kind: kind, Issuer: iss, Value: value, Reason: "test",
		CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
	if kind == revocation.KindSubject {
		e.Before = ptr(created)
	}
	return e
}

func diffRevocation(got, want *revocation.Entry) []string {
	var d []string
	if got.ID != want.ID || got.Kind != want.Kind || got.Issuer != want.Issuer || got.Value != want.Value || got.Reason != want.Reason {
		d = append(d, "fields differ")
	}
	if m := sameTime(got.CreatedAt, want.CreatedAt); m != "" {
		d = append(d, "created_at "+m)
	}
	if m := sameTime(got.ExpiresAt, want.ExpiresAt); m != "" {
		d = append(d, "expires_at "+m)
	}
	if m := sameTimePtr(got.Before, want.Before); m != "" {
		d = append(d, "before "+m)
	}
	return d
}

func testRevocations(t *testing.T, s apikey.Store) {
	rs := revocations(t, s)
	ctx := context.Background()
	if got, err := rs.ListRevocations(ctx, at(0)); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %d entries, %v", len(got), err)
	}
	tokenHash := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	want := []*revocation.Entry{
		newRevocation(revocation.KindJTI, "https://idp.example", "jti-1", at(time.Second)),
		newRevocation(revocation.KindToken, "", tokenHash, at(2*time.Second)),
		newRevocation(revocation.KindSubject, "", "alice", at(3*time.Second)),
		newRevocation(revocation.KindClient, "https://idp.example", "client-1", at(3*time.Second)),
		newRevocation(revocation.KindIssuerSubject, "https://idp.example", "mallory", at(4*time.Second)),
	}
	want[3].Before = ptr(at(time.Second))
	if err := rs.AddRevocations(ctx, want[:2]); err != nil {
		t.Fatal(err)
	}
	if err := rs.AddRevocations(ctx, want[2:]); err != nil {
		t.Fatal(err)
	}
	// A taken id fails the whole call: nothing of it is stored.
	dup := newRevocation(revocation.KindJTI, "", "jti-2", at(5*time.Second))
	err := rs.AddRevocations(ctx, []*revocation.Entry{dup, {ID: want[0].ID, Kind: revocation.KindJTI, Value: "x", CreatedAt: at(0), ExpiresAt: at(time.Hour)}})
	wantErr(t, "duplicate id", err, apikey.ErrConflict)

	got, err := rs.ListRevocations(ctx, at(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d entries, want %d", len(got), len(want))
	}
	// Entries 2 and 3 share a creation time: ordered by id.
	if want[2].ID > want[3].ID {
		want[2], want[3] = want[3], want[2]
	}
	for i := range want {
		if d := diffRevocation(got[i], want[i]); len(d) > 0 {
			t.Errorf("entry %d (%s): %v", i, want[i].Kind, d)
		}
		if got[i].CreatedAt.Location() != time.UTC || got[i].ExpiresAt.Location() != time.UTC {
			t.Errorf("entry %d: times not in UTC", i)
		}
	}

	if err := rs.DeleteRevocation(ctx, want[0].ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete again", rs.DeleteRevocation(ctx, want[0].ID), apikey.ErrNotFound)
	wantErr(t, "delete unknown", rs.DeleteRevocation(ctx, revocation.NewID()), apikey.ErrNotFound)
	if got, _ := rs.ListRevocations(ctx, at(10*time.Second)); len(got) != len(want)-1 {
		t.Errorf("after delete: %d entries, want %d", len(got), len(want)-1)
	}
}

func testRevocationsExpire(t *testing.T, s apikey.Store) {
	rs := revocations(t, s)
	ctx := context.Background()
	short := newRevocation(revocation.KindJTI, "", "short", at(0))
	short.ExpiresAt = at(time.Minute)
	long := newRevocation(revocation.KindJTI, "", "long", at(0))
	if err := rs.AddRevocations(ctx, []*revocation.Entry{short, long}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"before expiry", at(time.Minute - time.Microsecond), 2},
		{"at expiry", at(time.Minute), 1},
		{"after both", at(25 * time.Hour), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rs.ListRevocations(ctx, tc.now)
			if err != nil || len(got) != tc.want {
				t.Fatalf("%d entries (%v), want %d", len(got), err, tc.want)
			}
		})
	}
	n, err := rs.PruneRevocations(ctx, at(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	if got, _ := rs.ListRevocations(ctx, at(0)); len(got) != 1 || got[0].ID != long.ID {
		t.Fatalf("after prune: %d entries", len(got))
	}
	if n, err := rs.PruneRevocations(ctx, at(2*time.Minute)); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
}

func testRevocationsInvalid(t *testing.T, s apikey.Store) {
	rs := revocations(t, s)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		e    *revocation.Entry
	}{
		{"bad id", &revocation.Entry{ID: "nope", Kind: revocation.KindJTI, Value: "j", CreatedAt: at(0), ExpiresAt: at(time.Hour)}},
		{"bad kind", &revocation.Entry{ID: revocation.NewID(), Kind: "all", Value: "j", CreatedAt: at(0), ExpiresAt: at(time.Hour)}},
		{"no expiry", &revocation.Entry{ID: revocation.NewID(), Kind: revocation.KindJTI, Value: "j", CreatedAt: at(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rs.AddRevocations(ctx, []*revocation.Entry{tc.e})
			if !errors.Is(err, apikey.ErrInvalid) || !errors.Is(err, revocation.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if got, _ := rs.ListRevocations(ctx, at(0)); len(got) != 0 {
		t.Fatalf("invalid entries were stored: %d", len(got))
	}
}
