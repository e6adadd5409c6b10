// Package boltstore is the embedded apikey.Store: one bbolt file, no
// external service. Every write is one bbolt read-write transaction, which
// is fsynced before it returns, so a write that returned nil survives a
// crash or SIGKILL. One process at a time may open the file (bbolt holds an
// exclusive file lock); run a single gateway per file, or use the
// PostgreSQL store for several.
//
// Layout (all in one file):
//
//	meta            "schema_version" → decimal version of the layout
//	consumers       consumer id → JSON consumer record
//	consumer_names  consumer name → consumer id
//	keys            key id → JSON key record (including the hash)
//	key_hashes      key hash → key id (the lookup index)
//	consumer_keys   consumer id + "/" + key id → empty (listing index)
//
// Records carry a schema version ("v") so later layouts can migrate them.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// DefaultTimeout is how long Open waits for the file lock by default.
const DefaultTimeout = time.Second

// schemaVersion is the layout this package reads and writes.
const schemaVersion = 1

var (
	bucketMeta          = []byte("meta")
	bucketConsumers     = []byte("consumers")
	bucketConsumerNames = []byte("consumer_names")
	bucketKeys          = []byte("keys")
	bucketKeyHashes     = []byte("key_hashes")
	bucketConsumerKeys  = []byte("consumer_keys")

	allBuckets = [][]byte{bucketMeta, bucketConsumers, bucketConsumerNames, bucketKeys, bucketKeyHashes, bucketConsumerKeys}

	metaSchemaVersion = []byte("schema_version")
)

// Options configures Open.
type Options struct {
	// Timeout bounds the wait for the exclusive file lock when another
	// process has the file open. Default (zero): DefaultTimeout (1s), so a
	// second gateway on the same file fails fast with a clear error instead
	// of hanging.
	Timeout time.Duration
	// ReadOnly opens an existing file for reading only, with a shared lock:
	// several read-only openers may share the file, but not with a process
	// that has it open for writing (a running gateway), which makes Open
	// fail after Timeout, wrapping apikey.ErrUnavailable. Writes fail. For
	// offline tools such as gatehouse explain.
	ReadOnly bool
}

// Store is an apikey.Store in a bbolt file. Safe for concurrent use; reads
// run in parallel, writes are serialised by bbolt.
type Store struct {
	db   *bolt.DB
	path string

	closeOnce sync.Once
	closeErr  error
}

var _ apikey.Store = (*Store)(nil)

// Open opens the store at path, creating the file (mode 0600: it holds key
// hashes and consumer metadata) and its buckets if needed. It fails after
// opts.Timeout if another process holds the file, and at once if the file
// is not a bbolt database, belongs to another application, or was written
// by a newer schema.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if opts.ReadOnly {
		// bbolt would create a missing file even read-only; a tool must not.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("boltstore: %s is in use by another process or Store (file lock not acquired within %s): %w: %w", path, timeout, apikey.ErrUnavailable, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, fmt.Errorf("boltstore: %s is not a key store (not a bbolt database, or corrupted): %w", path, err)
		default:
			return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
		}
	}
	check := db.Update
	if opts.ReadOnly {
		check = db.View // initBuckets then only checks: a complete store creates nothing
	}
	if err := check(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	// Quota counts (quotas.go) go through Batch: a short window keeps a
	// lone request's wait small while concurrent ones share one fsync.
	db.MaxBatchDelay = quotaBatchDelay
	return &Store{db: db, path: path}, nil
}

// initBuckets creates the layout in a new file and checks an existing one.
func initBuckets(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := ""
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			foreign = string(name)
			return errors.New("stop")
		})
		if foreign != "" {
			return fmt.Errorf("not a key store: a bbolt database of another application (has bucket %q and no %q)", foreign, bucketMeta)
		}
		if !tx.Writable() {
			return errors.New("not a key store: empty (opened read-only, so not initialised)")
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(metaSchemaVersion, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
	}
	raw := meta.Get(metaSchemaVersion)
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("not a key store: bad schema version %q", raw)
	}
	if v > schemaVersion {
		return fmt.Errorf("written by a newer Gatehouse (schema version %d; this binary reads up to %d)", v, schemaVersion)
	}
	for _, name := range allBuckets {
		if !tx.Writable() {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("not a complete key store: bucket %q is missing (opened read-only, so not repaired)", name)
			}
			continue
		}
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the file and its lock. Later calls on the store fail with
// apikey.ErrUnavailable; calling Close again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("boltstore: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// errCorrupt marks records or indexes that cannot be read back: a bug or a
// damaged file, not an unreachable store.
var errCorrupt = errors.New("corrupt record")

func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return wrap(op, s.db.View(fn))
}

// viewBounded is view for the request path: it returns when ctx ends even
// if the transaction cannot start or finish (a writer remapping the grown
// file waits for every open read, and new reads wait for it; a slow disk
// stalls page faults). The transaction then finishes in the background, so
// fn must only write variables that the caller reads after a nil error.
func (s *Store) viewBounded(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if ctx.Done() == nil {
		return wrap(op, s.db.View(fn))
	}
	done := make(chan error, 1)
	go func() { done <- s.db.View(fn) }()
	select {
	case err := <-done:
		return wrap(op, err)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("boltstore: %s: %w: %w", op, apikey.ErrUnavailable, ctx.Err())
		}
		return fmt.Errorf("boltstore: %s: %w", op, ctx.Err())
	}
}

func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return wrap(op, s.db.Update(fn))
}

// wrap prefixes err with the operation. Domain errors (not found, conflict,
// invalid, corrupt) pass through as they are; anything else bbolt reports
// (closed database, failed write or fsync) means the store cannot serve
// and wraps apikey.ErrUnavailable, so callers fail closed.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrConflict),
		errors.Is(err, apikey.ErrInvalid), errors.Is(err, errCorrupt):
		return fmt.Errorf("boltstore: %s: %w", op, err)
	default:
		return fmt.Errorf("boltstore: %s: %w: %w", op, apikey.ErrUnavailable, err)
	}
}

// buckets are the store's buckets within one transaction.
type buckets struct {
	consumers, consumerNames, keys, keyHashes, consumerKeys *bolt.Bucket
}

// bucketsOf fetches the buckets Open created; a missing one means the file was
// changed behind the store's back.
func bucketsOf(tx *bolt.Tx) (*buckets, error) {
	b := &buckets{
		consumers:     tx.Bucket(bucketConsumers),
		consumerNames: tx.Bucket(bucketConsumerNames),
		keys:          tx.Bucket(bucketKeys),
		keyHashes:     tx.Bucket(bucketKeyHashes),
		consumerKeys:  tx.Bucket(bucketConsumerKeys),
	}
	if b.consumers == nil || b.consumerNames == nil || b.keys == nil || b.keyHashes == nil || b.consumerKeys == nil {
		return nil, fmt.Errorf("%w: a bucket is missing", errCorrupt)
	}
	return b, nil
}
