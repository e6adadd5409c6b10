package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/assertion"
)

var _ assertion.Store = (*Store)(nil)

const assertionKeyCols = `id, alg, created_at, sign_from, sign_until, remove_at, sealed`

// UpdateAssertionKeys implements assertion.Store: one transaction that
// first takes the table's EXCLUSIVE lock (writers wait, plain reads do
// not), so the replicas that find a key due at the same moment generate
// it once: the second sees the first's key when its turn comes.
func (s *Store) UpdateAssertionKeys(ctx context.Context, fn func([]assertion.StoredKey) ([]assertion.StoredKey, []string, error)) ([]assertion.StoredKey, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail("update assertion keys", err)
	}
	defer cancel()
	defer conn.Release()
	var out []assertion.StoredKey
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+s.ident()+`.assertion_keys IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		cur, err := s.listAssertionKeys(ctx, tx)
		if err != nil {
			return err
		}
		add, remove, err := fn(cur)
		if err != nil {
			return err
		}
		if len(add) == 0 && len(remove) == 0 {
			out = cur
			return nil
		}
		b := &pgx.Batch{}
		if len(remove) > 0 {
			b.Queue(`DELETE FROM `+s.ident()+`.assertion_keys WHERE id = ANY($1)`, remove)
		}
		for _, k := range add {
			b.Queue(`INSERT INTO `+s.ident()+`.assertion_keys (`+assertionKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				k.ID, k.Algorithm, k.CreatedAt, k.SignFrom, k.SignUntil, k.RemoveAt, k.Sealed)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		out, err = s.listAssertionKeys(ctx, tx)
		return err
	})
	if err != nil {
		return nil, s.fail("update assertion keys", err)
	}
	return out, nil
}

func (s *Store) listAssertionKeys(ctx context.Context, tx pgx.Tx) ([]assertion.StoredKey, error) {
	rows, err := tx.Query(ctx, `SELECT `+assertionKeyCols+` FROM `+s.ident()+`.assertion_keys ORDER BY sign_from, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (assertion.StoredKey, error) {
		var k assertion.StoredKey
		err := row.Scan(&k.ID, &k.Algorithm, &k.CreatedAt, &k.SignFrom, &k.SignUntil, &k.RemoveAt, &k.Sealed)
		k.CreatedAt, k.SignFrom, k.SignUntil, k.RemoveAt = k.CreatedAt.UTC(), k.SignFrom.UTC(), k.SignUntil.UTC(), k.RemoveAt.UTC()
		return k, err
	})
}
