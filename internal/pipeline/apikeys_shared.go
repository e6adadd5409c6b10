package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// keyStore is an open API-key store as the resource registry holds it:
// shared by every runtime whose api_keys.store settings are equal, and
// closed when the last of them closes. Changes it hears of (NOTIFY from
// another replica, the admin API of this one) drop the key from every
// runtime's cache. Store is nil for the static type (no store at all).
type keyStore struct {
	apikey.Store

	mu   sync.Mutex
	subs map[*authnapikey.Cache]struct{}
	// revFeed fans the store's revocation-list notifications out to the
	// revocation replicas over it (revocation.go).
	revFeed revocationFeed
	// stopPrune ends the quota pruner and waits for it; nil: none.
	stopPrune func()
}

// quotaPruner is a store that keeps quota counters (package quota) and
// drops the expired ones.
type quotaPruner interface {
	PruneQuotas(ctx context.Context, now time.Time) (int, error)
}

// quotaPruneInterval is how often an open store drops expired quota
// counters.
const quotaPruneInterval = time.Hour

// pruneQuotas drops expired quota counters every interval until ctx ends.
func pruneQuotas(ctx context.Context, p quotaPruner, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if n, err := p.PruneQuotas(pctx, time.Now()); err != nil {
				log.Warn("pipeline: pruning expired quota counters", "error", err)
			} else if n > 0 {
				log.Debug("pipeline: pruned expired quota counters", "count", n)
			}
			cancel()
		}
	}
}

// openKeyStore opens the store that settings name.
func openKeyStore(ctx context.Context, settings config.KeyStore, log *slog.Logger) (*keyStore, error) {
	ks := &keyStore{subs: map[*authnapikey.Cache]struct{}{}}
	var err error
	switch settings.Type {
	case "static":
		// Only the keys in the configuration; nothing to open.
	case "postgres":
		// Other replicas' changes arrive by LISTEN/NOTIFY and drop cached
		// keys at once; cache_ttl bounds the delay if a notification is lost.
		ks.Store, err = pgstore.Open(ctx, settings.DSN, pgstore.Options{
			Schema: settings.Schema, OnChange: ks.changed, OnRevocationChange: ks.revFeed.changed, Log: log, ListenDSN: settings.ListenDSN,
			ConnectTimeout: settings.ConnectTimeout.Std(), AcquireTimeout: settings.AcquireTimeout.Std(),
			StatementTimeout: settings.StatementTimeout.Std(),
		})
	default:
		ks.Store, err = boltstore.Open(settings.Path, boltstore.Options{})
	}
	if err != nil {
		return nil, err
	}
	if qp, ok := ks.Store.(quotaPruner); ok {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			pruneQuotas(ctx, qp, quotaPruneInterval, log)
		}()
		ks.stopPrune = func() { cancel(); <-done }
	}
	return ks, nil
}

// changed drops keyID ("*": every key) from every subscribed cache. It is
// the PostgreSQL store's OnChange: quick, and it never waits for Close.
func (ks *keyStore) changed(keyID string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for c := range ks.subs {
		c.Invalidate(keyID)
	}
}

func (ks *keyStore) subscribe(c *authnapikey.Cache) {
	ks.mu.Lock()
	ks.subs[c] = struct{}{}
	ks.mu.Unlock()
}

func (ks *keyStore) unsubscribe(c *authnapikey.Cache) {
	ks.mu.Lock()
	delete(ks.subs, c)
	ks.mu.Unlock()
}

func (ks *keyStore) close() {
	if ks.stopPrune != nil {
		ks.stopPrune()
	}
	if ks.Store != nil {
		_ = ks.Store.Close()
	}
}

// Listening reports the state of the PostgreSQL store's LISTEN/NOTIFY
// connection: ok is false for stores that do not listen.
func (ks *keyStore) Listening() (up, ok bool) {
	if s, isPG := ks.Store.(*pgstore.Store); isPG {
		return s.Listening(), true
	}
	return false, false
}

// unclosable hides a shared store's Close from the runtime that wraps it.
type unclosable struct{ apikey.Store }

func (unclosable) Close() error { return nil }

