package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned by RedisStore.Load for a session that does not
// exist: never created, expired, or deleted (logout, back-channel
// logout, revocation).
var ErrNotFound = errors.New("session: not found")

// DefaultStoreTimeout bounds a store call whose context has no deadline.
const DefaultStoreTimeout = 2 * time.Second

// deleteBatch is how many session IDs DeleteBySID/DeleteBySubject read
// from an index per round trip; maxDeleteRounds bounds the rounds.
const (
	deleteBatch     = 500
	maxDeleteRounds = 1000
)

// RedisStore keeps sessions in Redis so that one can be revoked
// everywhere at once: the cookie carries only the sealed session ID.
// Session data is sealed with the store's Codec (tokens are secrets; a
// reader of Redis or of its backups learns none), bound to the session
// ID as purpose so that one key's value cannot be moved to another.
//
// Keys (prefix first; every key carries its own Redis Cluster hash tag,
// so the multi-key operations here are pipelines of single-key commands
// that a Cluster client routes by slot):
//
//	<prefix>session:{<id>}              sealed session, expires with its TTL
//	<prefix>session-sid:{<hash>}        sorted set of session IDs for (issuer, sid)
//	<prefix>session-sub:{<hash>}        sorted set of session IDs for (issuer, subject)
//
// The index hash is SHA-256 over issuer and sid (or subject), so no
// user identifier is visible in key names. Index members are scored by
// their session's expiry; Save prunes expired members, and an index
// expires with the last of its sessions. Needs Redis 7 or later (EXPIRE
// NX/GT).
type RedisStore struct {
	rdb     redis.UniversalClient
	prefix  string
	codec   *Codec
	now     func() time.Time
	timeout time.Duration
}

// StoreOption configures a RedisStore.
type StoreOption func(*RedisStore)

// WithCodec sets the Codec that seals session data in Redis. Required:
// without it Save and Load fail (sessions hold tokens; they are never
// stored in the clear).
func WithCodec(c *Codec) StoreOption { return func(s *RedisStore) { s.codec = c } }

// WithClock sets the clock used for index scores (default time.Now).
func WithClock(now func() time.Time) StoreOption { return func(s *RedisStore) { s.now = now } }

// WithTimeout bounds each call whose context has no deadline (default
// DefaultStoreTimeout).
func WithTimeout(d time.Duration) StoreOption { return func(s *RedisStore) { s.timeout = d } }

