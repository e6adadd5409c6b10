package pipeline

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// dpopReplayCache is the process's cache of accepted DPoP proofs: one
// for every identity provider, acquired through the resource registry
// (keyed by dpop.replay_cache), so that a reload keeps it and a proof
// accepted before the reload is still refused after it. Without a
// registry (tools that build throwaway plans) the plan has its own.
//
// The seam for a shared store: a dpop.ReplayCache opened here from a
// future dpop.replay_cache.type (Redis, with the rate-limit work).
func (p *Plan) dpopReplayCache(cfg *config.Config, opts Options) (dpop.ReplayCache, error) {
	rc := cfg.DPoP.ReplayCache
	open := func() (dpop.ReplayCache, func(), error) {
		// The cache reads the wall clock: its entries expire in real time
		// whatever clock a plan is built with, and it outlives plans.
		return dpop.NewMemoryReplayCache(rc.MaxEntries, nil), nil, nil
	}
	if opts.Now != nil {
		// An injected clock (tests): the cache must follow it.
		now := opts.Now
		open = func() (dpop.ReplayCache, func(), error) {
			return dpop.NewMemoryReplayCache(rc.MaxEntries, now), nil, nil
		}
	}
	if opts.Resources == nil {
		c, _, err := open()
		return c, err
	}
	c, _, err := resource.Get(opts.Resources, resource.Key("dpop.replay_cache", rc), open)
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
