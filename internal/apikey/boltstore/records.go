package boltstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// The on-disk records are separate from the apikey types on purpose: a
// change to the domain model must not silently change the file format.
// Times are stored in UTC at microsecond precision, the precision the
// PostgreSQL store has, so both stores behave alike.

type consumerRecord struct {
	V         int               `json:"v"`
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Groups    []string          `json:"groups,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

type keyRecord struct {
	V          int           `json:"v"`
	ID         string        `json:"id"`
	ConsumerID string        `json:"consumer_id"`
	Hash       []byte        `json:"hash"`
	Hint       string        `json:"hint,omitempty"`
	Name       string        `json:"name,omitempty"`
	Scopes     []string      `json:"scopes,omitempty"`
	Routes     []string      `json:"routes,omitempty"`
	Tier       string        `json:"tier,omitempty"`
	Status     apikey.Status `json:"status"`
	CreatedAt  time.Time     `json:"created_at"`
	ExpiresAt  *time.Time    `json:"expires_at,omitempty"`
	RevokedAt  *time.Time    `json:"revoked_at,omitempty"`
	RotatedTo  string        `json:"rotated_to,omitempty"`
	LastUsedAt *time.Time    `json:"last_used_at,omitempty"`
}

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func consumerToRecord(c *apikey.Consumer) *consumerRecord {
	var md map[string]string
	if len(c.Metadata) > 0 {
		md = make(map[string]string, len(c.Metadata))
		for k, v := range c.Metadata {
			md[k] = v
		}
	}
	return &consumerRecord{
		V:         schemaVersion,
		ID:        c.ID,
		Name:      c.Name,
		Groups:    cloneStrings(c.Groups),
		Tags:      cloneStrings(c.Tags),
		Metadata:  md,
		CreatedAt: normTime(c.CreatedAt),
	}
}

func (r *consumerRecord) consumer() *apikey.Consumer {
	return &apikey.Consumer{
		ID:        r.ID,
		Name:      r.Name,
		Groups:    r.Groups,
		Tags:      r.Tags,
		Metadata:  r.Metadata,
		CreatedAt: r.CreatedAt.UTC(),
	}
}

func keyToRecord(k *apikey.Key) *keyRecord {
	r := &keyRecord{
		V:          schemaVersion,
		ID:         k.ID,
		ConsumerID: k.ConsumerID,
		Hash:       append([]byte(nil), k.Hash...),
		Hint:       k.Hint,
		CreatedAt:  normTime(k.CreatedAt),
		LastUsedAt: normTimePtr(k.LastUsedAt),
	}
	r.setMutable(k)
	return r
}

// setMutable copies the fields UpdateKey may change.
func (r *keyRecord) setMutable(k *apikey.Key) {
	r.Status = k.Status
	r.ExpiresAt = normTimePtr(k.ExpiresAt)
	r.RevokedAt = normTimePtr(k.RevokedAt)
	r.RotatedTo = k.RotatedTo
	r.Name = k.Name
	r.Scopes = cloneStrings(k.Scopes)
	r.Routes = cloneStrings(k.Routes)
	r.Tier = k.Tier
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r *keyRecord) key() *apikey.Key {
	return &apikey.Key{
		ID:         r.ID,
		ConsumerID: r.ConsumerID,
		Hash:       r.Hash,
		Hint:       r.Hint,
		Name:       r.Name,
		Scopes:     r.Scopes,
		Routes:     r.Routes,
		Tier:       r.Tier,
		Status:     r.Status,
		CreatedAt:  r.CreatedAt.UTC(),
		ExpiresAt:  utcPtr(r.ExpiresAt),
		RevokedAt:  utcPtr(r.RevokedAt),
		RotatedTo:  r.RotatedTo,
		LastUsedAt: utcPtr(r.LastUsedAt),
	}
}

// decode reads a record and checks its schema version. data belongs to a
// bbolt transaction; json.Unmarshal copies everything out of it.
func decode(kind string, data []byte, v any, version func() int) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", errCorrupt, kind, err)
	}
	switch got := version(); {
	case got < 1:
		return fmt.Errorf("%w: %s without schema version", errCorrupt, kind)
	case got > schemaVersion:
		return fmt.Errorf("%w: %s has schema version %d, this binary reads up to %d", errCorrupt, kind, got, schemaVersion)
	}
	return nil
}

func decodeConsumer(data []byte) (*consumerRecord, error) {
	var r consumerRecord
	if err := decode("consumer", data, &r, func() int { return r.V }); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeKey(data []byte) (*keyRecord, error) {
	var r keyRecord
	if err := decode("key", data, &r, func() int { return r.V }); err != nil {
		return nil, err
	}
	return &r, nil
}
