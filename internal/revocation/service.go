package revocation

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// DefaultMaxTokenLifetime is the longest token lifetime entries are kept
// for when nothing else is configured.
const DefaultMaxTokenLifetime = 24 * time.Hour

// Request asks for revocations of one kind: one entry per value.
type Request struct {
	Kind   Kind
	Issuer string
	Values []string
	Reason string
	// Before: the cut-off for subject (default: now) and client
	// (optional).
	Before *time.Time
	// Until overrides when the entries expire. Default: the longest
	// token lifetime after the cut-off (Before, or now).
	Until *time.Time
}

// Service is the admin side of the list: revoke, list, unrevoke. Writes
// go to the store and then to the local replica at once (Sync), so this
// process refuses the token before the call returns; other replicas hear
// of it through the store's feed.
type Service struct {
	Store   Store
	Replica *Replica // nil: no local list to update
	// MaxTokenLifetime is how long after the cut-off an entry can matter:
	// the longest lifetime of any accepted token. Default
	// DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	Now              func() time.Time
	// Audit receives one event per entry created or deleted
	// (revocation.created, revocation.deleted). nil drops them.
	Audit audit.Logger
	// Announce, if set, is called after every write the store has
	// committed, to tell other replicas beyond what the store announces
	// itself (Redis pub/sub: redisfeed.Feed.Announce). It must not block;
	// the write stands whatever becomes of the announcement.
	Announce func()
}

// MaxValues bounds the values of one request.
const MaxValues = 1000

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Entries builds and validates the entries of req at now, without
// storing them.
func (s *Service) Entries(req Request) ([]*Entry, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	life := s.MaxTokenLifetime
	if life <= 0 {
		life = DefaultMaxTokenLifetime
	}
	var fields []FieldError
	switch {
	case len(req.Values) == 0:
		fields = append(fields, FieldError{Field: "values", Message: "at least one value is required"})
	case len(req.Values) > MaxValues:
		fields = append(fields, FieldError{Field: "values", Message: "at most 1000 values per request"})
	}
	before := req.Before
	if req.Kind == KindSubject && before == nil {
		b := now
		before = &b
	}
	if before != nil {
		b := before.UTC().Truncate(time.Microsecond)
		before = &b
	}
	cut := now
	if before != nil && before.After(cut) {
		cut = *before
	}
	expires := cut.Add(life)
	if req.Until != nil {
		expires = req.Until.UTC().Truncate(time.Microsecond)
		if !expires.After(now) {
			fields = append(fields, FieldError{Field: "until", Message: "must be in the future"})
		}
	}
	if len(fields) > 0 {
		return nil, &ValidationError{Fields: fields}
	}
	out := make([]*Entry, 0, len(req.Values))
	for _, v := range req.Values {
		e := &Entry{ID: NewID(), Kind: req.Kind, Issuer: req.Issuer, Value: v, Before: before,
			Reason: req.Reason, CreatedAt: now, ExpiresAt: expires}
		if err := e.Validate(); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				for i := range ve.Fields {
					if ve.Fields[i].Field == "value" {
						ve.Fields[i].Field = "values"
					}
				}
			}
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Revoke stores the entries of req and applies them here at once.
func (s *Service) Revoke(ctx context.Context, req Request) ([]*Entry, error) {
	entries, err := s.Entries(req)
	if err != nil {
		return nil, err
	}
	if err := s.Store.AddRevocations(ctx, entries); err != nil {
		return nil, err
	}
	s.announce()
	s.sync(ctx)
	for _, e := range entries {
		s.log(audit.TypeRevocationCreated, e)
	}
	return entries, nil
}

// List returns the active entries, from the store.
func (s *Service) List(ctx context.Context) ([]*Entry, error) {
	return s.Store.ListRevocations(ctx, s.now())
}

// Unrevoke deletes an entry: what it matched works again (unless
// another entry matches it too).
func (s *Service) Unrevoke(ctx context.Context, id string) error {
	if err := s.Store.DeleteRevocation(ctx, id); err != nil {
		return err
	}
	s.announce()
	s.sync(ctx)
	s.log(audit.TypeRevocationDeleted, &Entry{ID: id})
	return nil
}

// log records a change of the list: the entry's id as credential_id, its
// issuer, and its value as subject or client_id for those kinds (a jti or
// a token hash is not repeated).
func (s *Service) log(typ string, e *Entry) {
	if s.Audit == nil {
		return
	}
	ev := &audit.Event{SchemaVersion: audit.SchemaVersion, Time: s.now(), Type: typ, Outcome: audit.OutcomeAllow,
		CredentialID: e.ID, Issuer: e.Issuer}
	ev.Reason = "revocation_created"
	if typ == audit.TypeRevocationDeleted {
		ev.Reason = "revocation_deleted"
	}
	switch e.Kind {
	case KindSubject, KindIssuerSubject:
		ev.Subject = e.Value
	case KindClient:
		ev.ClientID = e.Value
	}
	s.Audit.Log(ev)
}

// announce tells other replicas of a committed write (before the local
// reload, which they need not wait for).
func (s *Service) announce() {
	if s.Announce != nil {
		s.Announce()
	}
}

// sync applies a write here. A failed reload (the store answered the
// write a moment ago) is retried by the replica's poll.
func (s *Service) sync(ctx context.Context) {
	if s.Replica == nil {
		return
	}
	if err := s.Replica.Sync(ctx); err != nil {
		s.Replica.Changed()
	}
}
