// Package pgstore is the PostgreSQL implementation of apikey.Store, for
// several gateway replicas sharing one key database.
//
// Every table lives in one schema (Options.Schema), created and migrated by
// Open. Writes that change what a key authenticates (CreateKey, UpdateKey,
// DeleteConsumer) send a notification on the channel "gatehouse_keys" in the
// same transaction, so other replicas drop cached keys as soon as the write
// commits (see Options.OnChange). The revocation list (package revocation)
// lives in the same schema; its writes notify "gatehouse_revocations"
// (Options.OnRevocationChange).
//
// Errors wrap the apikey sentinels: apikey.ErrNotFound for missing rows and
// foreign-key violations, apikey.ErrConflict for unique violations, and
// apikey.ErrUnavailable when the database cannot be reached or times out,
// so that the gateway fails closed with 503.
package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "gatehouse"

// NotifyChannel is the LISTEN/NOTIFY channel that carries key changes. Its
// payload is a key id, or FlushAll.
const NotifyChannel = "gatehouse_keys"

// FlushAll is the key id passed to Options.OnChange when notifications may
// have been missed (the listener reconnected): callers drop every cached key.
const FlushAll = "*"

// Default timeouts of Options. Every call that leaves the process has a
// deadline: a partitioned database (packets dropped, nothing refused) must
// cost a bounded wait, never a hang.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultAcquireTimeout   = 2 * time.Second
	DefaultStatementTimeout = 5 * time.Second
	// migrateTimeout bounds the migrations Open runs.
	migrateTimeout = time.Minute
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Schema holds the store's tables. Default DefaultSchema ("gatehouse").
	// It is created if missing. It must be a plain lower-case identifier
	// (a-z, 0-9, _; at most 63 bytes) so that no two spellings name the same
	// schema. Tests use a unique schema per test for isolation.
	Schema string

	// OnChange, if set, is called with a key id when a key is created,
	// updated (revoked, rotated, re-scoped, …) or deleted with its consumer,
	// by this or any other replica using the same database. Key caches drop
	// that key at once instead of waiting for their TTL.
	//
	// It is called with FlushAll ("*") after the listener reconnects, since
	// notifications sent while it was disconnected are lost: callers must
	// then drop every cached key (and any negative cache).
	//
	// Calls come from one goroutine, in commit order, and never after Close
	// returns; a slow OnChange delays the notifications behind it, and one
	// that calls Close, or blocks until Close returns, deadlocks Close. Nil
	// (default) starts no listener and holds no extra connection.
	//
	// Notifications are per database, not per schema: stores on different
	// schemas of one database see each other's key ids. That costs a spurious
	// cache drop, never a missed one.
	OnChange func(keyID string)

	// OnRevocationChange, if set, is called after every change of the
	// revocation list (AddRevocations, DeleteRevocation) by any replica,
	// and after the listener reconnects: the caller reloads the list.
	// The same rules as for OnChange apply (one goroutine, quick, never
	// after Close). With either callback set the store listens.
	OnRevocationChange func()

	// ListenDSN, if set, is the connection string of the listener's
	// connection (OnChange, OnRevocationChange), for setups whose dsn goes
	// through a pooler in transaction mode, which cannot LISTEN. Default:
	// the dsn given to Open.
	ListenDSN string

	// ConnectTimeout bounds opening one connection (TCP, TLS, startup and
	// authentication), for the pool and the listener. Default
	// DefaultConnectTimeout (5s); a connect_timeout in the DSN wins.
	ConnectTimeout time.Duration
	// AcquireTimeout bounds the wait for a pooled connection, including
	// opening a new one. Default DefaultAcquireTimeout (2s).
	AcquireTimeout time.Duration
	// StatementTimeout is the server's statement_timeout for every
	// connection; a statement_timeout in the DSN wins. Every call also gets
	// a client-side deadline of AcquireTimeout + StatementTimeout + 1s (or
	// the caller's, when sooner), which holds even when the server cannot
	// be reached to enforce its own. Default DefaultStatementTimeout (5s).
	StatementTimeout time.Duration

	// ReadOnly skips the migrations (the schema must exist) and makes every
	// transaction read-only (default_transaction_read_only), for offline
	// tools such as gatehouse explain that must never write. Use it
	// without OnChange.
	ReadOnly bool

	// Log receives the listener's disconnects and reconnects (one line
	// each, not one per retry). Default slog.Default().
	Log *slog.Logger
}

// Store is an apikey.Store backed by PostgreSQL through a pgx pool. It is
// safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	q      queries
	qq     quotaQueries

	acquireTimeout, opTimeout time.Duration

	stopListen context.CancelFunc
	listenDone chan struct{}
	listening  atomic.Bool
	closeOnce  sync.Once
	closed     atomic.Bool
}

var _ apikey.Store = (*Store)(nil)

