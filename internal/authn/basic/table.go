package basic

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// table is one immutable generation of a users source, with its own
// verified-credential cache: a reload or a user change makes a new table,
// so nothing verified against the old users survives it.
type table struct {
	users map[string]*entry
	cache *cache
	// flight collapses concurrent verifications of one user and password
	// (keyed by its cacheKey) into one: when a cached credential expires
	// under load, the many connections of one client wait for a single
	// hash instead of each taking a verification slot (and getting 503
	// verification_busy). Per table, so a reload never shares a verdict
	// of the old users with requests of the new.
	flight singleflight.Group
}

// entry is a user and the identity it authenticates as, built once per
// table (identities are never modified once returned).
type entry struct {
	user *User
	id   *identity.Identity
}

func newTable(users []*User, ttl time.Duration, maxEntries int) *table {
	t := &table{users: make(map[string]*entry, len(users)), cache: newCache(ttl, maxEntries)}
	for _, u := range users {
		t.users[u.Name] = &entry{user: u, id: &identity.Identity{
			Method: Name, Subject: u.Name, Issuer: Issuer, CredentialID: CredentialID(u.Name),
			Roles: u.Roles, Groups: u.Groups, Scopes: u.Scopes,
		}}
	}
	return t
}

// CredentialID is the credential id of user name: in audit events, and
// the key brute-force protection counts failures under. Prefixed so that
// it never collides with an API key's id.
func CredentialID(name string) string { return "basic:" + name }

// cacheKey is HMAC-SHA256(processKey, user ‖ 0 ‖ password): the cache
// never holds a password, nor a value that could be checked against a
// guess without the per-process key, which never leaves memory.
type cacheKey [sha256.Size]byte

var (
	processKey = func() []byte {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			panic("basic: no randomness for the cache key: " + err.Error())
		}
		return k
	}()
	macs = sync.Pool{New: func() any { return hmac.New(sha256.New, processKey) }}
)

func keyOf(user string, password []byte) cacheKey {
	m := macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write(password)
	var k cacheKey
	m.Sum(k[:0])
	macs.Put(m)
	return k
}

// cache remembers verified (user, password) pairs for a short time, so a
// legacy client that sends the same password on every request pays
// argon2id once per TTL. Only successes are cached: a wrong password is
// verified in full every time (and counted by brute-force protection).
type cache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[cacheKey]cached
}

type cached struct {
	e       *entry
	expires time.Time
}

func newCache(ttl time.Duration, maxEntries int) *cache {
	if ttl <= 0 || maxEntries <= 0 {
		return nil
	}
	return &cache{ttl: ttl, max: maxEntries, m: map[cacheKey]cached{}}
}

func (c *cache) get(k cacheKey, now time.Time) *entry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !now.Before(v.expires) {
		return nil
	}
	return v.e
}

func (c *cache) put(k cacheKey, e *entry, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return // full of live entries: verify in full rather than grow
		}
	}
	c.m[k] = cached{e: e, expires: now.Add(c.ttl)}
}

// len reports the number of cached pairs (tests).
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
