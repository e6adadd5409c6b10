package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

var _ apikey.UserStore = (*Store)(nil)

// UsersChannel is the LISTEN/NOTIFY channel that announces a change of the
// basic users (payload: the user name, informational only).
const UsersChannel = "gatehouse_basic_users"

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// PutUser creates or (replace) replaces a user, and notifies UsersChannel
// in the same transaction.
func (s *Store) PutUser(ctx context.Context, u *apikey.User, replace bool) error {
	if u.Name == "" || u.Hash == "" {
		return fmt.Errorf("pgstore: put user: %w: name and hash are required", apikey.ErrInvalid)
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if replace {
				tag, err := tx.Exec(ctx, `UPDATE `+s.ident()+`.basic_users SET hash = $2, roles = $3, groups = $4, scopes = $5, updated_at = $6 WHERE name = $1`,
					u.Name, u.Hash, nonNil(u.Roles), nonNil(u.Groups), nonNil(u.Scopes), u.UpdatedAt)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					return pgx.ErrNoRows
				}
			} else if _, err := tx.Exec(ctx, `INSERT INTO `+s.ident()+`.basic_users (name, hash, roles, groups, scopes, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				u.Name, u.Hash, nonNil(u.Roles), nonNil(u.Groups), nonNil(u.Scopes), u.UpdatedAt); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, UsersChannel, u.Name)
			return err
		})
	}
	if err != nil {
		return s.fail("put user", err)
	}
	return nil
}

// DeleteUser removes a user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM `+s.ident()+`.basic_users WHERE name = $1`, name)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return pgx.ErrNoRows
			}
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, UsersChannel, name)
			return err
		})
	}
	if err != nil {
		return s.fail("delete user", err)
	}
	return nil
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]*apikey.User, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail("list users", err)
	}
	defer cancel()
	defer conn.Release()
	rows, err := conn.Query(ctx, `SELECT name, hash, roles, groups, scopes, updated_at FROM `+s.ident()+`.basic_users ORDER BY name`)
	if err != nil {
		return nil, s.fail("list users", err)
	}
	var out []*apikey.User
	for rows.Next() {
		u := new(apikey.User)
		if err := rows.Scan(&u.Name, &u.Hash, &u.Roles, &u.Groups, &u.Scopes, &u.UpdatedAt); err != nil {
			rows.Close()
			return nil, s.fail("list users", err)
		}
		for _, l := range []*[]string{&u.Roles, &u.Groups, &u.Scopes} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		u.UpdatedAt = u.UpdatedAt.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list users", err)
	}
	return out, nil
}