// Open connects to the database named by dsn (a libpq URL or key=value
// string; pool settings such as pool_max_conns and connect_timeout are
// honoured), creates and migrates the schema, and, if opts.OnChange is set,
// starts listening for key changes on a dedicated connection.
//
// Open fails, wrapping apikey.ErrUnavailable, if the database cannot be
// reached: a replica that cannot migrate or listen must not serve.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !validSchema(schema) {
		return nil, fmt.Errorf("pgstore: invalid schema name %q: want a-z, 0-9 and _, starting with a letter or _, at most 63 bytes", schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse dsn: %w", err)
	}
	acquire := cmp.Or(opts.AcquireTimeout, DefaultAcquireTimeout)
	statement := cmp.Or(opts.StatementTimeout, DefaultStatementTimeout)
	if opts.ConnectTimeout < 0 || opts.AcquireTimeout < 0 || opts.StatementTimeout < 0 {
		return nil, fmt.Errorf("pgstore: negative timeout")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = cmp.Or(opts.ConnectTimeout, DefaultConnectTimeout)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(statement.Milliseconds(), 10)
	}
	if opts.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open pool: %w", err)
	}
	s := &Store{
		pool:           pool,
		schema:         schema,
		q:              newQueries(pgx.Identifier{schema}.Sanitize()),
		qq:             newQuotaQueries(pgx.Identifier{schema}.Sanitize()),
		acquireTimeout: acquire,
		opTimeout:      acquire + statement + time.Second,
	}
	if opts.ReadOnly {
		// Nothing to migrate, but fail now, clearly, if the database cannot
		// be reached.
		pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			pool.Close()
			return nil, wrapErr("connect", err)
		}
	} else {
		mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
		err = migrate(mctx, pool, schema)
		cancel()
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	if opts.OnChange != nil || opts.OnRevocationChange != nil {
		lcfg := cfg.ConnConfig
		if opts.ListenDSN != "" {
			pc, err := pgxpool.ParseConfig(opts.ListenDSN)
			if err != nil {
				pool.Close()
				return nil, fmt.Errorf("pgstore: parse listen dsn: %w", err)
			}
			lcfg = pc.ConnConfig
			if lcfg.ConnectTimeout == 0 {
				lcfg.ConnectTimeout = cfg.ConnConfig.ConnectTimeout
			}
		}
		// Listen before returning, so no change committed after Open
		// returns can be missed.
		dctx, cancel := context.WithTimeout(ctx, listenDialWait)
		conn, err := connectListener(dctx, lcfg)
		cancel()
		if err != nil {
			pool.Close()
			return nil, wrapErr("listen", err)
		}
		lctx, cancel := context.WithCancel(context.Background())
		s.stopListen = cancel
		s.listenDone = make(chan struct{})
		s.listening.Store(true)
		l := &listener{cfg: lcfg, onChange: opts.OnChange, onRevocations: opts.OnRevocationChange, log: cmp.Or(opts.Log, slog.Default()), up: &s.listening}
		go func() {
			defer close(s.listenDone)
			l.run(lctx, conn)
		}()
	}
	return s, nil
}

// Listening reports whether the key-change listener is connected and
// listening now: false without OnChange and OnRevocationChange, while it reconnects, and after
// Close. While it is false, keys revoked on other replicas stop here only
// when their cache entry expires.
func (s *Store) Listening() bool { return s.listening.Load() }

// Close stops the listener, waits for it to exit and closes the pool,
// waiting for connections in use to be released, but no longer than one
// operation's deadline and a second. Later calls do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stopListen != nil {
			s.stopListen()
			<-s.listenDone
		}
		// In-flight calls end by their deadline, so waiting longer than one
		// operation means the database stopped answering: pgx then finishes
		// closing (up to 15s per connection) in the background, and Close
		// does not hold up a shutdown for it.
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.pool.Close()
		}()
		t := time.NewTimer(s.opTimeout + time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	})
	return nil
}

// conn acquires a pooled connection for one call and returns the call's
// context: the caller's, bounded by the operation deadline. The wait for
// the connection itself is bounded by the acquire timeout. Callers release
// the connection and call cancel.
func (s *Store) conn(ctx context.Context) (context.Context, context.CancelFunc, *pgxpool.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	actx, acancel := context.WithTimeout(ctx, s.acquireTimeout)
	c, err := s.pool.Acquire(actx)
	acancel()
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cancel, c, nil
}

// fail wraps a failed operation's error (see wrapErr). Calls racing with
// or following Close fail as unavailable.
func (s *Store) fail(op string, err error) error {
	if s.closed.Load() && kindOf(err) == nil {
		err = fmt.Errorf("%w: %w", errClosed, err)
	}
	return wrapErr(op, err)
}

// validSchema accepts plain lower-case identifiers. PostgreSQL folds
// unquoted names to lower case and truncates at 63 bytes; refusing anything
// else means the name in the config is exactly the name in the database.
func validSchema(s string) bool {
	if s == "" || len(s) > 63 || strings.HasPrefix(s, "pg_") {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
