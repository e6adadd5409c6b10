package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// KeySets shares identity providers' key sets between successive plans.
// A reload that leaves a provider's settings unchanged keeps its key set:
// no refetch, no wait for readiness, and a reload still applies while that
// provider is unreachable (its last good keys keep serving up to max_stale).
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
func (k *KeySets) acquire(pc config.IdentityProvider, mk func() (*keyset.Set, error)) (*keyset.Set, func(), error) {
	fp := fingerprint(pc)
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.sets[fp]; ok {
		s.refs++
		return s.set, k.releaser(fp), nil
	}
	set, err := mk()
	if err != nil {
		return nil, nil, err
	}
	set.Start()
	k.sets[fp] = &sharedSet{set: set, refs: 1}
	return set, k.releaser(fp), nil
}

func (k *KeySets) releaser(fp string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			s := k.sets[fp]
			s.refs--
			if s.refs == 0 {
				delete(k.sets, fp)
			}
			k.mu.Unlock()
			if s.refs == 0 {
				s.set.Close()
			}
		})
	}
}

// fingerprint identifies the settings a key set depends on. Static key
// files are named by path: a changed file needs a changed path or a restart
// of the provider entry, which is what operators expect of a reload anyway.
// The HMAC secret enters only as a hash.
func fingerprint(pc config.IdentityProvider) string {
	var secret string
	if pc.StaticKeys != nil && pc.StaticKeys.HMACSecret != "" {
		sum := sha256.Sum256([]byte(pc.StaticKeys.HMACSecret))
		secret = hex.EncodeToString(sum[:])
	}
	var files []string
	if pc.StaticKeys != nil {
		files = pc.StaticKeys.Files
	}
	b, _ := json.Marshal(struct {
		Name, Issuer, JWKSURI, Secret string
		Files                         []string
		Keys                          config.KeyCache
		HTTP                          bool
	}{pc.Name, pc.Issuer, pc.JWKSURI, secret, files, pc.Keys, pc.InsecureAllowHTTP})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
