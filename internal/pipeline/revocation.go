package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/revocation/redisfeed"
)

// The revocation list (docs/revocation.md) is a process resource like the
// API-key runtime: one revocation.Replica per store and timing settings,
// kept across reloads, over the key store it shares (through the registry)
// with the API-key runtime. The authenticate stage checks it after the
// chain has returned an identity, so it applies to every method and a
// verified-token cache hit never skips it.
const resourceRevocations = "revocation.replica"

// Reason codes of revoked credentials (docs/audit.md).
const (
	reasonTokenRevoked   authn.Reason = "token_revoked"
	reasonSubjectRevoked authn.Reason = "subject_revoked"
	// reasonRevocationUnavailable: the list has never been loaded, so no
	// credential can be judged (503).
	reasonRevocationUnavailable authn.Reason = "revocation_unavailable"
)

// revokedDescription is the same for every kind: a client learns that its
// token no longer works, not why nor which entry matched.
const revokedDescription = "The access token is no longer valid."

// errRevocationNotLoaded is the cause of a 503 while the list has never
// been loaded.
var errRevocationNotLoaded = errors.New("pipeline: the revocation list is not loaded yet")

// Revocations is the revocation runtime of a plan: the replica of the
// list, and the service the admin API writes through.
type Revocations struct {
	Replica *revocation.Replica
	Service *revocation.Service
}

// checkRevoked returns the failure for an identity the list revokes, an
// *authn.UnavailableError while the list has never been loaded, or nil.
func checkRevoked(list *revocation.List, id *identity.Identity) error {
	if id.IsAnonymous() {
		return nil
	}
	e, loaded := list.Check(id)
	switch {
	case !loaded:
		return &authn.UnavailableError{Method: id.Method, Reason: reasonRevocationUnavailable, Provider: id.Provider, Err: errRevocationNotLoaded}
	case e == nil:
		return nil
	}
	reason := reasonTokenRevoked
	if e.SubjectLevel() {
		reason = reasonSubjectRevoked
	}
	return &authn.Failure{Method: id.Method, Reason: reason, Description: revokedDescription,
		Issuer: id.Issuer, Subject: id.Subject, Provider: id.Provider, CredentialID: id.CredentialID,
		Err: fmt.Errorf("pipeline: revoked by entry %s (%s)", e.ID, e.Kind)}
}

