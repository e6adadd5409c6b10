package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/quota"
)

var _ quota.Store = (*Store)(nil)

// quotaQueries are the quota statements with the schema spliced in.
type quotaQueries struct {
	take, count, counts, mark, prune string
}

func newQuotaQueries(schema string) quotaQueries {
	r := strings.NewReplacer("{schema}", schema)
	return quotaQueries{
		// One atomic statement: a new row starts at 1 when the capacity
		// allows it; an existing one is incremented only below it. No
		// row returned: the request does not fit.
		take: r.Replace(`INSERT INTO {schema}.quota_counts AS q (key, win, count, expires_at)
SELECT $1, $2, 1, $4 WHERE $3 > 0
ON CONFLICT (key, win) DO UPDATE SET count = q.count + 1, expires_at = greatest(q.expires_at, EXCLUDED.expires_at)
WHERE q.count < $3
RETURNING count`),
		count:  r.Replace(`SELECT count FROM {schema}.quota_counts WHERE key = $1 AND win = $2`),
		counts: r.Replace(`SELECT coalesce((SELECT count FROM {schema}.quota_counts WHERE key = $1 AND win = $2), 0), coalesce((SELECT count FROM {schema}.quota_counts WHERE key = $1 AND win = $3), 0)`),
		mark: r.Replace(`INSERT INTO {schema}.quota_counts AS q (key, win, count, exceeded, expires_at) VALUES ($1, $2, 0, true, $3)
ON CONFLICT (key, win) DO UPDATE SET exceeded = true WHERE NOT q.exceeded
RETURNING 1`),
		prune: r.Replace(`DELETE FROM {schema}.quota_counts WHERE expires_at < $1`),
	}
}

// Take implements quota.Store: one upsert (plus, for rolling quotas, a
// read of the previous window), committed before it returns.
func (s *Store) Take(ctx context.Context, t quota.Take) (quota.Result, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return quota.Result{}, fmt.Errorf("%w: %w", quota.ErrUnavailable, s.fail("count quota", err))
	}
	defer cancel()
	defer conn.Release()
	key := []byte(t.Key)
	var res quota.Result
	if t.PrevWeight > 0 {
		if err := conn.QueryRow(ctx, s.qq.count, key, t.Prev).Scan(&res.Prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return quota.Result{}, fmt.Errorf("%w: %w", quota.ErrUnavailable, s.fail("count quota", err))
		}
	}
	capacity := quota.Capacity(t.Limit, res.Prev, t.PrevWeight)
	err = conn.QueryRow(ctx, s.qq.take, key, t.Window, capacity, t.ExpireAt).Scan(&res.Cur)
	switch {
	case err == nil:
		res.OK = true
		return res, nil
	case errors.Is(err, pgx.ErrNoRows):
		err = conn.QueryRow(ctx, s.qq.count, key, t.Window).Scan(&res.Cur)
		if err == nil || errors.Is(err, pgx.ErrNoRows) {
			return res, nil
		}
	}
	return quota.Result{}, fmt.Errorf("%w: %w", quota.ErrUnavailable, s.fail("count quota", err))
}

// Counts implements quota.Store.
func (s *Store) Counts(ctx context.Context, key string, window, prev int64) (cur, prevN int64, err error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = conn.QueryRow(ctx, s.qq.counts, []byte(key), window, prev).Scan(&cur, &prevN)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", quota.ErrUnavailable, s.fail("read quota", err))
	}
	return cur, prevN, nil
}

// MarkExceeded implements quota.Store.
func (s *Store) MarkExceeded(ctx context.Context, key string, window int64, expireAt time.Time) (bool, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		var one int
		err = conn.QueryRow(ctx, s.qq.mark, []byte(key), window, expireAt).Scan(&one)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: %w", quota.ErrUnavailable, s.fail("mark quota exceeded", err))
}

// PruneQuotas deletes the counters that expired before now.
func (s *Store) PruneQuotas(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return 0, s.fail("prune quotas", err)
	}
	defer cancel()
	defer conn.Release()
	tag, err := conn.Exec(ctx, s.qq.prune, now)
	if err != nil {
		return 0, s.fail("prune quotas", err)
	}
	return int(tag.RowsAffected()), nil
}
