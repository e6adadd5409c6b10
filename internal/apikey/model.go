// Package apikey is Gatehouse's API-key domain: consumers (the
// applications, partners or teams that own keys), keys stored only as
// hashes, the key format built for leak detection, and the Store interface
// that the embedded (bbolt) and PostgreSQL stores implement.
package apikey

import (
	"context"
	"errors"
	"time"
)

// Consumer owns credentials. Key-authenticated requests carry the consumer
// as their identity (method api_key).
type Consumer struct {
	ID        string            `json:"id"`   // stable, generated ("c_…")
	Name      string            `json:"name"` // unique, human-readable
	Groups    []string          `json:"groups,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Status of a key.
type Status string

// Key statuses. A rotated key stays active until its ExpiresAt (the grace
// period) and then stops working by itself; a revoked key stops at once.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
)

// Key is the stored form of an API key: never the key itself.
type Key struct {
	// ID is the non-secret key id shown in listings and audit events ("k_…").
	ID         string `json:"id"`
	ConsumerID string `json:"consumer_id"`
	// Hash is the keyed hash of the whole key string (see Hasher); the
	// lookup index. Never serialized to clients.
	Hash []byte `json:"-"`
	// Hint is the key's prefix and last four characters, for humans
	// ("gate_live_…a1b2"): enough to recognise a key, useless to use it.
	Hint      string     `json:"hint"`
	Name      string     `json:"name,omitempty"`
	Scopes    []string   `json:"scopes,omitempty"`
	Routes    []string   `json:"routes,omitempty"` // allowed route names or tags; empty = any route that accepts api keys
	Tier      string     `json:"rate_limit_tier,omitempty"`
	Status    Status     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RotatedTo names the key that replaced this one, if any.
	RotatedTo  string     `json:"rotated_to,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Usable reports whether the key may authenticate at time now.
func (k *Key) Usable(now time.Time) bool {
	if k.Status != StatusActive {
		return false
	}
	return k.ExpiresAt == nil || now.Before(*k.ExpiresAt)
}

// Errors every Store returns, tested with errors.Is.
var (
	ErrNotFound = errors.New("apikey: not found")
	ErrConflict = errors.New("apikey: already exists")
	// ErrUnavailable means the store could not be reached: callers fail
	// closed (503), never open.
	ErrUnavailable = errors.New("apikey: store unavailable")
)

// Store persists consumers and hashed keys. Every method is safe for
// concurrent use; a write that returned nil is durable (fsynced / committed).
type Store interface {
	CreateConsumer(ctx context.Context, c *Consumer) error
	GetConsumer(ctx context.Context, id string) (*Consumer, error)
	// GetConsumerByName finds a consumer by its unique name.
	GetConsumerByName(ctx context.Context, name string) (*Consumer, error)
	ListConsumers(ctx context.Context) ([]*Consumer, error)
	// DeleteConsumer removes the consumer and every key it owns.
	DeleteConsumer(ctx context.Context, id string) error

	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, id string) (*Key, error)
	// ListKeys lists a consumer's keys, or all keys when consumerID is "".
	ListKeys(ctx context.Context, consumerID string) ([]*Key, error)
	// LookupKey finds a key by its hash, with its consumer.
	LookupKey(ctx context.Context, hash []byte) (*Key, *Consumer, error)
	// UpdateKey replaces the mutable fields of a key (status, expiry,
	// revocation, rotation link, name, scopes, routes, tier).
	UpdateKey(ctx context.Context, k *Key) error
	// TouchKeys records last-used times in one batch (never per request).
	TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error

	Close() error
}
