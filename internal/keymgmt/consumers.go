package keymgmt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// NewConsumer is a request to create a consumer.
type NewConsumer struct {
	// Name is unique, 1 to 64 of [a-zA-Z0-9._-] starting with a letter or
	// digit, and must not look like a consumer id ("c_…"), so that
	// GetConsumer's id-or-name lookup is never ambiguous.
	Name string
	// Groups and Tags follow the same rule as Name; at most MaxListLen each.
	Groups, Tags []string
	// Metadata is free-form: at most MaxMetadataEntries entries, keys up to
	// MaxMetadataKeyLen bytes, values up to MaxMetadataValueLen bytes.
	Metadata map[string]string
}

func (n *NewConsumer) validate() error {
	var v validator
	switch {
	case apikey.ValidateConsumerName(n.Name) != nil:
		if n.Name == "" {
			v.add("name", "is required")
		} else {
			v.add("name", nameRule)
		}
	case apikey.ValidateConsumerID(n.Name) == nil:
		v.add("name", "must not have the form of a consumer id")
	}
	v.names("groups", n.Groups, apikey.ValidateGroup, nameRule)
	v.names("tags", n.Tags, apikey.ValidateTag, nameRule)
	if len(n.Metadata) > MaxMetadataEntries {
		v.add("metadata", fmt.Sprintf("must have at most %d entries", MaxMetadataEntries))
	} else {
		for _, k := range slices.Sorted(maps.Keys(n.Metadata)) {
			val := n.Metadata[k]
			switch {
			case k == "" || len(k) > MaxMetadataKeyLen || !utf8.ValidString(k):
				v.add("metadata", fmt.Sprintf("keys must be 1 to %d bytes of UTF-8", MaxMetadataKeyLen))
			case len(val) > MaxMetadataValueLen || !utf8.ValidString(val):
				v.add("metadata."+k, fmt.Sprintf("must be at most %d bytes of UTF-8", MaxMetadataValueLen))
			}
		}
	}
	return v.err()
}

// CreateConsumer validates n and stores a new consumer. A taken name is
// apikey.ErrConflict; invalid fields are a *ValidationError.
func (s *Service) CreateConsumer(ctx context.Context, n NewConsumer) (*apikey.Consumer, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	c := &apikey.Consumer{
		ID:        apikey.NewConsumerID(),
		Name:      n.Name,
		Groups:    slices.Clone(n.Groups),
		Tags:      slices.Clone(n.Tags),
		Metadata:  maps.Clone(n.Metadata),
		CreatedAt: s.now(),
	}
	if err := s.Store.CreateConsumer(ctx, c); err != nil {
		return nil, fmt.Errorf("keymgmt: create consumer: %w", err)
	}
	s.log(TypeConsumerCreated, c, c.ID, "")
	return c, nil
}

// GetConsumer finds a consumer by id ("c_…") or, failing that, by name.
// Anything that is neither is apikey.ErrNotFound.
func (s *Service) GetConsumer(ctx context.Context, idOrName string) (*apikey.Consumer, error) {
	if apikey.ValidateConsumerID(idOrName) == nil {
		c, err := s.Store.GetConsumer(ctx, idOrName)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, apikey.ErrNotFound) {
			return nil, fmt.Errorf("keymgmt: get consumer: %w", err)
		}
	}
	if apikey.ValidateConsumerName(idOrName) != nil {
		return nil, notFound("consumer", idOrName)
	}
	c, err := s.Store.GetConsumerByName(ctx, idOrName)
	if err != nil {
		return nil, fmt.Errorf("keymgmt: get consumer: %w", err)
	}
	return c, nil
}

// ListConsumers lists every consumer, oldest first.
func (s *Service) ListConsumers(ctx context.Context) ([]*apikey.Consumer, error) {
	cs, err := s.Store.ListConsumers(ctx)
	if err != nil {
		return nil, fmt.Errorf("keymgmt: list consumers: %w", err)
	}
	return cs, nil
}

// DeleteConsumer deletes a consumer (by id or name) with all its keys, and
// drops those keys from the cache.
func (s *Service) DeleteConsumer(ctx context.Context, idOrName string) error {
	c, err := s.GetConsumer(ctx, idOrName)
	if err != nil {
		return err
	}
	keys, err := s.Store.ListKeys(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("keymgmt: delete consumer: %w", err)
	}
	if err := s.Store.DeleteConsumer(ctx, c.ID); err != nil {
		return fmt.Errorf("keymgmt: delete consumer: %w", err)
	}
	for _, k := range keys {
		s.invalidate(k.ID)
	}
	s.log(TypeConsumerDeleted, c, c.ID, "")
	return nil
}
