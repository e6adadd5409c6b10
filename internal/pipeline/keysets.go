package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// KeySets shares identity providers' fetched key sets between successive
// plans. A reload that leaves a provider's settings unchanged keeps its key
// set object (its refresh schedule and rate-limit state) and warm keys, so
// a reload still applies while that provider is unreachable (its last good
// keys keep serving up to max_stale); but the reload refetches the keys at
// once (Plan.RefreshKeys), so a key removed at the provider is refused as
// soon as the reload has returned. Static key sets are never shared: their
// files are read again by every build.
type KeySets struct {
	mu   sync.Mutex
	sets map[string]*sharedSet
}

type sharedSet struct {
	set  *keyset.Set
	refs int
}

// NewKeySets returns an empty registry. One per gateway process.
func NewKeySets() *KeySets { return &KeySets{sets: map[string]*sharedSet{}} }

// acquire returns the key set for a provider's settings, creating and
// starting it when no plan has one, and a release function for Plan.Close.
// reused reports that the set was already serving an earlier plan.
func (k *KeySets) acquire(pc config.IdentityProvider, mk func() (*keyset.Set, error)) (set *keyset.Set, release func(), reused bool, err error) {
	if pc.StaticKeys != nil {
		// Nothing to keep warm, and the files may have changed: a fresh
		// set from what this build has just read.
		set, err := mk()
		if err != nil {
			return nil, nil, false, err
		}
		return set, set.Close, false, nil
	}
	fp := fingerprint(pc)
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.sets[fp]; ok {
		s.refs++
		return s.set, k.releaser(fp), true, nil
	}
	set, err = mk()
	if err != nil {
		return nil, nil, false, err
	}
	set.Start()
	k.sets[fp] = &sharedSet{set: set, refs: 1}
	return set, k.releaser(fp), false, nil
}

func (k *KeySets) releaser(fp string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			s := k.sets[fp]
			s.refs--
			last := s.refs == 0
			if last {
				delete(k.sets, fp)
			}
			k.mu.Unlock()
			if last {
				s.set.Close()
			}
		})
	}
}

// fingerprint identifies the settings a fetched key set depends on.
func fingerprint(pc config.IdentityProvider) string {
	b, _ := json.Marshal(struct {
		Name, Issuer, JWKSURI string
		Keys                  config.KeyCache
		HTTP                  bool
	}{pc.Name, pc.Issuer, pc.JWKSURI, pc.Keys, pc.InsecureAllowHTTP})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
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