// acquireRevocations returns the plan's revocation runtime from the
// registry: the replica an earlier plan started with equal settings, or a
// new one over the key store (shared with the API-key runtime), loaded
// once before it is returned. A first load that fails is logged; the
// replica then polls, and the plan is not ready until a load succeeds.
//
// Its feeds follow revocation.feed (config.RevocationFeeds): the store's
// LISTEN/NOTIFY, Redis pub/sub (redisfeed, over the process's shared
// Redis client), both joined, or none. With a postgres store and a redis
// block, the service announces every change on Redis whatever the feed,
// for replicas that listen there only.
func (p *Plan) acquireRevocations(reg *resource.Registry, cfg *config.Config, opts Options) (*Revocations, error) {
	pgFeed, redisFeed := cfg.RevocationFeeds()
	// With a postgres store and a redis block, this process publishes its
	// changes on Redis whatever its own feed: another replica may listen
	// there only.
	publish := cfg.Redis.Enabled() && cfg.APIKeys.Store.Type == "postgres"
	redisKey := ""
	if publish {
		redisKey = redisconn.ResourceKey(cfg.Redis)
	}
	settings := struct {
		Store                  any
		Poll, Resync, Lifetime int64
		PGFeed, RedisFeed      bool
		Redis                  string
	}{storeSettings(cfg.APIKeys.Store), int64(cfg.Revocation.PollInterval), int64(cfg.Revocation.ResyncInterval), int64(cfg.RevocationLifetime()),
		pgFeed, redisFeed, redisKey}
	rv, _, err := resource.Get(p.scope, resource.Key(resourceRevocations, settings), func() (*Revocations, func(), error) {
		held := reg.Scope()
		ks, _, err := resource.Get(held, resource.Key(resourceKeyStore, storeSettings(cfg.APIKeys.Store)), func() (*keyStore, func(), error) {
			ks, err := openKeyStore(context.Background(), cfg.APIKeys.Store, opts.Log)
			if err != nil {
				return nil, nil, err
			}
			return ks, ks.close, nil
		})
		if err != nil {
			held.Close()
			return nil, nil, err
		}
		store, ok := ks.Store.(revocation.Store)
		if !ok {
			held.Close()
			return nil, nil, fmt.Errorf("the %s store cannot keep a revocation list", cfg.APIKeys.Store.Type)
		}
		var feeds []revocation.Feed
		if pgFeed && ks.notifies() {
			feeds = append(feeds, feedOf{ks})
		}
		var rf *redisfeed.Feed
		if publish {
			client, err := redisconn.Acquire(held, cfg.Redis, redisconn.Options{Logger: opts.Log})
			if err != nil {
				held.Close()
				return nil, nil, fmt.Errorf("redis: %w", err)
			}
			rf = redisfeed.New(client, redisfeed.Options{Log: opts.Log})
			if redisFeed {
				feeds = append(feeds, rf)
			}
		}
		closeFeed := func() {
			if rf != nil {
				rf.Close()
			}
		}
		rc := revocation.ReplicaConfig{Store: store, PollInterval: cfg.Revocation.PollInterval.Std(),
			ResyncInterval: cfg.Revocation.ResyncInterval.Std(), Log: opts.Log, Now: opts.Now,
			Feed: revocation.JoinFeeds(feeds...)}
		if rc.Feed == nil && ks.notifies() {
			// A shared store with no feed (revocation.feed: none): poll.
			rc.Feed = revocation.Unheard
		}
		replica, err := revocation.NewReplica(rc)
		if err != nil {
			closeFeed()
			held.Close()
			return nil, nil, err
		}
		if err := replica.Start(); err != nil {
			opts.Log.Warn("pipeline: the revocation list could not be loaded; not ready until it is (polling)", "error", err.Error())
		}
		svc := &revocation.Service{Store: store, Replica: replica, MaxTokenLifetime: cfg.RevocationLifetime(), Now: opts.Now}
		if rf != nil {
			svc.Announce = rf.Announce
		}
		rv := &Revocations{Replica: replica, Service: svc}
		return rv, func() { replica.Close(); closeFeed(); held.Close() }, nil
	})
	return rv, err
}

// Revocations returns the plan's revocation runtime; nil when
// revocation.enabled is false.
func (p *Plan) Revocations() *Revocations { return p.revocations }

// revocationFeed is the keyStore's side of revocation.Feed: PostgreSQL
// notifications on the revocation channel, fanned out to subscribers.
type revocationFeed struct {
	mu   sync.Mutex
	subs map[*func()]struct{}
}

func (f *revocationFeed) changed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fn := range f.subs {
		(*fn)()
	}
}

// Subscribe implements revocation.Feed.
func (ks *keyStore) Subscribe(changed func()) func() {
	f := &ks.revFeed
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[*func()]struct{}{}
	}
	key := &changed
	f.subs[key] = struct{}{}
	return func() {
		f.mu.Lock()
		delete(f.subs, key)
		f.mu.Unlock()
	}
}

// notifyListening reports whether the PostgreSQL listener is connected
// now.
func (ks *keyStore) notifyListening() bool {
	up, _ := ks.Listening()
	return up
}

// notifies reports whether other processes' changes reach this store by
// notification (PostgreSQL); the embedded store has no other writer.
func (ks *keyStore) notifies() bool {
	_, ok := ks.Listening()
	return ok
}

var _ revocation.Feed = feedOf{}

// feedOf adapts a keyStore to revocation.Feed (its Listening method
// already answers two values for the API-key side).
type feedOf struct{ ks *keyStore }

func (f feedOf) Subscribe(changed func()) func() { return f.ks.Subscribe(changed) }
func (f feedOf) Listening() bool                 { return f.ks.notifyListening() }
