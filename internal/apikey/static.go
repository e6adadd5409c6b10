package apikey

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// StaticKey is a key declared in the configuration by its hash.
type StaticKey struct {
	ID, ConsumerName       string
	Hash                   []byte
	Scopes, Groups, Routes []string
}

// Static layers keys declared in the configuration over an optional Store
// (nil: static keys only). Static keys are read-only: they cannot be
// rotated or revoked through the API — remove them from the configuration
// and reload. Safe for concurrent use; Set swaps the whole set atomically.
type Static struct {
	next Store
	set  atomic.Pointer[map[string]staticEntry]
}

type staticEntry struct {
	key      Key
	consumer Consumer
}

var _ Store = (*Static)(nil)

// NewStatic returns a Static over next (which may be nil).
func NewStatic(next Store) *Static {
	s := &Static{next: next}
	s.Set(nil)
	return s
}

// StaticConsumerID is the consumer id of a static key's consumer.
func StaticConsumerID(name string) string { return "static:" + name }

// Set replaces the static keys.
func (s *Static) Set(keys []StaticKey) {
	m := make(map[string]staticEntry, len(keys))
	for _, k := range keys {
		m[string(k.Hash)] = staticEntry{
			key: Key{ID: k.ID, ConsumerID: StaticConsumerID(k.ConsumerName), Hash: slices.Clone(k.Hash), Hint: "static",
				Scopes: slices.Clone(k.Scopes), Routes: slices.Clone(k.Routes), Status: StatusActive},
			consumer: Consumer{ID: StaticConsumerID(k.ConsumerName), Name: k.ConsumerName, Groups: slices.Clone(k.Groups)},
		}
	}
	s.set.Store(&m)
}

func (s *Static) byID(id string) (*staticEntry, bool) {
	for _, e := range *s.set.Load() {
		if e.key.ID == id {
			return &e, true
		}
	}
	return nil, false
}

var errReadOnly = fmt.Errorf("apikey: static keys only, no store: %w", ErrUnavailable)

// LookupKey implements Store: static keys first.
func (s *Static) LookupKey(ctx context.Context, hash []byte) (*Key, *Consumer, error) {
	if e, ok := (*s.set.Load())[string(hash)]; ok {
		k, c := e.key, e.consumer
		return &k, &c, nil
	}
	if s.next == nil {
		return nil, nil, ErrNotFound
	}
	return s.next.LookupKey(ctx, hash)
}

// GetKey implements Store.
func (s *Static) GetKey(ctx context.Context, id string) (*Key, error) {
	if e, ok := s.byID(id); ok {
		k := e.key
		return &k, nil
	}
	if s.next == nil {
		return nil, ErrNotFound
	}
	return s.next.GetKey(ctx, id)
}

// UpdateKey implements Store; static keys cannot be changed.
func (s *Static) UpdateKey(ctx context.Context, k *Key) error {
	if _, ok := s.byID(k.ID); ok {
		return fmt.Errorf("apikey: %s is a static key; change the configuration instead: %w", k.ID, ErrConflict)
	}
	if s.next == nil {
		return errReadOnly
	}
	return s.next.UpdateKey(ctx, k)
}

// TouchKeys implements Store; static keys keep no last-used time.
func (s *Static) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if s.next == nil {
		return nil
	}
	rest := make(map[string]time.Time, len(lastUsed))
	for id, t := range lastUsed {
		if _, ok := s.byID(id); !ok {
			rest[id] = t
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return s.next.TouchKeys(ctx, rest)
}

// The remaining methods manage stored consumers and keys only.

func (s *Static) CreateConsumer(ctx context.Context, c *Consumer) error {
	if s.next == nil {
		return errReadOnly
	}
	return s.next.CreateConsumer(ctx, c)
}

func (s *Static) GetConsumer(ctx context.Context, id string) (*Consumer, error) {
	if s.next == nil {
		return nil, ErrNotFound
	}
	return s.next.GetConsumer(ctx, id)
}

func (s *Static) GetConsumerByName(ctx context.Context, name string) (*Consumer, error) {
	if s.next == nil {
		return nil, ErrNotFound
	}
	return s.next.GetConsumerByName(ctx, name)
}

func (s *Static) ListConsumers(ctx context.Context) ([]*Consumer, error) {
	if s.next == nil {
		return nil, nil
	}
	return s.next.ListConsumers(ctx)
}

func (s *Static) DeleteConsumer(ctx context.Context, id string) error {
	if s.next == nil {
		return errReadOnly
	}
	return s.next.DeleteConsumer(ctx, id)
}

func (s *Static) CreateKey(ctx context.Context, k *Key) error {
	if _, clash := (*s.set.Load())[string(k.Hash)]; clash {
		return ErrConflict
	}
	if s.next == nil {
		return errReadOnly
	}
	return s.next.CreateKey(ctx, k)
}

func (s *Static) ListKeys(ctx context.Context, consumerID string) ([]*Key, error) {
	if s.next == nil {
		return nil, nil
	}
	return s.next.ListKeys(ctx, consumerID)
}

// Close closes the underlying store.
func (s *Static) Close() error {
	if s.next == nil {
		return nil
	}
	return s.next.Close()
}
