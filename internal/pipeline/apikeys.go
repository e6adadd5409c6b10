package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
)

// APIKeys is the process-wide API-key runtime: the open store (an embedded
// store file can be opened by one process at a time, so it outlives plans),
// the key format and hasher, the batched last-used writer, and the one key
// cache every route's authenticator shares. The cache outlives plans too:
// a reload during a store outage keeps serving the keys it holds, and a
// revocation (admin API, NOTIFY from another replica) drops a key from it
// once for every route.
type APIKeys struct {
	Store  apikey.Store
	Format apikey.Format
	Hasher *apikey.Hasher
	cfg    config.APIKeys
	touch  *authnapikey.Toucher
	static *apikey.Static
	cache  *authnapikey.Cache

	mu         sync.Mutex
	staticKeys []config.StaticAPIKey // as last set
}

// OpenAPIKeys opens the configured store. Every setting but static takes
// effect only here, at start; a reload keeps the store and its cache.
func OpenAPIKeys(ctx context.Context, cfg config.APIKeys, log *slog.Logger) (*APIKeys, error) {
	return OpenAPIKeysObserved(ctx, cfg, log, nil)
}

// OpenAPIKeysObserved is OpenAPIKeys with an Observer (nil: none) that is
// told of every cache and store lookup, labelled with the store type.
func OpenAPIKeysObserved(ctx context.Context, cfg config.APIKeys, log *slog.Logger, o Observer) (*APIKeys, error) {
	format, err := apikey.NewFormat(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		return nil, err
	}
	k := &APIKeys{Format: format, Hasher: hasher, cfg: cfg}
	var next apikey.Store
	switch cfg.Store.Type {
	case "static":
		// Only the keys in the configuration; nothing to open.
	case "postgres":
		// Other replicas' changes arrive by LISTEN/NOTIFY and drop cached
		// keys at once; cache_ttl bounds the delay if a notification is lost.
		next, err = pgstore.Open(ctx, cfg.Store.DSN, pgstore.Options{
			Schema: cfg.Store.Schema, OnChange: k.Invalidate, Log: log,
			ConnectTimeout: cfg.Store.ConnectTimeout.Std(), AcquireTimeout: cfg.Store.AcquireTimeout.Std(),
			StatementTimeout: cfg.Store.StatementTimeout.Std(),
		})
	default:
		next, err = boltstore.Open(cfg.Store.Path, boltstore.Options{})
	}
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k.static = apikey.NewStatic(next)
	k.Store = k.static
	cc := authnapikey.CacheConfig{
		Store: k.Store, TTL: cfg.CacheTTL.Std(), NegativeTTL: cfg.NegativeCacheTTL.Std(),
		LookupTimeout: cfg.LookupTimeout.Std(), MaxLookups: cfg.MaxConcurrentLookups,
	}
	if o != nil {
		cc.Observer = apiKeyObserver{o: o, store: cfg.Store.Type}
	}
	k.cache, err = authnapikey.NewCache(cc)
	if err != nil {
		_ = k.Store.Close()
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k.SetStatic(cfg.Static)
	k.touch = authnapikey.NewToucher(k.Store, cfg.LastUsedInterval.Std(), log)
	return k, nil
}

// SetStatic replaces the keys declared in the configuration (at start and
// on every reload). When they changed, the old and new static keys are
// dropped from the cache, so removed or edited ones stop at once, and so
// is every key remembered as unknown, so added ones work at once; keys of
// the store stay cached (a reload during a store outage must not turn them
// into 503s). The entries were validated with the configuration.
func (k *APIKeys) SetStatic(keys []config.StaticAPIKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.staticKeys != nil && reflect.DeepEqual(k.staticKeys, keys) {
		return
	}
	out := make([]apikey.StaticKey, 0, len(keys))
	for _, s := range keys {
		hash, err := config.ParseTokenHash(s.Hash)
		if err != nil {
			continue
		}
		out = append(out, apikey.StaticKey{ID: s.ID, ConsumerName: s.Consumer, Hash: hash, Scopes: s.Scopes, Groups: s.Groups, Routes: s.Routes})
	}
	k.static.Set(out)
	for _, s := range k.staticKeys {
		k.cache.Invalidate(s.ID)
	}
	for _, s := range keys {
		k.cache.Invalidate(s.ID)
	}
	k.cache.ForgetUnknown()
	k.staticKeys = slices.Clone(keys)
	if k.staticKeys == nil {
		k.staticKeys = []config.StaticAPIKey{}
	}
}

// Invalidate drops a key (or "*": every key) from the cache every route
// shares.
func (k *APIKeys) Invalidate(keyID string) {
	if k.cache != nil { // nil only while OpenAPIKeys runs
		k.cache.Invalidate(keyID)
	}
}

// SettingsChanged reports whether cfg differs from the settings the runtime was
// opened with in anything a reload cannot apply (everything but static).
func (k *APIKeys) SettingsChanged(cfg config.APIKeys) bool {
	a, b := k.cfg, cfg
	a.Static, b.Static = nil, nil
	return !reflect.DeepEqual(a, b)
}

// Close flushes last-used times and closes the store.
func (k *APIKeys) Close() error {
	var terr error
	if k.touch != nil {
		terr = k.touch.Close()
	}
	if err := k.Store.Close(); err != nil {
		return err
	}
	return terr
}

// ExplainTimeout bounds how long OpenAPIKeysReadOnly waits for the
// embedded store's file lock.
const ExplainTimeout = 500 * time.Millisecond

// OpenAPIKeysReadOnly opens the configured store for reading only, for
// offline tools (gatehouse explain): the embedded file with a shared lock
// (which fails, wrapping apikey.ErrUnavailable, while a gateway has it
// open), PostgreSQL without migrations and in read-only transactions. It
// writes nothing, last-used times included, and listens to nothing.
func OpenAPIKeysReadOnly(ctx context.Context, cfg config.APIKeys) (*APIKeys, error) {
	var next apikey.Store
	var err error
	switch cfg.Store.Type {
	case "static":
	case "postgres":
		next, err = pgstore.Open(ctx, cfg.Store.DSN, pgstore.Options{
			Schema: cfg.Store.Schema, ReadOnly: true,
			ConnectTimeout: cfg.Store.ConnectTimeout.Std(), AcquireTimeout: cfg.Store.AcquireTimeout.Std(),
			StatementTimeout: cfg.Store.StatementTimeout.Std(),
		})
	default:
		next, err = boltstore.Open(cfg.Store.Path, boltstore.Options{ReadOnly: true, Timeout: ExplainTimeout})
	}
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	return newReadOnlyAPIKeys(cfg, next)
}

// NotEvaluatedError means a credential method could not be evaluated by an
// offline tool: explain and policy test report it and fail, never drop the
// method silently.
type NotEvaluatedError struct {
	Method string
	Why    string
}

func (e *NotEvaluatedError) Error() string {
	return "pipeline: " + e.Method + " cannot be evaluated offline: " + e.Why
}

// OfflineAPIKeys is an API-key runtime without a store, for offline tools
// when the store cannot be opened: static keys and malformed keys are
// judged as the gateway would, and every other key fails with a
// *NotEvaluatedError saying why.
func OfflineAPIKeys(cfg config.APIKeys, why string) (*APIKeys, error) {
	return newReadOnlyAPIKeys(cfg, notOpenStore{&NotEvaluatedError{Method: "api_key", Why: why}})
}

func newReadOnlyAPIKeys(cfg config.APIKeys, next apikey.Store) (*APIKeys, error) {
	closeNext := func() {
		if next != nil {
			_ = next.Close()
		}
	}
	format, err := apikey.NewFormat(cfg.Prefix)
	if err != nil {
		closeNext()
		return nil, err
	}
	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	hasher, err := apikey.NewHasher(pepper)
	if err != nil {
		closeNext()
		return nil, err
	}
	k := &APIKeys{Format: format, Hasher: hasher, cfg: cfg}
	k.static = apikey.NewStatic(next)
	k.Store = k.static
	if k.cache, err = authnapikey.NewCache(authnapikey.CacheConfig{Store: k.Store, LookupTimeout: cfg.LookupTimeout.Std()}); err != nil {
		closeNext()
		return nil, err
	}
	k.SetStatic(cfg.Static)
	return k, nil
}

// SnapshotAPIKeys is an API-key runtime that knows one stored key (k with
// its consumer c; k.Hash set) or, with k nil, none: for offline tools that
// looked a key up elsewhere (a running gateway's admin API). The key is
// then judged as the gateway judges it: status, expiry, routes, scopes.
// Static keys of cfg are judged too; any other key is unknown.
func SnapshotAPIKeys(cfg config.APIKeys, k *apikey.Key, c *apikey.Consumer) (*APIKeys, error) {
	return newReadOnlyAPIKeys(cfg, snapshotStore{notOpenStore: notOpenStore{errors.New("pipeline: a snapshot store holds one key only")}, key: k, consumer: c})
}

type snapshotStore struct {
	notOpenStore
	key      *apikey.Key
	consumer *apikey.Consumer
}

func (s snapshotStore) LookupKey(_ context.Context, hash []byte) (*apikey.Key, *apikey.Consumer, error) {
	if s.key == nil || !bytes.Equal(hash, s.key.Hash) {
		return nil, nil, apikey.ErrNotFound
	}
	return s.key, s.consumer, nil
}

// notOpenStore answers every call with its error.
type notOpenStore struct{ err error }

func (s notOpenStore) CreateConsumer(context.Context, *apikey.Consumer) error { return s.err }
func (s notOpenStore) GetConsumer(context.Context, string) (*apikey.Consumer, error) {
	return nil, s.err
}
func (s notOpenStore) GetConsumerByName(context.Context, string) (*apikey.Consumer, error) {
	return nil, s.err
}
func (s notOpenStore) ListConsumers(context.Context) ([]*apikey.Consumer, error) { return nil, s.err }
func (s notOpenStore) DeleteConsumer(context.Context, string) error              { return s.err }
func (s notOpenStore) CreateKey(context.Context, *apikey.Key) error              { return s.err }
func (s notOpenStore) GetKey(context.Context, string) (*apikey.Key, error)       { return nil, s.err }
func (s notOpenStore) ListKeys(context.Context, string) ([]*apikey.Key, error)   { return nil, s.err }
func (s notOpenStore) LookupKey(context.Context, []byte) (*apikey.Key, *apikey.Consumer, error) {
	return nil, nil, s.err
}
func (s notOpenStore) UpdateKey(context.Context, *apikey.Key) error          { return s.err }
func (s notOpenStore) TouchKeys(context.Context, map[string]time.Time) error { return s.err }
func (s notOpenStore) Close() error                                          { return nil }

// authenticator builds a route's API-key authenticator on the shared cache.
func (k *APIKeys) authenticator(routeName string, tags []string, queryParam string) (*authnapikey.Authenticator, error) {
	tags = slices.Clone(tags)
	return authnapikey.New(authnapikey.Config{
		Cache:                k.cache,
		Format:               k.Format,
		Hasher:               k.Hasher,
		Header:               k.cfg.Header,
		AuthorizationSchemes: k.cfg.AuthorizationSchemes,
		QueryParam:           queryParam,
		Touch:                k.touch,
		Routes:               func(*http.Request) (string, []string) { return routeName, tags },
	})
}
