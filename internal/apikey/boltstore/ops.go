package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// idSeparator joins consumer and key ids in the consumer_keys index; ids
// must not contain it, or one consumer's prefix could cover another's.
const idSeparator = "/"

func checkID(what, id string) error {
	if id == "" || strings.Contains(id, idSeparator) {
		return fmt.Errorf("%w: %s id %q must be non-empty and must not contain %q", apikey.ErrInvalid, what, id, idSeparator)
	}
	return nil
}

func consumerKeyEntry(consumerID, keyID string) []byte {
	return []byte(consumerID + idSeparator + keyID)
}

func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// CreateConsumer stores a new consumer. The caller sets ID and CreatedAt.
// An existing id or name is apikey.ErrConflict.
func (s *Store) CreateConsumer(ctx context.Context, c *apikey.Consumer) error {
	if c == nil {
		return fmt.Errorf("boltstore: create consumer: %w: nil consumer", apikey.ErrInvalid)
	}
	if err := checkID("consumer", c.ID); err != nil {
		return fmt.Errorf("boltstore: create consumer: %w", err)
	}
	if c.Name == "" {
		return fmt.Errorf("boltstore: create consumer: %w: empty name", apikey.ErrInvalid)
	}
	rec := consumerToRecord(c)
	return s.update(ctx, "create consumer", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if b.consumers.Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("consumer id %s: %w", rec.ID, apikey.ErrConflict)
		}
		if b.consumerNames.Get([]byte(rec.Name)) != nil {
			return fmt.Errorf("consumer name %q: %w", rec.Name, apikey.ErrConflict)
		}
		if err := put(b.consumers, []byte(rec.ID), rec); err != nil {
			return err
		}
		return b.consumerNames.Put([]byte(rec.Name), []byte(rec.ID))
	})
}

func getConsumer(b *buckets, id string) (*consumerRecord, error) {
	data := b.consumers.Get([]byte(id))
	if id == "" || data == nil {
		return nil, fmt.Errorf("consumer %s: %w", id, apikey.ErrNotFound)
	}
	return decodeConsumer(data)
}

// GetConsumer returns the consumer with the given id.
func (s *Store) GetConsumer(ctx context.Context, id string) (*apikey.Consumer, error) {
	var out *apikey.Consumer
	err := s.view(ctx, "get consumer", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec, err := getConsumer(b, id)
		if err != nil {
			return err
		}
		out = rec.consumer()
		return nil
	})
	return out, err
}

// GetConsumerByName returns the consumer with the given name.
func (s *Store) GetConsumerByName(ctx context.Context, name string) (*apikey.Consumer, error) {
	var out *apikey.Consumer
	err := s.view(ctx, "get consumer by name", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		id := b.consumerNames.Get([]byte(name))
		if name == "" || id == nil {
			return fmt.Errorf("consumer name %q: %w", name, apikey.ErrNotFound)
		}
		rec, err := getConsumer(b, string(id))
		if err != nil {
			return fmt.Errorf("%w: name index points to a missing consumer: %v", errCorrupt, err)
		}
		out = rec.consumer()
		return nil
	})
	return out, err
}

// ListConsumers returns every consumer, ordered by creation time, then id.
func (s *Store) ListConsumers(ctx context.Context) ([]*apikey.Consumer, error) {
	var out []*apikey.Consumer
	err := s.view(ctx, "list consumers", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		out = make([]*apikey.Consumer, 0, b.consumers.Stats().KeyN)
		return b.consumers.ForEach(func(_, v []byte) error {
			rec, err := decodeConsumer(v)
			if err != nil {
				return err
			}
			out = append(out, rec.consumer())
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *apikey.Consumer) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// consumerKeyIDs lists the ids of a consumer's keys from the index.
func consumerKeyIDs(b *buckets, consumerID string) []string {
	prefix := []byte(consumerID + idSeparator)
	var ids []string
	c := b.consumerKeys.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}

// DeleteConsumer removes the consumer, its name and every key it owns, in
// one transaction.
func (s *Store) DeleteConsumer(ctx context.Context, id string) error {
	return s.update(ctx, "delete consumer", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec, err := getConsumer(b, id)
		if err != nil {
			return err
		}
		for _, keyID := range consumerKeyIDs(b, id) {
			if data := b.keys.Get([]byte(keyID)); data != nil {
				k, err := decodeKey(data)
				if err != nil {
					return err
				}
				if owner := b.keyHashes.Get(k.Hash); owner != nil && string(owner) == keyID {
					if err := b.keyHashes.Delete(k.Hash); err != nil {
						return err
					}
				}
				if err := b.keys.Delete([]byte(keyID)); err != nil {
					return err
				}
			}
			if err := b.consumerKeys.Delete(consumerKeyEntry(id, keyID)); err != nil {
				return err
			}
		}
		if owner := b.consumerNames.Get([]byte(rec.Name)); owner != nil && string(owner) == id {
			if err := b.consumerNames.Delete([]byte(rec.Name)); err != nil {
				return err
			}
		}
		return b.consumers.Delete([]byte(id))
	})
}

// CreateKey stores a new key for an existing consumer (else
// apikey.ErrNotFound). An existing id or hash is apikey.ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k *apikey.Key) error {
	if k == nil {
		return fmt.Errorf("boltstore: create key: %w: nil key", apikey.ErrInvalid)
	}
	if err := checkID("key", k.ID); err != nil {
		return fmt.Errorf("boltstore: create key: %w", err)
	}
	if err := checkID("consumer", k.ConsumerID); err != nil {
		return fmt.Errorf("boltstore: create key: %w", err)
	}
	if len(k.Hash) == 0 {
		return fmt.Errorf("boltstore: create key: %w: empty hash", apikey.ErrInvalid)
	}
	rec := keyToRecord(k)
	return s.update(ctx, "create key", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if b.consumers.Get([]byte(rec.ConsumerID)) == nil {
			return fmt.Errorf("consumer %s: %w", rec.ConsumerID, apikey.ErrNotFound)
		}
		if b.keys.Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("key id %s: %w", rec.ID, apikey.ErrConflict)
		}
		if b.keyHashes.Get(rec.Hash) != nil {
			// Never print the hash: it is the lookup secret's stand-in.
			return fmt.Errorf("key hash: %w", apikey.ErrConflict)
		}
		if err := put(b.keys, []byte(rec.ID), rec); err != nil {
			return err
		}
		if err := b.keyHashes.Put(rec.Hash, []byte(rec.ID)); err != nil {
			return err
		}
		return b.consumerKeys.Put(consumerKeyEntry(rec.ConsumerID, rec.ID), []byte{})
	})
}

