package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// bucketUsers holds basic-auth users: name → JSON record. Created by the
// first write, like bucketRevocations: files written before it existed
// still open read-only (a missing bucket reads as empty).
var bucketUsers = []byte("basic_users")

var _ apikey.UserStore = (*Store)(nil)

type userRec struct {
	Name      string   `json:"name"`
	Hash      string   `json:"hash"`
	Roles     []string `json:"roles,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	UpdatedAt string   `json:"updated_at"`
}

// PutUser creates or (replace) replaces a user.
func (s *Store) PutUser(ctx context.Context, u *apikey.User, replace bool) error {
	if u.Name == "" || u.Hash == "" {
		return fmt.Errorf("boltstore: put user: %w: name and hash are required", apikey.ErrInvalid)
	}
	return s.update(ctx, "put user", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketUsers)
		if err != nil {
			return err
		}
		exists := b.Get([]byte(u.Name)) != nil
		switch {
		case exists && !replace:
			return fmt.Errorf("%w: user %s", apikey.ErrConflict, u.Name)
		case !exists && replace:
			return fmt.Errorf("%w: user %s", apikey.ErrNotFound, u.Name)
		}
		return put(b, []byte(u.Name), userRec{Name: u.Name, Hash: u.Hash, Roles: u.Roles, Groups: u.Groups, Scopes: u.Scopes,
			UpdatedAt: u.UpdatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")})
	})
}

// DeleteUser removes a user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.update(ctx, "delete user", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: user %s", apikey.ErrNotFound, name)
		}
		return b.Delete([]byte(name))
	})
}

// ListUsers returns every user, by name (bbolt keeps keys sorted).
func (s *Store) ListUsers(ctx context.Context) ([]*apikey.User, error) {
	var out []*apikey.User
	err := s.viewBounded(ctx, "list users", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b == nil {
			return nil
		}
		var list []*apikey.User
		err := b.ForEach(func(k, v []byte) error {
			var r userRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: user %q: %v", errCorrupt, k, err)
			}
			u := &apikey.User{Name: r.Name, Hash: r.Hash, Roles: r.Roles, Groups: r.Groups, Scopes: r.Scopes}
			if err := u.UpdatedAt.UnmarshalText([]byte(r.UpdatedAt)); err != nil {
				return fmt.Errorf("%w: user %q: %v", errCorrupt, k, err)
			}
			list = append(list, u)
			return nil
		})
		out = list
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
