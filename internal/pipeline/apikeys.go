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

// APIKeys is an API-key runtime: the open store, the key format and
// hasher, the batched last-used writer, and the one key cache every route's
// authenticator shares. A gateway acquires it through its resource
// registry (AcquireAPIKeys), keyed by the api_keys settings (all but
// static and rotation_grace): a reload that leaves them unchanged keeps the
// runtime, its open store and its warm cache, so a reload during a store
// outage keeps serving the keys the cache holds; a reload that changes
// them opens a new runtime (and, if the store settings changed, a new
// store) and the old one is closed when the last plan using it retires.
// Runtimes over one store share it (an embedded store file can be opened
// once), and a revocation (admin API, NOTIFY from another replica) drops
// a key from every cache over that store.
type APIKeys struct {
	Store  apikey.Store
	Format apikey.Format
	Hasher *apikey.Hasher
	cfg    config.APIKeys
	touch  *authnapikey.Toucher
	static *apikey.Static
	cache  *authnapikey.Cache
	// store is the store this runtime holds (shared with other runtimes
	// over the same store settings); release lets go of it.
	store   *keyStore
	release func()

	mu         sync.Mutex
	staticKeys []config.StaticAPIKey // as last set
}

// OpenAPIKeys opens the configured store and a runtime over it, owned by
// the caller (offline tools, tests); a gateway acquires its runtime from
// its resource registry instead (AcquireAPIKeys).
func OpenAPIKeys(ctx context.Context, cfg config.APIKeys, log *slog.Logger) (*APIKeys, error) {
	return OpenAPIKeysObserved(ctx, cfg, log, nil)
}

// OpenAPIKeysObserved is OpenAPIKeys with an Observer (nil: none) that is
// told of every cache and store lookup, labelled with the store type.
func OpenAPIKeysObserved(ctx context.Context, cfg config.APIKeys, log *slog.Logger, o Observer) (*APIKeys, error) {
	ks, err := openKeyStore(ctx, cfg.Store, log)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k, err := newAPIKeys(cfg, ks, ks.close, log, o)
	if err != nil {
		ks.close()
		return nil, err
	}
	return k, nil
}

// newAPIKeys builds a runtime over an open store; release lets go of the
// store when the runtime closes.
func newAPIKeys(cfg config.APIKeys, ks *keyStore, release func(), log *slog.Logger, o Observer) (*APIKeys, error) {
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
	k := &APIKeys{Format: format, Hasher: hasher, cfg: cfg, store: ks}
	var next apikey.Store
	if ks.Store != nil {
		next = unclosable{ks.Store} // the keyStore closes it, once no runtime uses it
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
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k.SetStatic(cfg.Static)
	k.touch = authnapikey.NewToucher(k.Store, cfg.LastUsedInterval.Std(), log)
	ks.subscribe(k.cache)
	k.release = release
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
// shares, and from the caches of the other runtimes over the same store
// (a reload that changed cache settings keeps the old runtime until the
// old plan retires).
func (k *APIKeys) Invalidate(keyID string) {
	switch {
	case k.store != nil:
		k.store.changed(keyID)
	case k.cache != nil:
		k.cache.Invalidate(keyID)
	}
}

// Close flushes last-used times and lets go of the store (closing it when
// no other runtime uses it).
func (k *APIKeys) Close() error {
	var terr error
	if k.touch != nil {
		terr = k.touch.Close()
	}
	if k.store != nil && k.cache != nil {
		k.store.unsubscribe(k.cache)
	}
	if k.release != nil {
		k.release()
		k.release = nil
	} else if err := k.Store.Close(); err != nil { // read-only and offline runtimes own their store
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
