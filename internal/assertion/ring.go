package assertion

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// StoredKey is a generated key as a Store keeps it: its schedule, and the
// private key sealed (Sealer), never in the clear.
type StoredKey struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	SignFrom  time.Time `json:"sign_from"`
	SignUntil time.Time `json:"sign_until"`
	RemoveAt  time.Time `json:"remove_at"`
	Sealed    []byte    `json:"sealed"`
}

// Store keeps generated keys where every replica of the gateway reads
// them (the API-key store: bbolt for one process, PostgreSQL for several).
type Store interface {
	// UpdateAssertionKeys calls fn with the stored keys while holding the
	// store's exclusive lock on them (no other replica's fn runs
	// meanwhile), then stores what fn adds and deletes what it removes,
	// atomically, and returns the keys now stored. An error from fn
	// changes nothing.
	UpdateAssertionKeys(ctx context.Context, fn func(keys []StoredKey) (add []StoredKey, remove []string, err error)) ([]StoredKey, error)
}

// RingConfig configures a KeyRing: Static keys (operator-provided files),
// or generated keys kept in Store.
type RingConfig struct {
	// Static are operator-provided keys: the first signs, all are
	// published, none expires (rotation is the operator's: publish a new
	// file second, wait, move it first, later remove the old one).
	Static []*Key
	// Store keeps generated keys for every replica; Sealer seals their
	// private keys. Required unless Static is set.
	Store  Store
	Sealer *Sealer
	// Algorithm of generated keys (ES256 or EdDSA).
	Algorithm string
	// RotationInterval is how long a generated key signs.
	RotationInterval time.Duration
	// PrePublish is how long a generated key is published before it
	// signs; it must exceed RefreshInterval plus the JWKS's max-age, so
	// every replica and every backend's cache has it before it is used.
	PrePublish time.Duration
	// Retain is how long a key stays published after it stops signing:
	// at least the longest assertion lifetime (assertions it signed must
	// still verify).
	Retain time.Duration
	// RefreshInterval is how often the ring reads the store (and
	// generates the next key when due). Default 1m.
	RefreshInterval time.Duration
	// StaleAfter: Ready reports an error when the store has not been read
	// for longer (the ring could be missing keys others publish). Default
	// PrePublish/2.
	StaleAfter time.Duration
	// Timeout bounds one store round trip. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives refresh failures. Default: discard.
	Log *slog.Logger
}

// KeyRing is the gateway's set of signing keys: it knows which key signs
// now and which are published. Safe for concurrent use.
type KeyRing struct {
	cfg   RingConfig
	state atomic.Pointer[ringState]

	mu     sync.Mutex // serialises refreshes
	opened map[string]*Key

	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
}

type ringState struct {
	keys     []*Key // by SignFrom, then ID
	loadedAt time.Time
}

// NewKeyRing makes a ring. A static ring is ready at once; a stored one
// after its first Refresh (Start runs it in the background).
func NewKeyRing(cfg RingConfig) (*KeyRing, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = cfg.PrePublish / 2
	}
	r := &KeyRing{cfg: cfg, opened: map[string]*Key{}, stop: make(chan struct{}), done: make(chan struct{})}
	if len(cfg.Static) > 0 {
		keys := make([]*Key, len(cfg.Static))
		for i, k := range cfg.Static {
			// The first signs; the others are published only (their
			// SignFrom lies beyond any clock).
			from := time.Time{}
			if i > 0 {
				from = time.Unix(1<<62, 0)
			}
			keys[i] = k.withSchedule(time.Time{}, from, time.Time{}, time.Time{})
		}
		r.state.Store(&ringState{keys: keys, loadedAt: cfg.Now()})
		close(r.done)
		return r, nil
	}
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("assertion: a key ring needs static keys, or a store and a sealer")
	}
	if _, err := GenerateKey(cfg.Algorithm); err != nil {
		return nil, err
	}
	if cfg.RotationInterval <= cfg.PrePublish || cfg.PrePublish <= cfg.RefreshInterval || cfg.Retain <= 0 {
		return nil, fmt.Errorf("assertion: need rotation interval (%s) > pre-publish (%s) > refresh interval (%s), and a retention",
			cfg.RotationInterval, cfg.PrePublish, cfg.RefreshInterval)
	}
	return r, nil
}

