package revocation

import (
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// List is the in-memory revocation list: an immutable snapshot behind an
// atomic pointer. Replace swaps in a new snapshot (copy on write); Check
// never locks and never allocates. The zero List is not loaded: Check
// reports that, and callers fail closed.
type List struct {
	cur atomic.Pointer[snapshot]
	// Now is the clock for entry expiry. Default time.Now.
	Now func() time.Time
}

// snapshot is one immutable state of the list. The maps are keyed by the
// value alone (string keys take the runtime's fastest map path); the
// issuer, when an entry has one, is compared on the few entries a key
// holds. Several entries may share a key (other issuers, before times or
// expiries), so each maps to a slice, checked in full.
type snapshot struct {
	n     int
	jti   map[string][]*Entry
	token map[[32]byte][]*Entry
	// subject holds the subject and issuer_subject kinds.
	subject map[string][]*Entry
	client  map[string][]*Entry
	// session holds the session kind, by sid.
	session  map[string][]*Entry
	entries  []*Entry
	loadedAt time.Time
}

// Replace makes entries the list (entries already expired at now are
// left out). The entries must not be changed afterwards.
func (l *List) Replace(entries []*Entry) {
	now := l.now()
	s := &snapshot{
		jti: map[string][]*Entry{}, token: map[[32]byte][]*Entry{}, subject: map[string][]*Entry{},
		client: map[string][]*Entry{}, session: map[string][]*Entry{}, loadedAt: now,
	}
	for _, e := range entries {
		if e == nil || !e.Active(now) {
			continue
		}
		switch e.Kind {
		case KindJTI:
			s.jti[e.Value] = append(s.jti[e.Value], e)
		case KindToken:
			var h [32]byte
			if n, err := hex.Decode(h[:], []byte(e.Value)); err != nil || n != 32 {
				continue
			}
			s.token[h] = append(s.token[h], e)
		case KindSubject, KindIssuerSubject:
			if e.Kind == KindSubject && e.Before == nil {
				continue
			}
			s.subject[e.Value] = append(s.subject[e.Value], e)
		case KindClient:
			s.client[e.Value] = append(s.client[e.Value], e)
		case KindSession:
			s.session[e.Value] = append(s.session[e.Value], e)
		default:
			continue
		}
		s.entries = append(s.entries, e)
		s.n++
	}
	l.cur.Store(s)
}

// Loaded reports whether the list has been loaded at least once.
func (l *List) Loaded() bool { return l.cur.Load() != nil }

// Len is the number of entries in the snapshot (some may have expired
// since it was taken).
func (l *List) Len() int {
	if s := l.cur.Load(); s != nil {
		return s.n
	}
	return 0
}

// Entries returns the snapshot's entries (shared: do not modify).
func (l *List) Entries() []*Entry {
	if s := l.cur.Load(); s != nil {
		return s.entries
	}
	return nil
}

func (l *List) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Check returns the entry that revokes the identity's credential, or nil.
// Every credential of a composite identity (an AND chain) is checked: one
// revoked credential refuses the request. loaded is false while the list
// has never been loaded: the caller must fail closed (it cannot know).
// The anonymous identity is never revoked.
func (l *List) Check(id *identity.Identity) (e *Entry, loaded bool) {
	s := l.cur.Load()
	if s == nil {
		return nil, false
	}
	if s.n == 0 || id.IsAnonymous() {
		return nil, true
	}
	if id.SessionID != "" && len(s.session) > 0 {
		if es := s.session[id.SessionID]; es != nil {
			if e := match(l, es, id.Issuer, id.IssuedAt); e != nil {
				return e, true
			}
		}
	}
	if id.Credentials == nil {
		return s.check(l, id.Issuer, id.Subject, id.CredentialID, id.ClientID, id.IssuedAt, &id.TokenHash), true
	}
	for i := range id.Credentials {
		c := &id.Credentials[i]
		if e := s.check(l, c.Issuer, c.Subject, c.CredentialID, c.ClientID, c.IssuedAt, &c.TokenHash); e != nil {
			return e, true
		}
	}
	return nil, true
}

// check looks one credential up: at most four map lookups. The clock is
// read only when an entry matches (the common request matches nothing).
func (s *snapshot) check(l *List, iss, sub, jti, client string, iat time.Time, hash *[32]byte) *Entry {
	if *hash != ([32]byte{}) && len(s.token) > 0 {
		if es := s.token[*hash]; es != nil {
			if e := match(l, es, iss, iat); e != nil {
				return e
			}
		}
	}
	if jti != "" && len(s.jti) > 0 {
		if es := s.jti[jti]; es != nil {
			if e := match(l, es, iss, iat); e != nil {
				return e
			}
		}
	}
	if sub != "" && len(s.subject) > 0 {
		if es := s.subject[sub]; es != nil {
			if e := match(l, es, iss, iat); e != nil {
				return e
			}
		}
	}
	if client != "" && len(s.client) > 0 {
		if es := s.client[client]; es != nil {
			if e := match(l, es, iss, iat); e != nil {
				return e
			}
		}
	}
	return nil
}

// match returns the first of es (entries whose value matched) that
// applies to a credential of issuer iss issued at iat.
func match(l *List, es []*Entry, iss string, iat time.Time) *Entry {
	now := l.now()
	for _, e := range es {
		if e.Issuer != "" && e.Issuer != iss {
			continue
		}
		if !e.Active(now) {
			continue
		}
		// A credential without iat cannot show it was issued after the
		// cut-off: revoked (fail closed).
		if e.Before != nil && !iat.IsZero() && !iat.Before(*e.Before) {
			continue
		}
		return e
	}
	return nil
}

// SubjectLevel reports whether e revokes a subject's tokens wholesale
// (subject, issuer_subject) rather than one token or client: the audit
// reason is then subject_revoked instead of token_revoked.
func (e *Entry) SubjectLevel() bool {
	return e.Kind == KindSubject || e.Kind == KindIssuerSubject || e.Kind == KindSession
}
