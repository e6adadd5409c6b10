package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// RevocationChannel is the LISTEN/NOTIFY channel that announces changes of
// the revocation list (payload: the entry id, informational only: a
// replica reloads the whole list).
const RevocationChannel = "gatehouse_revocations"

var _ revocation.Store = (*Store)(nil)

const revocationCols = `id, kind, issuer, value, before, reason, created_at, expires_at`

// AddRevocations inserts entries and notifies RevocationChannel in the same
// transaction: every listening replica reloads once it commits.
func (s *Store) AddRevocations(ctx context.Context, entries []*revocation.Entry) error {
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("pgstore: add revocations: %w: %w", apikey.ErrInvalid, err)
		}
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for _, e := range entries {
				b.Queue(`INSERT INTO `+s.ident()+`.revocations (`+revocationCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
					e.ID, string(e.Kind), e.Issuer, e.Value, e.Before, e.Reason, e.CreatedAt, e.ExpiresAt)
			}
			if len(entries) > 0 {
				b.Queue(`SELECT pg_notify($1, $2)`, RevocationChannel, entries[0].ID)
			}
			return tx.SendBatch(ctx, b).Close()
		})
	}
	if err != nil {
		return s.fail("add revocations", err)
	}
	return nil
}

// ListRevocations returns the entries active at now, by creation time and
// id.
func (s *Store) ListRevocations(ctx context.Context, now time.Time) ([]*revocation.Entry, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail("list revocations", err)
	}
	defer cancel()
	defer conn.Release()
	rows, err := conn.Query(ctx, `SELECT `+revocationCols+` FROM `+s.ident()+`.revocations
		WHERE expires_at > $1 ORDER BY created_at, id`, now)
	if err != nil {
		return nil, s.fail("list revocations", err)
	}
	var out []*revocation.Entry
	for rows.Next() {
		e := new(revocation.Entry)
		var kind string
		if err := rows.Scan(&e.ID, &kind, &e.Issuer, &e.Value, &e.Before, &e.Reason, &e.CreatedAt, &e.ExpiresAt); err != nil {
			rows.Close()
			return nil, s.fail("list revocations", err)
		}
		e.Kind = revocation.Kind(kind)
		e.CreatedAt, e.ExpiresAt = e.CreatedAt.UTC(), e.ExpiresAt.UTC()
		if e.Before != nil {
			b := e.Before.UTC()
			e.Before = &b
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list revocations", err)
	}
	return out, nil
}

// DeleteRevocation removes an entry and notifies; an unknown id is
// apikey.ErrNotFound.
func (s *Store) DeleteRevocation(ctx context.Context, id string) error {
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var got string
			err := tx.QueryRow(ctx, `DELETE FROM `+s.ident()+`.revocations WHERE id = $1 RETURNING id`, id).Scan(&got)
			if err != nil {
				return err // no rows: apikey.ErrNotFound
			}
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationChannel, got)
			return err
		})
	}
	if err != nil {
		return s.fail(fmt.Sprintf("delete revocation %q", id), err)
	}
	return nil
}

// PruneRevocations deletes the entries expired at now. Nothing is
// notified: expired entries apply nowhere anyway.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return 0, s.fail("prune revocations", err)
	}
	defer cancel()
	defer conn.Release()
	tag, err := conn.Exec(ctx, `DELETE FROM `+s.ident()+`.revocations WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, s.fail("prune revocations", err)
	}
	return int(tag.RowsAffected()), nil
}

func (s *Store) ident() string { return pgx.Identifier{s.schema}.Sanitize() }