func getKey(b *buckets, id string) (*keyRecord, error) {
	data := b.keys.Get([]byte(id))
	if id == "" || data == nil {
		return nil, fmt.Errorf("key %s: %w", id, apikey.ErrNotFound)
	}
	return decodeKey(data)
}

// GetKey returns the key with the given id, hash included.
func (s *Store) GetKey(ctx context.Context, id string) (*apikey.Key, error) {
	var out *apikey.Key
	err := s.view(ctx, "get key", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec, err := getKey(b, id)
		if err != nil {
			return err
		}
		out = rec.key()
		return nil
	})
	return out, err
}

// ListKeys returns a consumer's keys, or every key when consumerID is "",
// ordered by creation time, then id. An unknown consumer has no keys.
func (s *Store) ListKeys(ctx context.Context, consumerID string) ([]*apikey.Key, error) {
	var out []*apikey.Key
	err := s.view(ctx, "list keys", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if consumerID == "" {
			out = make([]*apikey.Key, 0, b.keys.Stats().KeyN)
			return b.keys.ForEach(func(_, v []byte) error {
				rec, err := decodeKey(v)
				if err != nil {
					return err
				}
				out = append(out, rec.key())
				return nil
			})
		}
		ids := consumerKeyIDs(b, consumerID)
		out = make([]*apikey.Key, 0, len(ids))
		for _, id := range ids {
			rec, err := getKey(b, id)
			if err != nil {
				return fmt.Errorf("%w: listing index names a missing key: %v", errCorrupt, err)
			}
			out = append(out, rec.key())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *apikey.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// LookupKey finds a key by its hash, with its consumer: the request-path
// read. An unknown hash is apikey.ErrNotFound.
func (s *Store) LookupKey(ctx context.Context, hash []byte) (*apikey.Key, *apikey.Consumer, error) {
	var (
		key      *apikey.Key
		consumer *apikey.Consumer
	)
	// key and consumer are read only after a nil error: see viewBounded.
	err := s.viewBounded(ctx, "lookup key", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		id := b.keyHashes.Get(hash)
		if len(hash) == 0 || id == nil {
			return fmt.Errorf("key hash: %w", apikey.ErrNotFound)
		}
		rec, err := getKey(b, string(id))
		if err != nil {
			return fmt.Errorf("%w: hash index names a missing key: %v", errCorrupt, err)
		}
		crec, err := getConsumer(b, rec.ConsumerID)
		if err != nil {
			return fmt.Errorf("%w: key %s names a missing consumer: %v", errCorrupt, rec.ID, err)
		}
		key, consumer = rec.key(), crec.consumer()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return key, consumer, nil
}

// UpdateKey replaces the mutable fields of a key: Status, ExpiresAt,
// RevokedAt, RotatedTo, Name, Scopes, Routes and Tier. ConsumerID, Hash,
// Hint, CreatedAt and LastUsedAt are kept as stored (last use belongs to
// TouchKeys, so a stale copy cannot roll it back).
func (s *Store) UpdateKey(ctx context.Context, k *apikey.Key) error {
	if k == nil {
		return fmt.Errorf("boltstore: update key: %w: nil key", apikey.ErrInvalid)
	}
	return s.update(ctx, "update key", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec, err := getKey(b, k.ID)
		if err != nil {
			return err
		}
		rec.V = schemaVersion
		rec.setMutable(k)
		return put(b.keys, []byte(rec.ID), rec)
	})
}

// TouchKeys records last-used times for many keys in one transaction (one
// fsync). Unknown ids are skipped; a time older than the stored one is
// ignored, so batches flushed out of order never move last use backwards.
func (s *Store) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(lastUsed))
	return s.update(ctx, "touch keys", func(tx *bolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			data := b.keys.Get([]byte(id))
			if id == "" || data == nil {
				continue
			}
			rec, err := decodeKey(data)
			if err != nil {
				return err
			}
			t := normTime(lastUsed[id])
			if rec.LastUsedAt != nil && !t.After(*rec.LastUsedAt) {
				continue
			}
			rec.V = schemaVersion
			rec.LastUsedAt = &t
			if err := put(b.keys, []byte(id), rec); err != nil {
				return err
			}
		}
		return nil
	})
}
