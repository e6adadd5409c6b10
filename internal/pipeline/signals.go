package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/leakreport"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/ssf"
)

// The gateway's own security endpoints (docs/revocation.md): the Shared
// Signals receiver (package ssf), whose revoking events go through the
// plan's revocation service, so every replica refuses the subject's tokens
// within the list's propagation bound; and the leak-report endpoint
// (package leakreport), which revokes reported API keys in the key store.
// Both are public gateway-owned endpoints on every host: they
// authenticate their callers themselves (a transmitter's push token and
// signed SETs; a reporter's bearer token or HMAC signature).

// resourceSignalKeys and resourceSignalReplay are the kinds of a
// transmitter's key set and of its jti replay cache, kept across reloads.
const (
	resourceSignalKeys   = "ssf.keyset"
	resourceSignalReplay = "ssf.replay_cache"
)

// buildSecurityEndpoints compiles shared_signals and leak_reports into
// p.ownEndpoints. While validating, nothing is connected: the endpoints
// are built over stand-ins so that their paths are checked.
func (p *Plan) buildSecurityEndpoints(cfg *config.Config, file *config.File, opts Options) error {
	if s := cfg.SharedSignals; len(s.Transmitters) > 0 {
		rc := ssf.Config{Path: s.Path, Audit: p.audit, MaxAge: s.MaxAge.Std(), Now: opts.Now,
			Actions: &signalActions{plan: p}}
		for i, tc := range s.Transmitters {
			path := fmt.Sprintf("shared_signals.transmitters[%d]", i)
			keys, err := p.transmitterKeys(tc, opts)
			if err != nil {
				return file.Errorf(path, "%v", err)
			}
			replay, _, err := resource.Get(p.scope, resource.Key(resourceSignalReplay, struct{ Name, Issuer string }{tc.Name, tc.Issuer}),
				func() (*ssf.ReplayCache, func(), error) { return ssf.NewReplayCache(0), nil, nil })
			if err != nil {
				return file.Errorf(path, "%v", err)
			}
			rc.Transmitters = append(rc.Transmitters, &ssf.Transmitter{Name: tc.Name, Issuer: tc.Issuer, Keys: keys,
				Audience: tc.Audience, PushToken: tc.PushToken, Replay: replay, Subjects: ssf.Subjects{Formats: tc.Subjects.Formats,
					Issuers: tc.Subjects.Issuers, TokenIssuer: tc.Subjects.TokenIssuer}})
		}
		r, err := ssf.New(rc)
		if err != nil {
			return file.Errorf("shared_signals", "%v", err)
		}
		p.ownEndpoints = append(p.ownEndpoints, r)
	}
	if l := cfg.LeakReports; l.Path != "" {
		var keys leakreport.Keys = noKeys{}
		if p.apiKeys != nil {
			keys = &keymgmt.Service{Store: p.apiKeys.Store, Format: p.apiKeys.Format, Hasher: p.apiKeys.Hasher,
				Invalidate: p.apiKeys.Invalidate, Now: opts.Now}
		} else if !opts.Validating {
			return file.Errorf("leak_reports.path", "no API-key store is open")
		}
		h, err := leakreport.New(leakreport.Config{Path: l.Path, BearerToken: l.BearerToken, HMACSecret: l.HMACSecret,
			SignatureHeader: l.SignatureHeader, MaxKeys: l.MaxKeys, Keys: keys, Audit: p.audit, Now: opts.Now})
		if err != nil {
			return file.Errorf("leak_reports", "%v", err)
		}
		p.ownEndpoints = append(p.ownEndpoints, h)
	}
	return nil
}

// transmitterKeys returns the key set of a transmitter, shared with
// earlier plans with the same settings (and not started while
// validating).
func (p *Plan) transmitterKeys(tc config.Transmitter, opts Options) (ssf.KeySource, error) {
	kc := keyset.Config{Name: "ssf:" + tc.Name, Issuer: tc.Issuer, JWKSURI: tc.JWKSURI, HTTPClient: opts.HTTPClient,
		UserAgent: opts.UserAgent, Log: p.log}
	if tc.Metadata != "" {
		kc.Discovery, kc.DiscoveryURL = true, tc.Metadata
	}
	if opts.Validating {
		set, err := keyset.New(kc)
		if err != nil {
			return nil, err
		}
		return set, nil
	}
	key := resource.Key(resourceSignalKeys, struct{ Name, Issuer, JWKSURI, Metadata string }{tc.Name, tc.Issuer, tc.JWKSURI, tc.Metadata})
	set, _, err := resource.Get(p.scope, key, func() (*keyset.Set, func(), error) {
		set, err := keyset.New(kc)
		if err != nil {
			return nil, nil, err
		}
		set.Start()
		return set, set.Close, nil
	})
	return set, err
}

// signalActions applies events to the plan: revocations through its
// revocation service (audited as revocation.created), cache invalidation
// in its providers' verified-token caches.
type signalActions struct{ plan *Plan }

// RevokeSubject implements ssf.Actions.
func (a *signalActions) RevokeSubject(ctx context.Context, issuer, subject string, before time.Time, reason string) error {
	rv := a.plan.revocations
	if rv == nil {
		return errors.New("pipeline: the revocation list is not enabled")
	}
	svc := *rv.Service
	svc.Audit = a.plan.audit
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := svc.Revoke(ctx, revocation.Request{Kind: revocation.KindSubject, Issuer: issuer, Values: []string{subject},
		Reason: reason, Before: &before})
	if errors.Is(err, revocation.ErrInvalid) {
		return fmt.Errorf("%w: %v", ssf.ErrSubjectRefused, err)
	}
	return err
}

// InvalidateSubject implements ssf.Actions.
func (a *signalActions) InvalidateSubject(issuer, subject string) {
	for _, c := range a.plan.tokenCaches {
		c.InvalidateSubject(issuer, subject)
	}
}

// noKeys stands in for the key store while validating.
type noKeys struct{}

func (noKeys) LookupKey(context.Context, string) (*apikey.Key, *apikey.Consumer, error) {
	return nil, nil, apikey.ErrNotFound
}
func (noKeys) RevokeKey(context.Context, string) (*apikey.Key, error) { return nil, apikey.ErrNotFound }

var (
	_ ssf.Actions       = (*signalActions)(nil)
	_ ssf.KeySource     = (*keyset.Set)(nil)
	_ leakreport.Keys   = (*keymgmt.Service)(nil)
	_ endpoint.Provider = (*ssf.Receiver)(nil)
)
