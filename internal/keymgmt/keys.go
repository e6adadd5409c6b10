package keymgmt

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// NewKey is a request to issue a key.
type NewKey struct {
	// Name is an optional label, with the consumer-name rule.
	Name string
	// Scopes granted to the key (apikey.ValidateScope each).
	Scopes []string
	// Routes the key may be used on (route names or tags); empty means any
	// route that accepts API keys.
	Routes []string
	// Tier names a rate-limit tier; empty is the route's default.
	Tier string
	// ExpiresAt, if set, must be in the future. nil: the key never expires.
	ExpiresAt *time.Time
}

func (n *NewKey) validate(now time.Time) error {
	var v validator
	if n.Name != "" && apikey.ValidateConsumerName(n.Name) != nil {
		v.add("name", nameRule)
	}
	v.names("scopes", n.Scopes, apikey.ValidateScope, scopeRule)
	v.names("routes", n.Routes, apikey.ValidateTag, nameRule)
	if n.Tier != "" && apikey.ValidateTag(n.Tier) != nil {
		v.add("rate_limit_tier", nameRule)
	}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		v.add("expires_at", "must be in the future")
	}
	return v.err()
}

// CreateKey issues a key to a consumer (by id or name). It returns the
// stored key and the plaintext, which exists nowhere else: show it to its
// owner once.
func (s *Service) CreateKey(ctx context.Context, consumerIDOrName string, n NewKey) (key *apikey.Key, plaintext string, err error) {
	now := s.now()
	if err := n.validate(now); err != nil {
		return nil, "", err
	}
	c, err := s.GetConsumer(ctx, consumerIDOrName)
	if err != nil {
		return nil, "", err
	}
	k, plaintext, err := s.issue(ctx, c.ID, n, now)
	if err != nil {
		return nil, "", err
	}
	s.log(TypeKeyCreated, c, c.ID, k.ID)
	return k, plaintext, nil
}

// issue generates and stores a key; n is already valid.
func (s *Service) issue(ctx context.Context, consumerID string, n NewKey, now time.Time) (*apikey.Key, string, error) {
	plaintext, err := s.Format.Generate()
	if err != nil {
		return nil, "", fmt.Errorf("keymgmt: generate key: %w", err)
	}
	k := &apikey.Key{
		ID:         apikey.NewKeyID(),
		ConsumerID: consumerID,
		Hash:       s.Hasher.Hash(plaintext),
		Hint:       apikey.Hint(plaintext),
		Name:       n.Name,
		Scopes:     slices.Clone(n.Scopes),
		Routes:     slices.Clone(n.Routes),
		Tier:       n.Tier,
		Status:     apikey.StatusActive,
		CreatedAt:  now,
	}
	if n.ExpiresAt != nil {
		exp := n.ExpiresAt.UTC().Truncate(time.Microsecond)
		k.ExpiresAt = &exp
	}
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return nil, "", fmt.Errorf("keymgmt: create key: %w", err)
	}
	return k, plaintext, nil
}

// GetKey returns a key by id. A string that is not a key id is
// apikey.ErrNotFound.
func (s *Service) GetKey(ctx context.Context, keyID string) (*apikey.Key, error) {
	if apikey.ValidateKeyID(keyID) != nil {
		return nil, notFound("key", keyID)
	}
	k, err := s.Store.GetKey(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("keymgmt: get key: %w", err)
	}
	return k, nil
}

// ListKeys lists the keys of a consumer (by id or name; an unknown one is
// apikey.ErrNotFound), or all keys when consumerIDOrName is "".
func (s *Service) ListKeys(ctx context.Context, consumerIDOrName string) ([]*apikey.Key, error) {
	consumerID := ""
	if consumerIDOrName != "" {
		c, err := s.GetConsumer(ctx, consumerIDOrName)
		if err != nil {
			return nil, err
		}
		consumerID = c.ID
	}
	keys, err := s.Store.ListKeys(ctx, consumerID)
	if err != nil {
		return nil, fmt.Errorf("keymgmt: list keys: %w", err)
	}
	return keys, nil
}

