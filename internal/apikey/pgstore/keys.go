package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// CreateKey inserts k and notifies its id (so replicas holding a negative
// cache entry can drop it). A taken id or hash is apikey.ErrConflict; an
// unknown consumer is apikey.ErrNotFound.
func (s *Store) CreateKey(ctx context.Context, k *apikey.Key) error {
	if k == nil || k.ID == "" || k.ConsumerID == "" || len(k.Hash) == 0 {
		return errors.New("pgstore: create key: id, consumer id and hash are required")
	}
	if err := checkStatus(k.Status); err != nil {
		return fmt.Errorf("pgstore: create key %q: %w", k.ID, err)
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		_, err = conn.Exec(ctx, s.q.createKey,
			k.ID, k.ConsumerID, k.Hash, k.Hint, k.Name, orEmpty(k.Scopes), orEmpty(k.Routes), k.Tier,
			string(k.Status), k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.RotatedTo, k.LastUsedAt)
	}
	if err != nil {
		return s.fail(fmt.Sprintf("create key %q", k.ID), err)
	}
	return nil
}

// GetKey returns the key with the given id, or apikey.ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (*apikey.Key, error) {
	k := new(apikey.Key)
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = conn.QueryRow(ctx, s.q.getKey, id).Scan(keyDest(k)...)
	}
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get key %q", id), err)
	}
	normalizeKey(k)
	return k, nil
}

// ListKeys returns a consumer's keys, or every key when consumerID is "",
// oldest first. An unknown consumer has no keys (not an error).
func (s *Store) ListKeys(ctx context.Context, consumerID string) ([]*apikey.Key, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail("list keys", err)
	}
	defer cancel()
	defer conn.Release()
	var rows pgx.Rows
	if consumerID == "" {
		rows, err = conn.Query(ctx, s.q.listAllKeys)
	} else {
		rows, err = conn.Query(ctx, s.q.listKeys, consumerID)
	}
	if err != nil {
		return nil, s.fail("list keys", err)
	}
	ks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*apikey.Key, error) {
		k := new(apikey.Key)
		if err := row.Scan(keyDest(k)...); err != nil {
			return nil, err
		}
		normalizeKey(k)
		return k, nil
	})
	if err != nil {
		return nil, s.fail("list keys", err)
	}
	return ks, nil
}

// LookupKey finds a key by its hash, with its consumer, in one round trip
// over a cached prepared statement. An unknown hash is apikey.ErrNotFound.
// The caller decides whether the key is usable (Key.Usable).
func (s *Store) LookupKey(ctx context.Context, hash []byte) (*apikey.Key, *apikey.Consumer, error) {
	k, c := new(apikey.Key), new(apikey.Consumer)
	dest := append(keyDest(k), consumerDest(c)...)
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		err = conn.QueryRow(ctx, s.q.lookupKey, hash).Scan(dest...)
	}
	if err != nil {
		// Never put the hash in the error: errors end up in logs.
		return nil, nil, s.fail("lookup key", err)
	}
	normalizeKey(k)
	normalizeConsumer(c)
	return k, c, nil
}

// UpdateKey replaces k's mutable fields (status, expiry, revocation time,
// rotation link, name, scopes, routes, tier) and notifies its id in the same
// transaction. The consumer, hash, hint, creation and last-used times are
// left alone. An unknown id is apikey.ErrNotFound.
func (s *Store) UpdateKey(ctx context.Context, k *apikey.Key) error {
	if k == nil || k.ID == "" {
		return errors.New("pgstore: update key: id is required")
	}
	if err := checkStatus(k.Status); err != nil {
		return fmt.Errorf("pgstore: update key %q: %w", k.ID, err)
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return s.fail(fmt.Sprintf("update key %q", k.ID), err)
	}
	defer cancel()
	defer conn.Release()
	tag, err := conn.Exec(ctx, s.q.updateKey,
		k.ID, string(k.Status), k.ExpiresAt, k.RevokedAt, k.RotatedTo,
		k.Name, orEmpty(k.Scopes), orEmpty(k.Routes), k.Tier)
	if err != nil {
		return s.fail(fmt.Sprintf("update key %q", k.ID), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: update key %q: %w", k.ID, apikey.ErrNotFound)
	}
	return nil
}

// TouchKeys records last-used times for a batch of key ids in one
// statement. A stored time is never moved backwards, and unknown ids are
// ignored (the key may have been deleted since it was used).
func (s *Store) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := make([]string, 0, len(lastUsed))
	for id := range lastUsed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		times[i] = lastUsed[id]
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		_, err = conn.Exec(ctx, s.q.touchKeys, ids, times)
	}
	if err != nil {
		return s.fail(fmt.Sprintf("touch %d keys", len(ids)), err)
	}
	return nil
}

func keyDest(k *apikey.Key) []any {
	return []any{&k.ID, &k.ConsumerID, &k.Hash, &k.Hint, &k.Name, &k.Scopes, &k.Routes, &k.Tier,
		(*string)(&k.Status), &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.RotatedTo, &k.LastUsedAt}
}

// normalizeKey returns empty lists as nil and times in UTC.
func normalizeKey(k *apikey.Key) {
	k.Scopes = nilIfEmpty(k.Scopes)
	k.Routes = nilIfEmpty(k.Routes)
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt = utcPtr(k.ExpiresAt)
	k.RevokedAt = utcPtr(k.RevokedAt)
	k.LastUsedAt = utcPtr(k.LastUsedAt)
}

// checkStatus refuses statuses the schema's check constraint would reject,
// with a clearer message than the constraint's.
func checkStatus(st apikey.Status) error {
	switch st {
	case apikey.StatusActive, apikey.StatusRevoked:
		return nil
	}
	return fmt.Errorf("invalid status %q", st)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// orEmpty stores a nil list as an empty array: the columns are NOT NULL so
// that queries never have to tell NULL from {}.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
