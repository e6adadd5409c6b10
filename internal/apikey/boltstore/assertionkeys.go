package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/assertion"
)

// bucketAssertionKeys holds the identity assertion's signing keys: key id
// → JSON assertion.StoredKey (the private key sealed). Created by the
// first write, like the revocations bucket.
var bucketAssertionKeys = []byte("assertion_keys")

var _ assertion.Store = (*Store)(nil)

// UpdateAssertionKeys implements assertion.Store in one read-write
// transaction: bbolt runs one at a time, and one process owns the file.
func (s *Store) UpdateAssertionKeys(ctx context.Context, fn func([]assertion.StoredKey) ([]assertion.StoredKey, []string, error)) ([]assertion.StoredKey, error) {
	var out []assertion.StoredKey
	err := s.update(ctx, "update assertion keys", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAssertionKeys)
		if err != nil {
			return err
		}
		var cur []assertion.StoredKey
		if err := b.ForEach(func(k, v []byte) error {
			var sk assertion.StoredKey
			if err := json.Unmarshal(v, &sk); err != nil {
				return fmt.Errorf("%w: assertion key %q: %v", errCorrupt, k, err)
			}
			cur = append(cur, sk)
			return nil
		}); err != nil {
			return err
		}
		add, remove, err := fn(cur)
		if err != nil {
			return err
		}
		for _, id := range remove {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for _, k := range add {
			if err := put(b, []byte(k.ID), k); err != nil {
				return err
			}
		}
		out = out[:0]
		return b.ForEach(func(_, v []byte) error {
			var sk assertion.StoredKey
			if err := json.Unmarshal(v, &sk); err != nil {
				return err
			}
			out = append(out, sk)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