// RotateKey issues a successor to a key and winds the old key down.
//
// The successor copies the old key's name, scopes, routes, tier and
// expiry. The old key keeps working for grace (nil: RotationGrace; 0: it
// stops at once), never beyond its own expiry: its ExpiresAt becomes
// min(now+grace, ExpiresAt) and RotatedTo names the successor. Its cache
// entry is dropped so the new expiry applies at once.
//
// A revoked (ErrKeyRevoked), expired (ErrKeyExpired) or already rotated
// (ErrKeyRotated) key cannot be rotated; a negative grace is a
// *ValidationError on field "grace". Rotations are serialised on this
// Service, so concurrent rotations of one key issue one successor.
func (s *Service) RotateKey(ctx context.Context, keyID string, grace *time.Duration) (newKey *apikey.Key, plaintext string, old *apikey.Key, err error) {
	g := s.RotationGrace
	if grace != nil {
		g = *grace
	}
	if g < 0 {
		return nil, "", nil, &ValidationError{Fields: []FieldError{{"grace", "must not be negative"}}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err = s.GetKey(ctx, keyID)
	if err != nil {
		return nil, "", nil, err
	}
	now := s.now()
	switch {
	case old.Status == apikey.StatusRevoked:
		return nil, "", nil, fmt.Errorf("keymgmt: rotate key %s: %w", old.ID, ErrKeyRevoked)
	case old.RotatedTo != "":
		return nil, "", nil, fmt.Errorf("keymgmt: rotate key %s: %w", old.ID, ErrKeyRotated)
	case !old.Usable(now):
		return nil, "", nil, fmt.Errorf("keymgmt: rotate key %s: %w", old.ID, ErrKeyExpired)
	}
	c, err := s.Store.GetConsumer(ctx, old.ConsumerID)
	if err != nil {
		return nil, "", nil, fmt.Errorf("keymgmt: rotate key %s: %w", old.ID, err)
	}
	newKey, plaintext, err = s.issue(ctx, old.ConsumerID, NewKey{
		Name:      old.Name,
		Scopes:    old.Scopes,
		Routes:    old.Routes,
		Tier:      old.Tier,
		ExpiresAt: old.ExpiresAt,
	}, now)
	if err != nil {
		return nil, "", nil, err
	}
	end := now.Add(g)
	if old.ExpiresAt != nil && old.ExpiresAt.Before(end) {
		end = *old.ExpiresAt
	}
	old.ExpiresAt = &end
	old.RotatedTo = newKey.ID
	if err := s.Store.UpdateKey(ctx, old); err != nil {
		// Best effort: do not leave a working successor that nobody
		// received and that is not linked to the old key.
		newKey.Status = apikey.StatusRevoked
		newKey.RevokedAt = &now
		_ = s.Store.UpdateKey(context.WithoutCancel(ctx), newKey)
		s.invalidate(newKey.ID)
		return nil, "", nil, fmt.Errorf("keymgmt: rotate key %s: %w", old.ID, err)
	}
	s.invalidate(old.ID)
	s.log(TypeKeyCreated, c, c.ID, newKey.ID)
	s.log(TypeKeyRotated, c, c.ID, old.ID)
	return newKey, plaintext, old, nil
}

// RevokeKey revokes a key: it stops working at once (its cache entry is
// dropped). Revoking a revoked key returns it unchanged, without a second
// audit event.
func (s *Service) RevokeKey(ctx context.Context, keyID string) (*apikey.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.GetKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if k.Status == apikey.StatusRevoked {
		s.invalidate(k.ID)
		return k, nil
	}
	now := s.now()
	k.Status = apikey.StatusRevoked
	k.RevokedAt = &now
	if err := s.Store.UpdateKey(ctx, k); err != nil {
		return nil, fmt.Errorf("keymgmt: revoke key %s: %w", k.ID, err)
	}
	s.invalidate(k.ID)
	c, err := s.Store.GetConsumer(ctx, k.ConsumerID)
	if err != nil {
		c = nil // the event still names the consumer id
	}
	s.log(TypeKeyRevoked, c, k.ConsumerID, k.ID)
	return k, nil
}

// LookupKey finds the stored key that plaintext is, with its consumer, the
// way the gateway's authenticator does (format check, then the keyed hash):
// for tools that explain a decision while a gateway holds the store. A
// malformed or unknown key is apikey.ErrNotFound. The caller decides
// whether the key is usable; plaintext is never logged or returned.
func (s *Service) LookupKey(ctx context.Context, plaintext string) (*apikey.Key, *apikey.Consumer, error) {
	if err := s.Format.Check(plaintext); err != nil {
		return nil, nil, fmt.Errorf("keymgmt: malformed key: %w", apikey.ErrNotFound)
	}
	k, c, err := s.Store.LookupKey(ctx, s.Hasher.Hash(plaintext))
	if err != nil {
		return nil, nil, fmt.Errorf("keymgmt: lookup key: %w", err)
	}
	return k, c, nil
}
