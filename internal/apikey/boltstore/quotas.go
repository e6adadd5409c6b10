package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/quota"
)

// Quota counters (package quota) live in their own bucket, created on the
// first count (so that files written before quotas still open read-only).
// A record's key is the window (8 bytes, big-endian) then the counter's
// key; its value is the count (8 bytes), the exceeded mark (1 byte) and
// the expiry (Unix seconds, 8 bytes).
var bucketQuotas = []byte("quota_counts")

// quotaBatchDelay is how long bbolt's Batch waits for more counts to
// share a transaction (bbolt's default, 10 ms, is a long wait for a lone
// request).
const quotaBatchDelay = time.Millisecond

var _ quota.Store = (*Store)(nil)

func quotaKey(key string, window int64) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(window))
	return append(b, key...)
}

type quotaRec struct {
	count    int64
	exceeded bool
	expires  int64
}

func getQuota(b *bolt.Bucket, k []byte) quotaRec {
	if b == nil {
		return quotaRec{}
	}
	v := b.Get(k)
	if len(v) != 17 {
		return quotaRec{}
	}
	return quotaRec{int64(binary.BigEndian.Uint64(v)), v[8] == 1, int64(binary.BigEndian.Uint64(v[9:]))}
}

func putQuota(b *bolt.Bucket, k []byte, r quotaRec) error {
	v := make([]byte, 17)
	binary.BigEndian.PutUint64(v, uint64(r.count))
	if r.exceeded {
		v[8] = 1
	}
	binary.BigEndian.PutUint64(v[9:], uint64(r.expires))
	return b.Put(k, v)
}

// batch runs fn in a write transaction through bbolt's Batch: concurrent
// counts share one transaction and one fsync, and each returns only
// after that commit, so no acknowledged count is lost by a crash. fn may
// run twice (Batch retries a failing member alone): it must only set
// variables.
func (s *Store) batch(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return wrap(op, s.db.Batch(fn))
}

// Take implements quota.Store.
func (s *Store) Take(ctx context.Context, t quota.Take) (quota.Result, error) {
	var res quota.Result
	err := s.batch(ctx, "count quota", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketQuotas)
		if err != nil {
			return err
		}
		res = quota.Result{}
		if t.PrevWeight > 0 {
			res.Prev = getQuota(b, quotaKey(t.Key, t.Prev)).count
		}
		k := quotaKey(t.Key, t.Window)
		r := getQuota(b, k)
		res.Cur = r.count
		if r.count >= quota.Capacity(t.Limit, res.Prev, t.PrevWeight) {
			return nil
		}
		r.count++
		r.expires = t.ExpireAt.Unix()
		res.OK, res.Cur = true, r.count
		return putQuota(b, k, r)
	})
	if err != nil {
		return quota.Result{}, fmt.Errorf("%w: %w", quota.ErrUnavailable, err)
	}
	return res, nil
}

// Counts implements quota.Store.
func (s *Store) Counts(ctx context.Context, key string, window, prev int64) (cur, prevN int64, err error) {
	err = s.viewBounded(ctx, "read quota", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		c, p := getQuota(b, quotaKey(key, window)).count, getQuota(b, quotaKey(key, prev)).count
		cur, prevN = c, p
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", quota.ErrUnavailable, err)
	}
	return cur, prevN, nil
}

// MarkExceeded implements quota.Store.
func (s *Store) MarkExceeded(ctx context.Context, key string, window int64, expireAt time.Time) (bool, error) {
	var first bool
	err := s.batch(ctx, "mark quota exceeded", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketQuotas)
		if err != nil {
			return err
		}
		k := quotaKey(key, window)
		r := getQuota(b, k)
		first = !r.exceeded
		if !first {
			return nil
		}
		r.exceeded = true
		r.expires = max(r.expires, expireAt.Unix())
		return putQuota(b, k, r)
	})
	if err != nil {
		return false, fmt.Errorf("%w: %w", quota.ErrUnavailable, err)
	}
	return first, nil
}

// PruneQuotas drops the counters that expired before now.
func (s *Store) PruneQuotas(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, "prune quotas", func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketQuotas)
		if b == nil {
			return nil
		}
		var dead [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			if getQuota(b, k).expires < now.Unix() {
				dead = append(dead, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	return n, err
}
