package pipeline

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/tlsclient"
)

// Resources a plan shares with the plans before and after it, through
// Options.Resources (one registry per gateway process; see package
// resource). Each is keyed by the configuration that defines it, so a
// reload that leaves that configuration unchanged keeps the resource warm,
// and one that changes it gets a new resource while the old one closes
// when the last plan holding it retires:
//
//   - keyset: an identity provider's fetched key set (its refresh schedule,
//     rate-limit state and last good keys, and its HTTP client), by the
//     provider's name, issuer, key source, key-cache settings and the
//     contents of its tls files (a rotated CA or client certificate gets a
//     new set, which fetches the keys again through a new client). Static key sets are not shared:
//     every build reads their files again.
//   - jwt.token_cache: a provider's verified-token cache, by jwt.CacheKey
//     (everything that decides validity or the identity), so a reload
//     costs no cache miss and never serves an identity cached under other
//     settings.
//   - upstream.transport: one http.Transport (one connection pool) per
//     distinct proxy.TransportSettings, shared by every route with those
//     settings, so a reload does not redial unchanged upstreams. The
//     settings hold the contents of routes[].upstream.tls's files (keyed
//     by their digests): a rotated CA or client certificate gets a new
//     transport, whose connections use it from their first handshake,
//     while the old transport's connections end with the old plan.
//   - apikeys.runtime and apikeys.store: the API-key runtime (cache,
//     last-used writer) by the api_keys settings, over the store by its
//     file or database settings (acquireAPIKeys).
//   - dpop.replay_cache: the accepted DPoP proofs of every provider, by
//     dpop.replay_cache, so that a proof used before a reload is refused
//     after it (dpopReplayCache).
//   - assertion.keyring and assertion.minter: the identity assertion's
//     signing keys (by algorithm, key settings, store and a digest of the
//     seal secret; keys from files are read at every build instead) and
//     its assertion cache (assertion.go), so a reload changes no key.
//
// The Redis client (rate limits, the DPoP replay cache, sessions to come)
// is one of them: redisconn.Acquire gets it through the plan's scope,
// keyed by the redis block, so every stage and plan shares one client;
// never open one per route or per plan.
const (
	resourceKeySet     = "keyset"
	resourceTokenCache = "jwt.token_cache"
	resourceTransport  = "upstream.transport"
	resourceAPIKeys    = "apikeys.runtime"
	resourceKeyStore   = "apikeys.store"
	resourceDPoPReplay = "dpop.replay_cache"
)

// ResourceKind returns the kind of a resource key ("keyset",
// "upstream.transport", …), for gauges of open resources by kind.
func ResourceKind(key string) string {
	kind, _, _ := strings.Cut(key, ":")
	return kind
}

// keySet returns the key set of one identity provider: shared through the
// registry for fetched sets (reused: an earlier plan started it), built
// afresh for static ones.
func (p *Plan) keySet(pc config.IdentityProvider, kc keyset.Config, tlsSettings tlsclient.Settings) (set *keyset.Set, reused bool, err error) {
	if pc.StaticKeys != nil {
		// Nothing to keep warm, and the files may have changed: a fresh
		// set from what this build has just read.
		set, err := keyset.New(kc)
		if err != nil {
			return nil, false, err
		}
		p.closers = append(p.closers, set.Close)
		return set, false, nil
	}
	key := resource.Key(resourceKeySet, struct {
		Name, Issuer, JWKSURI string
		Keys                  config.KeyCache
		HTTP                  bool
		TLS                   tlsclient.Settings // digests of the files' contents
	}{pc.Name, pc.Issuer, pc.JWKSURI, pc.Keys, pc.InsecureAllowHTTP, tlsSettings})
	return resource.Get(p.scope, key, func() (*keyset.Set, func(), error) {
		set, err := keyset.New(kc)
		if err != nil {
			return nil, nil, err
		}
		set.Start()
		return set, set.Close, nil
	})
}

// tokenCache returns the verified-token cache of a provider, shared with
// earlier plans whose provider had the same settings. nil (the verifier
// then makes its own, and reports the error) for a provider that does not
// compile.
func (p *Plan) tokenCache(jp jwt.Provider) (*jwt.TokenCache, error) {
	ck, err := jwt.CacheKey(jp)
	if err != nil {
		return nil, nil
	}
	c, _, err := resource.Get(p.scope, resource.Key(resourceTokenCache, ck), func() (*jwt.TokenCache, func(), error) {
		return jwt.NewTokenCache(0), nil, nil
	})
	return c, err
}

// transport returns the upstream transport for settings, shared by every
// route (of this plan and the next) with equal settings.
func (p *Plan) transport(s proxy.TransportSettings) (*http.Transport, error) {
	t, _, err := resource.Get(p.scope, resource.Key(resourceTransport, s), func() (*http.Transport, func(), error) {
		t, err := proxy.NewTransport(s)
		if err != nil {
			return nil, nil, err
		}
		return t, t.CloseIdleConnections, nil
	})
	return t, err
}

// RefreshKeys refetches, concurrently, the keys of every fetched key set
// this plan took over from an earlier one (new sets are fetching already;
// static sets were read by Build). A reload calls it before swapping the
// plan in, so that keys removed at a provider are refused from the moment
// the reload returns (emergency revocation). A provider that cannot be
// reached keeps its last good keys, within max_stale: the failure is
// logged as a warning and returned, joined, for the caller to report, but
// it does not make the reload fail.
func (p *Plan) RefreshKeys(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, ph := range p.providers {
		if !ph.reused {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ph.set.Refresh(ctx); err != nil {
				p.log.Warn("pipeline: reload could not refetch an identity provider's keys; its previous keys keep serving (up to max_stale)",
					"provider", ph.name, "error", err.Error())
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
