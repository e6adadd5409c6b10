package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
)

// APIKeys is the process-wide API-key runtime: the open store (an embedded
// store file can be opened by one process at a time, so it outlives plans),
// the key format and hasher, the batched last-used writer, and every live
// authenticator so a revocation can drop cached keys at once.
type APIKeys struct {
	Store  apikey.Store
	Format apikey.Format
	Hasher *apikey.Hasher
	cfg    config.APIKeys
	touch  *authnapikey.Toucher
	static *apikey.Static

	mu    sync.Mutex
	auths map[*authnapikey.Authenticator]struct{}
}

// OpenAPIKeys opens the configured store. Store settings take effect only
// here, at start; a reload keeps the store open.
func OpenAPIKeys(ctx context.Context, cfg config.APIKeys, log *slog.Logger) (*APIKeys, error) {
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
	k := &APIKeys{Format: format, Hasher: hasher, cfg: cfg, auths: map[*authnapikey.Authenticator]struct{}{}}
	var next apikey.Store
	switch cfg.Store.Type {
	case "static":
		// Only the keys in the configuration; nothing to open.
	case "postgres":
		// Other replicas' changes arrive by LISTEN/NOTIFY and drop cached
		// keys at once; cache_ttl bounds the delay if a notification is lost.
		next, err = pgstore.Open(ctx, cfg.Store.DSN, pgstore.Options{Schema: cfg.Store.Schema, OnChange: k.Invalidate})
	default:
		next, err = boltstore.Open(cfg.Store.Path, boltstore.Options{})
	}
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	k.static = apikey.NewStatic(next)
	k.Store = k.static
	k.SetStatic(cfg.Static)
	k.touch = authnapikey.NewToucher(k.Store, cfg.LastUsedInterval.Std(), log)
	return k, nil
}

// SetStatic replaces the keys declared in the configuration (at start and
// on every reload) and drops every cached key, so removed ones stop at once.
// The entries were validated with the configuration.
func (k *APIKeys) SetStatic(keys []config.StaticAPIKey) {
	out := make([]apikey.StaticKey, 0, len(keys))
	for _, s := range keys {
		hash, err := config.ParseTokenHash(s.Hash)
		if err != nil {
			continue
		}
		out = append(out, apikey.StaticKey{ID: s.ID, ConsumerName: s.Consumer, Hash: hash, Scopes: s.Scopes, Groups: s.Groups, Routes: s.Routes})
	}
	k.static.Set(out)
	k.Invalidate("*")
}

// Invalidate drops a key (or "*": every key) from every authenticator's
// cache.
func (k *APIKeys) Invalidate(keyID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for a := range k.auths {
		a.Invalidate(keyID)
	}
}

// Close flushes last-used times and closes the store.
func (k *APIKeys) Close() error {
	terr := k.touch.Close()
	if err := k.Store.Close(); err != nil {
		return err
	}
	return terr
}

// authenticator builds a route's API-key authenticator and registers it for
// invalidation until release is called (by Plan.Close).
func (k *APIKeys) authenticator(routeName string, tags []string, queryParam string) (*authnapikey.Authenticator, func(), error) {
	tags = slices.Clone(tags)
	a, err := authnapikey.New(authnapikey.Config{
		Store:                k.Store,
		Format:               k.Format,
		Hasher:               k.Hasher,
		Header:               k.cfg.Header,
		AuthorizationSchemes: k.cfg.AuthorizationSchemes,
		QueryParam:           queryParam,
		CacheTTL:             k.cfg.CacheTTL.Std(),
		NegativeTTL:          k.cfg.NegativeCacheTTL.Std(),
		Touch:                k.touch,
		Routes:               func(*http.Request) (string, []string) { return routeName, tags },
	})
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	k.auths[a] = struct{}{}
	k.mu.Unlock()
	return a, func() {
		k.mu.Lock()
		delete(k.auths, a)
		k.mu.Unlock()
	}, nil
}
