package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// testUsers: basic-auth users round-trip, conflict and not-found on the
// right operations, deletion, and listing by name.
func testUsers(t *testing.T, s apikey.Store) {
	us, ok := s.(apikey.UserStore)
	if !ok {
		t.Fatalf("%T does not implement apikey.UserStore", s)
	}
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	if list, err := us.ListUsers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty store: %v, %v", list, err)
	}
	bob := &apikey.User{Name: "bob", Hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", UpdatedAt: at}
	alice := &apikey.User{Name: "alice", Hash: "$2y$10$abcdefghijklmnopqrstuu5Rx2wz0qHhtGt2aCVt3.XTx6v7wqlNu",
		Roles: []string{"admin", "ops"}, Groups: []string{"eng"}, Scopes: []string{"orders:read"}, UpdatedAt: at}
	for _, tc := range []struct {
		name    string
		u       *apikey.User
		replace bool
		want    error
	}{
		{"create bob", bob, false, nil},
		{"create alice", alice, false, nil},
		{"create twice", bob, false, apikey.ErrConflict},
		{"replace unknown", &apikey.User{Name: "carol", Hash: bob.Hash, UpdatedAt: at}, true, apikey.ErrNotFound},
		{"no hash", &apikey.User{Name: "dave", UpdatedAt: at}, false, apikey.ErrInvalid},
	} {
		if err := us.PutUser(ctx, tc.u, tc.replace); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	list, err := us.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("list: %v, %v", list, err)
	}
	got := list[0]
	if got.Hash != alice.Hash || !slices.Equal(got.Roles, alice.Roles) || !slices.Equal(got.Groups, alice.Groups) ||
		!slices.Equal(got.Scopes, alice.Scopes) || !got.UpdatedAt.Equal(at) {
		t.Fatalf("alice read back as %+v", got)
	}
	if list[1].Roles != nil || list[1].Groups != nil || list[1].Scopes != nil {
		t.Fatalf("bob's empty lists read back as %+v", list[1])
	}
	// Replace keeps the name, changes the rest.
	bob2 := &apikey.User{Name: "bob", Hash: alice.Hash, Roles: []string{"r"}, UpdatedAt: at.Add(time.Hour)}
	if err := us.PutUser(ctx, bob2, true); err != nil {
		t.Fatal(err)
	}
	if err := us.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := us.DeleteUser(ctx, "alice"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	list, err = us.ListUsers(ctx)
	if err != nil || len(list) != 1 || list[0].Hash != alice.Hash || !slices.Equal(list[0].Roles, []string{"r"}) || !list[0].UpdatedAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("after replace and delete: %+v, %v", list, err)
	}
}