// storeSettings is what identifies an open store: the embedded file (by
// its resolved path, so that two spellings of one file share one open
// store instead of waiting on its lock), or every PostgreSQL setting.
func storeSettings(s config.KeyStore) any {
	switch s.Type {
	case "static":
		return struct{ Type string }{s.Type}
	case "postgres":
		return struct {
			Type, DSN, ListenDSN, Schema                     string
			ConnectTimeout, AcquireTimeout, StatementTimeout int64
		}{s.Type, s.DSN, s.ListenDSN, s.Schema, int64(s.ConnectTimeout), int64(s.AcquireTimeout), int64(s.StatementTimeout)}
	default:
		return struct{ Type, Path string }{"embedded", resolvedPath(s.Path)}
	}
}

// resolvedPath is path made absolute, with symbolic links resolved when
// the file exists.
func resolvedPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	return path
}

// runtimeSettings is what a runtime is built from: every api_keys setting
// but static (applied to a kept runtime by Plan.Activate) and
// rotation_grace (the admin API's). The pepper is hashed first, and the
// key the registry derives is a hash too: no secret appears in a key.
func runtimeSettings(cfg config.APIKeys) any {
	c := cfg
	c.Static, c.RotationGrace = nil, 0
	if c.Pepper != "" {
		sum := sha256.Sum256([]byte(c.Pepper))
		c.Pepper = hex.EncodeToString(sum[:])
	}
	c.Store = config.KeyStore{}
	return struct {
		Runtime config.APIKeys
		Store   any
	}{c, storeSettings(cfg.Store)}
}

// acquireAPIKeys returns the API-key runtime for cfg from the plan's
// registry: the one an earlier plan opened with equal settings, or a new
// one over the store its settings name (itself shared through the
// registry). reused reports a runtime kept from an earlier plan, whose
// static keys Activate sets.
func (p *Plan) acquireAPIKeys(reg *resource.Registry, cfg config.APIKeys, opts Options) (*APIKeys, bool, error) {
	key := resource.Key(resourceAPIKeys, runtimeSettings(cfg))
	return resource.Get(p.scope, key, func() (*APIKeys, func(), error) {
		// The runtime holds its store through a scope of its own, so the
		// store outlives the plan that opened it as long as a runtime uses
		// it.
		held := reg.Scope()
		ks, _, err := resource.Get(held, resource.Key(resourceKeyStore, storeSettings(cfg.Store)), func() (*keyStore, func(), error) {
			ks, err := openKeyStore(context.Background(), cfg.Store, opts.Log)
			if err != nil {
				return nil, nil, err
			}
			return ks, ks.close, nil
		})
		if err != nil {
			held.Close()
			return nil, nil, fmt.Errorf("api keys: %w", err)
		}
		k, err := newAPIKeys(cfg, ks, held.Close, opts.Log, opts.Observer)
		if err != nil {
			held.Close()
			return nil, nil, err
		}
		return k, func() {
			if err := k.Close(); err != nil {
				opts.Log.Error("pipeline: closing an API-key runtime", "error", err)
			}
		}, nil
	})
}

// APIKeys returns the plan's API-key runtime, or nil when no route accepts
// api_key (the admin API's key management then answers 503).
func (p *Plan) APIKeys() *APIKeys { return p.apiKeys }

// Activate applies what this plan sets on resources it shares with the
// plan serving now: the static API keys of a kept API-key runtime. The
// gateway calls it once the plan is sure to be swapped in, so that a
// rejected reload changes nothing. Safe to call more than once.
func (p *Plan) Activate() {
	if p.apiKeys != nil && p.staticKeys != nil {
		p.apiKeys.SetStatic(*p.staticKeys)
	}
}

// APIKeyStoreListening reports the LISTEN/NOTIFY connection of the plan's
// PostgreSQL key store: ok is false when the plan has no such store.
func (p *Plan) APIKeyStoreListening() (up, ok bool) {
	if p.apiKeys == nil || p.apiKeys.store == nil {
		return false, false
	}
	return p.apiKeys.store.Listening()
}

// Backing returns the open store under the static keys (nil for the static
// type), shared by every runtime over the same store settings: for tests
// and tools that must reach the store itself. Closing it breaks every
// runtime over it.
func (k *APIKeys) Backing() apikey.Store {
	if k.store == nil {
		return nil
	}
	return k.store.Store
}