// Start reads the store now and every RefreshInterval until Close. A
// static ring has nothing to start.
func (r *KeyRing) Start() {
	if len(r.cfg.Static) > 0 || !r.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.cfg.RefreshInterval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
			if err := r.Refresh(ctx); err != nil {
				r.cfg.Log.Warn("assertion: cannot refresh the signing keys; the last ones loaded keep serving", "error", err.Error())
			}
			cancel()
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the refresh loop, if started, and waits for it (at most a
// store round trip).
func (r *KeyRing) Close() {
	r.once.Do(func() { close(r.stop) })
	if r.started.Load() {
		select {
		case <-r.done:
		case <-time.After(r.cfg.Timeout + time.Second):
		}
	}
}

// Refresh reads the store under its lock, removes keys past RemoveAt and
// generates the next keys when due, so that the signing keys always cover
// more than RotationInterval ahead (the next key is generated a whole
// rotation before it signs, which is also how long the gateway rides out
// a store it cannot reach):
//
//   - a new key is published at once and signs from the end of the last
//     key's period, or PrePublish from now if that is later, so every
//     replica (reading the store every RefreshInterval) and every backend
//     (caching the JWKS for less than PrePublish) has it before it signs;
//   - when no stored key signs now (a first start, or a store nobody
//     maintained for longer than a rotation), there is nothing to overlap
//     with and the new key signs at once.
func (r *KeyRing) Refresh(ctx context.Context) error {
	if len(r.cfg.Static) > 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var generated []*Key
	stored, err := r.cfg.Store.UpdateAssertionKeys(ctx, func(keys []StoredKey) (add []StoredKey, remove []string, err error) {
		now := r.cfg.Now()
		generated = generated[:0]
		var latest time.Time
		signsNow := false
		for _, k := range keys {
			if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
				remove = append(remove, k.ID)
				continue
			}
			if k.Algorithm != r.cfg.Algorithm {
				continue // another configuration's: published until removed
			}
			if k.SignUntil.After(latest) {
				latest = k.SignUntil
			}
			signsNow = signsNow || !now.Before(k.SignFrom) && now.Before(k.SignUntil)
		}
		for !latest.After(now.Add(r.cfg.RotationInterval)) {
			from := now.Add(r.cfg.PrePublish)
			if latest.After(from) {
				from = latest
			}
			if !signsNow {
				from, signsNow = now, true
			}
			k, err := GenerateKey(r.cfg.Algorithm)
			if err != nil {
				return nil, nil, err
			}
			k = k.withSchedule(now, from, from.Add(r.cfg.RotationInterval), from.Add(r.cfg.RotationInterval+r.cfg.Retain))
			sealed, err := r.cfg.Sealer.Seal(k)
			if err != nil {
				return nil, nil, err
			}
			add = append(add, StoredKey{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: now, SignFrom: k.SignFrom,
				SignUntil: k.SignUntil, RemoveAt: k.RemoveAt, Sealed: sealed})
			generated = append(generated, k)
			latest = k.SignUntil
		}
		return add, remove, nil
	})
	if err != nil {
		return fmt.Errorf("assertion: refresh keys: %w", err)
	}
	for _, k := range generated {
		r.opened[k.ID] = k
	}
	keys := make([]*Key, 0, len(stored))
	seen := make(map[string]bool, len(stored))
	for _, s := range stored {
		k := r.opened[s.ID]
		if k == nil {
			if k, err = r.cfg.Sealer.Open(s.ID, s.Sealed); err != nil {
				// Fail closed for this key only: one that does not open
				// (another seal secret) is neither published nor used.
				r.cfg.Log.Error("assertion: a stored signing key does not open; check identity_assertion.keys.seal_secret on every replica",
					"kid", s.ID, "error", err.Error())
				continue
			}
			r.opened[s.ID] = k
		}
		seen[s.ID] = true
		keys = append(keys, k.withSchedule(s.CreatedAt, s.SignFrom, s.SignUntil, s.RemoveAt))
	}
	for id := range r.opened {
		if !seen[id] {
			delete(r.opened, id)
		}
	}
	slices.SortFunc(keys, func(a, b *Key) int { return cmp.Or(a.SignFrom.Compare(b.SignFrom), cmp.Compare(a.ID, b.ID)) })
	r.state.Store(&ringState{keys: keys, loadedAt: r.cfg.Now()})
	return nil
}

// Signing returns the key that signs at now: of the keys whose signing
// period holds now, the one that started last (ties: the lowest id, so
// every replica picks the same).
func (r *KeyRing) Signing(now time.Time) (*Key, error) {
	st := r.state.Load()
	if st == nil {
		return nil, ErrNoSigningKey
	}
	var best *Key
	for _, k := range st.keys { // by SignFrom, then ID: ties keep the first
		if k.signs(now) && k.published(now) && (best == nil || k.SignFrom.After(best.SignFrom)) {
			best = k
		}
	}
	if best == nil {
		return nil, ErrNoSigningKey
	}
	return best, nil
}

// Published returns the keys in the JWKS at now.
func (r *KeyRing) Published(now time.Time) []*Key {
	st := r.state.Load()
	if st == nil {
		return nil
	}
	out := make([]*Key, 0, len(st.keys))
	for _, k := range st.keys {
		if k.published(now) {
			out = append(out, k)
		}
	}
	return out
}

// JWKS returns the public keys published at now as a JWK Set document.
func (r *KeyRing) JWKS(now time.Time) ([]byte, error) {
	pub := r.Published(now)
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pub))}
	for _, k := range pub {
		set.Keys = append(set.Keys, k.public)
	}
	return json.Marshal(set)
}

// Ready reports an error until the ring has a signing key, or when the
// store has not been read for longer than StaleAfter.
func (r *KeyRing) Ready() error {
	now := r.cfg.Now()
	st := r.state.Load()
	if st == nil {
		return errors.New("assertion: signing keys not loaded yet")
	}
	if len(r.cfg.Static) == 0 && now.Sub(st.loadedAt) > r.cfg.StaleAfter {
		return fmt.Errorf("assertion: signing keys last read %s ago", now.Sub(st.loadedAt).Round(time.Second))
	}
	if _, err := r.Signing(now); err != nil {
		return err
	}
	return nil
}

// MemoryStore is a Store inside one process: for a single replica (keys
// are lost on restart, so backends see a new key after every start).
type MemoryStore struct {
	mu   sync.Mutex
	keys []StoredKey
}

// UpdateAssertionKeys implements Store.
func (m *MemoryStore) UpdateAssertionKeys(_ context.Context, fn func([]StoredKey) ([]StoredKey, []string, error)) ([]StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	add, remove, err := fn(slices.Clone(m.keys))
	if err != nil {
		return nil, err
	}
	m.keys = slices.DeleteFunc(m.keys, func(k StoredKey) bool { return slices.Contains(remove, k.ID) })
	m.keys = append(m.keys, add...)
	return slices.Clone(m.keys), nil
}

var _ Store = (*MemoryStore)(nil)