// NewRedisStore returns a store on client with keys under prefix (the
// configured Redis key prefix). Pass WithCodec: see RedisStore.
func NewRedisStore(client redis.UniversalClient, prefix string, opts ...StoreOption) *RedisStore {
	s := &RedisStore{rdb: client, prefix: prefix, now: time.Now, timeout: DefaultStoreTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

var errNoCodec = errors.New("session: RedisStore has no Codec (NewRedisStore(..., WithCodec(c)))")

func (s *RedisStore) sessionKey(id string) string { return s.prefix + "session:{" + id + "}" }

func (s *RedisStore) indexKey(kind, issuer, value string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(value))
	var sum [sha256.Size]byte
	return s.prefix + "session-" + kind + ":{" + hex.EncodeToString(h.Sum(sum[:0])[:16]) + "}"
}

// storePurpose binds a stored value to its session ID.
func storePurpose(id string) string { return "gatehouse session store\x00" + id }

func (s *RedisStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || s.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Save writes sess for ttl (which must be positive: every session
// expires) and indexes it by (Issuer, SID) and (Issuer, Subject) where
// those are set. Saving again replaces the data and extends the TTL.
func (s *RedisStore) Save(ctx context.Context, sess *Session, ttl time.Duration) error {
	if s.codec == nil {
		return errNoCodec
	}
	if ttl <= 0 {
		return errors.New("session: save: ttl must be positive")
	}
	plain, err := sess.Marshal()
	if err != nil {
		return err
	}
	sealed, err := s.codec.Seal(storePurpose(sess.ID), plain)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	now := s.now()
	expMs := now.Add(ttl).UnixMilli()
	// Redis EXPIRE has whole seconds: round up, so an index never
	// expires before a session it lists.
	idxTTL := (ttl + 2*time.Second - 1).Truncate(time.Second)
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, s.sessionKey(sess.ID), sealed, ttl)
	index := func(key string) {
		pipe.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		pipe.ZAdd(ctx, key, redis.Z{Score: float64(expMs), Member: sess.ID})
		pipe.ExpireNX(ctx, key, idxTTL)
		pipe.ExpireGT(ctx, key, idxTTL)
	}
	if sess.Issuer != "" && sess.SID != "" {
		index(s.indexKey("sid", sess.Issuer, sess.SID))
	}
	if sess.Issuer != "" && sess.Subject != "" {
		index(s.indexKey("sub", sess.Issuer, sess.Subject))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("session: redis save: %w", err)
	}
	return nil
}

// Load returns the session with id: ErrNotFound when there is none,
// ErrInvalid when its data does not open (e.g. the key that sealed it
// was removed), or a store error (the caller fails closed: 503).
func (s *RedisStore) Load(ctx context.Context, id string) (*Session, error) {
	if s.codec == nil {
		return nil, errNoCodec
	}
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: malformed session id", ErrInvalid)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	val, err := s.rdb.Get(ctx, s.sessionKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: redis load: %w", err)
	}
	plain, err := s.codec.Open(storePurpose(id), val)
	if err != nil {
		return nil, err
	}
	sess, err := Unmarshal(plain)
	if err != nil {
		return nil, err
	}
	if sess.ID != id {
		return nil, fmt.Errorf("%w: stored session id differs", ErrInvalid)
	}
	return sess, nil
}

// Delete removes the session with id (no error if there is none). Its
// index entries go stale and are pruned by time.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.rdb.Del(ctx, s.sessionKey(id)).Err(); err != nil {
		return fmt.Errorf("session: redis delete: %w", err)
	}
	return nil
}

// DeleteBySID removes every session the IdP session (issuer, sid)
// created, as OIDC Back-Channel Logout asks, and returns how many
// existed.
func (s *RedisStore) DeleteBySID(ctx context.Context, issuer, sid string) (int, error) {
	if issuer == "" || sid == "" {
		return 0, errors.New("session: delete by sid: issuer and sid are required")
	}
	return s.deleteIndexed(ctx, s.indexKey("sid", issuer, sid))
}

// DeleteBySubject removes every session of the user (issuer, subject)
// and returns how many existed.
func (s *RedisStore) DeleteBySubject(ctx context.Context, issuer, subject string) (int, error) {
	if issuer == "" || subject == "" {
		return 0, errors.New("session: delete by subject: issuer and subject are required")
	}
	return s.deleteIndexed(ctx, s.indexKey("sub", issuer, subject))
}

func (s *RedisStore) deleteIndexed(ctx context.Context, index string) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	deleted := 0
	for range maxDeleteRounds {
		ids, err := s.rdb.ZRange(ctx, index, 0, deleteBatch-1).Result()
		if err != nil {
			return deleted, fmt.Errorf("session: redis delete: %w", err)
		}
		if len(ids) == 0 {
			return deleted, nil
		}
		pipe := s.rdb.Pipeline()
		dels := make([]*redis.IntCmd, 0, len(ids))
		members := make([]any, 0, len(ids))
		for _, id := range ids {
			members = append(members, id)
			if ValidID(id) {
				// One DEL per key: a Cluster client routes each to its slot.
				dels = append(dels, pipe.Del(ctx, s.sessionKey(id)))
			}
		}
		// ZREM only what was read: a session saved meanwhile stays indexed.
		pipe.ZRem(ctx, index, members...)
		if _, err := pipe.Exec(ctx); err != nil {
			return deleted, fmt.Errorf("session: redis delete: %w", err)
		}
		for _, d := range dels {
			deleted += int(d.Val())
		}
	}
	return deleted, fmt.Errorf("session: redis delete: index still not empty after %d rounds", maxDeleteRounds)
}
