package apikey

import (
	"context"
	"time"
)

// User is a basic-auth user kept in the key store (the basic method's
// users_store, docs/basic-auth.md). Hash is the password's hash as text
// (an argon2id PHC string or a bcrypt hash): the store keeps it opaque,
// and authn/basic checks it, with its parameter bounds, whenever it reads
// it. A plaintext password never reaches the store: the writers (the CLI)
// refuse one, and so does the reader.
type User struct {
	Name      string
	Hash      string
	Roles     []string
	Groups    []string
	Scopes    []string
	UpdatedAt time.Time
}

// UserStore keeps basic-auth users. The embedded and PostgreSQL stores
// implement it beside Store.
type UserStore interface {
	// PutUser creates the user, or replaces it when replace is true
	// (ErrConflict when it exists and replace is false; ErrNotFound when
	// replace is true and it does not).
	PutUser(ctx context.Context, u *User, replace bool) error
	// DeleteUser removes a user (ErrNotFound when absent).
	DeleteUser(ctx context.Context, name string) error
	// ListUsers returns every user, by name.
	ListUsers(ctx context.Context) ([]*User, error)
}
