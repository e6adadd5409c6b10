package pipeline

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/dpop/dpopredis"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// dpopReplayCache is the process's cache of accepted DPoP proofs: one
// for every identity provider, acquired through the plan's scope of the
// resource registry (keyed by dpop.replay_cache), so that a reload keeps
// it and a proof accepted before the reload is still refused after it.
// A plan built without Options.Resources has a registry of its own, so
// its cache is its own too.
//
// With dpop.replay_cache.store: redis the cache is Redis itself, shared
// by every replica (internal/authn/dpop/dpopredis).
func (p *Plan) dpopReplayCache(cfg *config.Config, opts Options) (dpop.ReplayCache, error) {
	rc := cfg.DPoP.ReplayCache
	if rc.Store == "redis" {
		// Shared by every replica: a proof accepted anywhere is a replay
		// everywhere. The Redis client is the process's, kept across
		// reloads; Redis not answering refuses proofs (503).
		client, err := redisconn.Acquire(p.scope, cfg.Redis, redisconn.Options{Logger: p.log})
		if err != nil {
			return nil, err
		}
		return dpopredis.New(client), nil
	}
	now := opts.Now // nil: the wall clock
	c, _, err := resource.Get(p.scope, resource.Key(resourceDPoPReplay, rc), func() (dpop.ReplayCache, func(), error) {
		// The cache outlives plans: it reads the wall clock, so that its
		// entries expire in real time whatever clock a plan is built with,
		// unless a clock is injected (tests), which it must follow.
		return dpop.NewMemoryReplayCache(rc.MaxEntries, now), nil, nil
	})
	return c, err
}

// bindingSettings compiles a provider's dpop and certificate_bound
// settings into jp. The DPoP verifier is built even when the provider's
// mode is off: a route may turn DPoP on for it (routes[].authenticate.jwt).
func bindingSettings(jp *jwt.Provider, pc config.IdentityProvider, replay dpop.ReplayCache, now func() time.Time) error {
	d := pc.DPoP
	dc := dpop.Config{Algorithms: d.Algorithms, MaxAge: d.MaxAge.Std(), ClockSkew: d.ClockSkew.Std(), Replay: replay, Now: now}
	if n := d.Nonce; n != nil {
		secrets := make([][]byte, len(n.Secrets))
		for i, s := range n.Secrets {
			secrets[i] = []byte(s)
		}
		nonces, err := dpop.NewNonces(dpop.NonceConfig{Secrets: secrets, Lifetime: n.Lifetime.Std(), Now: now})
		if err != nil {
			return err
		}
		dc.Nonces = nonces
	}
	v, err := dpop.New(dc)
	if err != nil {
		return err
	}
	jp.DPoP = v
	switch d.Mode {
	case "allowed":
		jp.DPoPMode = dpop.ModeAllowed
	case "required":
		jp.DPoPMode = dpop.ModeRequired
	}
	jp.RequireCertificateBound = pc.CertificateBound == "required"
	return nil
}
