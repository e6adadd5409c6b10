package boltstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// bucketRevocations holds the revocation list: entry id → JSON entry. It is
// created by the first write, not by Open, so that files written before
// it existed still open read-only (a missing bucket reads as empty).
var bucketRevocations = []byte("revocations")

var _ revocation.Store = (*Store)(nil)

// AddRevocations stores entries in one transaction. One process owns the
// file, so there is no one else to tell: the caller's replica reloads.
func (s *Store) AddRevocations(ctx context.Context, entries []*revocation.Entry) error {
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("boltstore: add revocations: %w: %w", apikey.ErrInvalid, err)
		}
	}
	return s.update(ctx, "add revocations", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRevocations)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if b.Get([]byte(e.ID)) != nil {
				return fmt.Errorf("%w: revocation %s", apikey.ErrConflict, e.ID)
			}
			if err := put(b, []byte(e.ID), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListRevocations returns the entries active at now, by creation time and
// id.
func (s *Store) ListRevocations(ctx context.Context, now time.Time) ([]*revocation.Entry, error) {
	var out []*revocation.Entry
	err := s.viewBounded(ctx, "list revocations", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevocations)
		if b == nil {
			return nil
		}
		var list []*revocation.Entry
		err := b.ForEach(func(k, v []byte) error {
			e := new(revocation.Entry)
			if err := json.Unmarshal(v, e); err != nil {
				return fmt.Errorf("%w: revocation %q: %v", errCorrupt, k, err)
			}
			if e.Active(now) {
				e.CreatedAt, e.ExpiresAt = e.CreatedAt.UTC(), e.ExpiresAt.UTC()
				if e.Before != nil {
					b := e.Before.UTC()
					e.Before = &b
				}
				list = append(list, e)
			}
			return nil
		})
		out = list
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *revocation.Entry) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteRevocation removes an entry; an unknown id is apikey.ErrNotFound.
func (s *Store) DeleteRevocation(ctx context.Context, id string) error {
	return s.update(ctx, "delete revocation", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevocations)
		if b == nil || b.Get([]byte(id)) == nil {
			return fmt.Errorf("%w: revocation %s", apikey.ErrNotFound, id)
		}
		return b.Delete([]byte(id))
	})
}

// PruneRevocations deletes the entries expired at now.
func (s *Store) PruneRevocations(ctx context.Context, now time.Time) (int, error) {
	// Look first: a write transaction costs an fsync even when it
	// changes nothing.
	var any bool
	err := s.view(ctx, "prune revocations", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketRevocations); b != nil {
			return b.ForEach(func(_, v []byte) error {
				var e revocation.Entry
				any = any || (json.Unmarshal(v, &e) == nil && !e.Active(now))
				return nil
			})
		}
		return nil
	})
	if err != nil || !any {
		return 0, err
	}
	var n int
	err = s.update(ctx, "prune revocations", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevocations)
		if b == nil {
			return nil
		}
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var e revocation.Entry
			if json.Unmarshal(v, &e) == nil && !e.Active(now) {
				expired = append(expired, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
