// Package keyset fetches, caches and refreshes the verification keys of one
// identity provider (a JWKS document, found directly or by OpenID Connect
// discovery), or serves a static set.
//
// A Set is built for the request path: lookups of known key ids never block
// on the network. A token with an unknown kid may trigger one refetch, shared
// by all concurrent callers and limited to one per UnknownKIDInterval, so a
// flood of made-up kids cannot be turned against the provider. A lookup that
// limit refuses leaves no trace but a refetch scheduled for when the limit
// allows it: what was not checked is not remembered, so a flood of forged
// tokens just before a rotation delays the new key by one interval at most.
// When the provider is down, the last good keys keep serving until MaxStale;
// after that every lookup fails closed with ErrUnavailable. Refresh (on a
// configuration reload) refetches at once.
package keyset

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Set holds the current verification keys of one identity provider. It is
// safe for concurrent use. Build it with New, call Start to begin background
// refreshing, and Close to stop it.
type Set struct {
	cfg       Config
	src       source
	client    *http.Client
	ownClient bool // we built client, so Close releases its idle connections

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresh loop and in-flight fetches

	startOnce sync.Once
	closeOnce sync.Once

	mu      sync.Mutex
	keys    []jose.JSONWebKey            // current keys, never modified in place
	byKID   map[string][]jose.JSONWebKey // index of keys by kid
	kidless []jose.JSONWebKey            // static keys without a kid (fallback)
	fetched bool                         // at least one fetch succeeded
	jwksURI string                       // explicit or discovered; "" = discover next time

	lastRefresh time.Time     // last successful fetch (cfg.Now)
	lastAttempt time.Time     // last fetch start (cfg.Now)
	lastErr     error         // error of the last fetch; nil after a success
	interval    time.Duration // refresh interval derived from the last success

	lastUnknownFetch time.Time   // start of the last fetch caused by an unknown kid
	pending          *time.Timer // refetch scheduled after a rate-limited lookup

	inflight  *fetchCall    // the one fetch in progress, shared by all waiters
	fetchSeq  uint64        // number of fetches started
	refreshed chan struct{} // signalled (buffer 1) after each successful fetch
	changed   chan struct{} // closed and replaced on every state change
	closed    bool
}

// fetchCall is one fetch that any number of callers can wait for.
type fetchCall struct {
	done chan struct{}
	err  error
	seq  uint64 // the Set's fetchSeq when it started
}

// Health is a snapshot of a Set for health endpoints and logs.
type Health struct {
	// Provider is Config.Name.
	Provider string `json:"provider"`
	// Source is "static", the JWKS URL, or the discovery document URL
	// (passwords redacted).
	Source string `json:"source"`
	// Keys is the number of keys currently served.
	Keys int `json:"keys"`
	// KeyIDs lists their kids, sorted, without duplicates.
	KeyIDs []string `json:"key_ids"`
	// LastRefresh is the time of the last successful fetch.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// LastAttempt is the start time of the last fetch.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is the error of the last fetch, if it failed.
	LastError string `json:"last_error,omitempty"`
	// Stale is true when the last fetch failed while older keys are still
	// served, or when the keys are past MaxStale.
	Stale bool `json:"stale"`
	// Ready reports whether lookups can succeed (see Set.Ready).
	Ready bool `json:"ready"`
}

// New validates cfg, applies defaults and returns a Set. It starts nothing
// and performs no I/O; call Start to begin fetching.
func New(cfg Config) (*Set, error) {
	cfg, src, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Set{
		cfg:       cfg,
		src:       src,
		client:    cfg.HTTPClient,
		changed:   make(chan struct{}),
		refreshed: make(chan struct{}, 1),
		jwksURI:   cfg.JWKSURI,
		interval:  cfg.RefreshInterval,
	}
	if s.client == nil {
		s.client = newHTTPClient(cfg.FetchTimeout, cfg.TLS)
		s.ownClient = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if src == sourceStatic {
		keys, err := checkStatic(cfg.Static)
		if err != nil {
			return nil, err
		}
		s.setKeysLocked(keys)
		s.fetched = true
	}
	return s, nil
}

// checkStatic validates configured keys and returns a private copy.
func checkStatic(in []jose.JSONWebKey) ([]jose.JSONWebKey, error) {
	out := make([]jose.JSONWebKey, 0, len(in))
	for i, k := range in {
		name := fmt.Sprintf("static key %d (kid %q)", i, k.KeyID)
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("keyset: %s: use %q is not \"sig\"", name, k.Use)
		}
		if secret, ok := k.Key.([]byte); ok {
			if len(secret) < MinHMACSecretBytes {
				return nil, fmt.Errorf("keyset: %s: HMAC secret of %d bytes is shorter than %d", name, len(secret), MinHMACSecretBytes)
			}
			k.Key = slices.Clone(secret)
			out = append(out, k)
			continue
		}
		if !k.Valid() {
			return nil, fmt.Errorf("keyset: %s: invalid key", name)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("keyset: %s: private key; configure the public key, which is all verification needs", name)
		}
		if !strongEnough(k) {
			return nil, fmt.Errorf("keyset: %s: RSA key shorter than %d bits", name, minRSABits)
		}
		out = append(out, k)
	}
	return out, nil
}

// Start launches the background refresh loop: the first fetch happens at
// once, failures are retried with exponential backoff (from 1s, or
// MinRefreshInterval if smaller, up to RefreshInterval capped at 5m), and
// after a success the next refresh follows the response's Cache-Control
// max-age clamped to [MinRefreshInterval, MaxRefreshInterval], or
// RefreshInterval without one. Start does nothing for static sets, after
// Close, or when called again.
func (s *Set) Start() {
	if s.src == sourceStatic {
		return
	}
	s.startOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.wg.Add(1)
		go s.run()
	})
}

// Close stops the refresh loop and waits for it and any in-flight fetch to
// end. Lookups after Close still answer from the cached keys but never
// fetch. Close is idempotent.
func (s *Set) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		if s.pending != nil {
			s.pending.Stop()
			s.pending = nil
		}
		s.broadcastLocked()
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
}

// run is the background refresh loop.
func (s *Set) run() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		err := s.refresh()
		select {
		case <-s.refreshed: // our own fetch; nothing to reschedule
		default:
		}
		var wait time.Duration
		if err != nil {
			backoff = s.nextBackoff(backoff)
			wait = backoff
		} else {
			backoff = 0
			wait = s.currentInterval()
		}
		for waiting := true; waiting; {
			// Up to 10% later, so that gateway replicas drift apart
			// instead of polling the provider in lockstep; never
			// earlier than asked.
			t := time.NewTimer(wait + rand.N(wait/10+1))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
				waiting = false
			case <-s.refreshed:
				// A lookup refetched successfully: the next refresh is
				// due one interval from now, not from our last one.
				t.Stop()
				backoff = 0
				wait = s.currentInterval()
			}
		}
	}
}

// currentInterval is the wait until the next refresh after a success: the
// interval derived from the last response, but never more than half of
// MaxStale, so that a provider announcing a long max-age (up to
// MaxRefreshInterval) is asked again, and has a retry to spare, before its
// keys go stale and its tokens get 503.
func (s *Set) currentInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return min(s.interval, s.cfg.MaxStale/2)
}

// nextBackoff doubles the retry delay within its bounds.
func (s *Set) nextBackoff(prev time.Duration) time.Duration {
	first := min(time.Second, s.cfg.MinRefreshInterval)
	limit := max(first, min(s.cfg.RefreshInterval, 5*time.Minute))
	if prev == 0 {
		return first
	}
	return min(prev*2, limit)
}

// refresh runs (or joins) one fetch for the background loop.
func (s *Set) refresh() error {
	s.mu.Lock()
	call, _ := s.startFetchLocked(s.cfg.Now(), false)
	s.mu.Unlock()
	if call == nil {
		return errClosed
	}
	select {
	case <-call.done:
		return call.err
	case <-s.ctx.Done():
		return errClosed
	}
}

var errClosed = errors.New("keyset: closed")

// startFetchLocked returns the fetch in flight, or starts one. A fetch
// caused by a lookup (byLookup) is allowed at most once per
// UnknownKIDInterval: limited reports a refusal. nil without limited means
// the Set is closed.
func (s *Set) startFetchLocked(now time.Time, byLookup bool) (call *fetchCall, limited bool) {
	if s.closed {
		return nil, false
	}
	if s.inflight != nil {
		return s.inflight, false
	}
	if byLookup {
		if !s.lastUnknownFetch.IsZero() && now.Sub(s.lastUnknownFetch) < s.cfg.UnknownKIDInterval {
			return nil, true
		}
		s.lastUnknownFetch = now
	}
	s.fetchSeq++
	call = &fetchCall{done: make(chan struct{}), seq: s.fetchSeq}
	s.inflight = call
	s.lastAttempt = now
	s.wg.Add(1)
	go s.doFetch(call, s.jwksURI)
	return call, false
}

// scheduleLocked arranges one refetch for the moment the unknown-kid rate
// limit allows it, after a lookup the limit refused: the kid that asked
// may be a key the provider has just published, and the next lookup for
// it should find it even if nothing else triggers a fetch. Many refused
// lookups share one timer, so a flood costs the provider no more than the
// limit allows.
func (s *Set) scheduleLocked(now time.Time) {
	if s.pending != nil || s.closed {
		return
	}
	delay := max(s.lastUnknownFetch.Add(s.cfg.UnknownKIDInterval).Sub(now), 0)
	s.pending = time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pending = nil
		now := s.cfg.Now()
		if _, limited := s.startFetchLocked(now, true); limited {
			// Only with a clock that is not the timer's (tests): the
			// delay is positive, so this cannot spin.
			s.scheduleLocked(now)
		}
	})
}

// Refresh fetches the keys now, regardless of the refresh schedule and the
// unknown-kid rate limit, and returns the result of a fetch that started
// after the call (a fetch already in flight may have read the document
// before the provider changed it: it is waited for, then another starts).
// On success the fetched set replaces the current one, so a key removed at
// the provider is refused from then on; on failure the current keys stay
// (and serve until MaxStale) and the error is returned. With discovery,
// the discovery document is fetched again as well. Static sets have
// nothing to fetch: nil. A configuration reload calls Refresh.
func (s *Set) Refresh(ctx context.Context) error {
	if s.src == sourceStatic {
		return nil
	}
	s.mu.Lock()
	after := s.fetchSeq
	for {
		call := s.inflight
		if call == nil {
			if s.src == sourceDiscovery {
				// Read the discovery document again too: the reload
				// re-reads everything the keys depend on.
				s.jwksURI = ""
			}
			call, _ = s.startFetchLocked(s.cfg.Now(), false)
		}
		s.mu.Unlock()
		if call == nil {
			return fmt.Errorf("keyset: provider %q: %w", s.cfg.Name, errClosed)
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return fmt.Errorf("keyset: provider %q: refresh: %w", s.cfg.Name, ctx.Err())
		}
		if call.seq > after {
			return call.err
		}
		s.mu.Lock()
	}
}

// doFetch performs one fetch and publishes its result.
func (s *Set) doFetch(call *fetchCall, jwksURI string) {
	defer s.wg.Done()
	var (
		res fetchResult
		err error
	)
	if jwksURI == "" {
		jwksURI, err = s.discover(s.ctx)
	}
	if err == nil {
		res, err = s.fetchJWKS(s.ctx, jwksURI)
	}
	if err != nil {
		err = fmt.Errorf("keyset: provider %q: %w", s.cfg.Name, err)
	}

	s.mu.Lock()
	before := keyIDs(s.keys)
	first := !s.fetched
	if err != nil {
		s.lastErr = err
		if s.src == sourceDiscovery {
			s.jwksURI = "" // the provider may have moved its keys: discover again
		}
	} else {
		now := s.cfg.Now()
		s.jwksURI = jwksURI
		s.setKeysLocked(res.keys)
		s.fetched = true
		s.lastRefresh = now
		s.lastErr = nil
		s.interval = s.cfg.RefreshInterval
		if res.hasMaxAge {
			s.interval = min(max(res.maxAge, s.cfg.MinRefreshInterval), s.cfg.MaxRefreshInterval)
		}
	}
	after := keyIDs(s.keys)
	interval := s.interval
	if err == nil {
		select {
		case s.refreshed <- struct{}{}:
		default:
		}
	}
	s.inflight = nil
	call.err = err
	close(call.done)
	s.broadcastLocked()
	s.mu.Unlock()

	closing := err != nil && errors.Is(err, context.Canceled) && s.ctx.Err() != nil
	if s.cfg.OnFetch != nil && !closing {
		s.cfg.OnFetch(err)
	}
	switch {
	case closing:
		// closing; not worth a warning
	case err != nil:
		s.cfg.Log.Warn("keyset: refresh failed", "provider", s.cfg.Name, "error", err.Error(), "serving_keys", len(before))
	case first || !slices.Equal(before, after):
		s.cfg.Log.Info("keyset: keys updated", "provider", s.cfg.Name, "key_ids", after,
			"skipped_keys", res.skipped, "next_refresh", interval.String())
	}
}

// setKeysLocked replaces the current keys and their index.
func (s *Set) setKeysLocked(keys []jose.JSONWebKey) {
	s.keys = slices.Clip(keys)
	s.byKID = make(map[string][]jose.JSONWebKey, len(keys))
	s.kidless = nil
	for _, k := range keys {
		if k.KeyID == "" {
			s.kidless = append(s.kidless, k)
			continue
		}
		s.byKID[k.KeyID] = append(s.byKID[k.KeyID], k)
	}
	for kid, ks := range s.byKID {
		s.byKID[kid] = slices.Clip(ks)
	}
	s.kidless = slices.Clip(s.kidless)
}

// broadcastLocked wakes everyone waiting for a state change.
func (s *Set) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Lookup returns the keys that may have signed a token with the given kid.
// An empty kid returns all current keys (for tokens without one). The
// returned slice is shared: callers must not modify it.
//
// Errors (test them with errors.Is): ErrUnknownKID when no such key exists
// even after the refetch the lookup was allowed to make, or when the
// unknown-kid rate limit refused that refetch (then one is scheduled for
// when the limit allows it, and the kid is not remembered); ErrUnavailable
// when there are no usable keys (never fetched, or past MaxStale) or the
// refetch needed to answer failed. Lookups of known kids never touch the
// network.
func (s *Set) Lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if s.src == sourceStatic {
		return s.lookupStatic(kid)
	}
	s.mu.Lock()
	now := s.cfg.Now()
	usable := s.usableLocked(now)
	if usable {
		if keys, ok := s.findLocked(kid); ok {
			s.mu.Unlock()
			return keys, nil
		}
	}
	call, limited := s.startFetchLocked(now, true)
	if call == nil {
		// Rate-limited (or closed): answer from what we have, and make
		// sure the refetch this lookup could not have happens as soon as
		// it may.
		if limited {
			s.scheduleLocked(now)
		}
		err := s.answerLocked(now, kid, s.lastErr)
		if limited && errors.Is(err, ErrUnknownKID) {
			next := s.lastUnknownFetch.Add(s.cfg.UnknownKIDInterval).Sub(now)
			err = fmt.Errorf("%w (not checked: refetch rate-limited by unknown_kid_interval, next in %s)", err, next.Round(time.Millisecond))
		}
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: provider %q: waiting for key refresh: %w", ErrUnavailable, s.cfg.Name, ctx.Err())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now = s.cfg.Now()
	if s.usableLocked(now) {
		if keys, ok := s.findLocked(kid); ok {
			return keys, nil
		}
	}
	return nil, s.answerLocked(now, kid, call.err)
}

// answerLocked is the error for a kid that the current keys cannot answer
// and that no further fetch will be made for. fetchErr is the error of the
// last fetch that could have found it.
func (s *Set) answerLocked(now time.Time, kid string, fetchErr error) error {
	if err := s.readyLocked(now); err != nil {
		return err
	}
	if fetchErr != nil {
		// The key may exist, but we could not ask: fail closed as
		// unavailable rather than calling the token bad.
		return fmt.Errorf("%w: provider %q: kid %q not cached and refresh failed: %w", ErrUnavailable, s.cfg.Name, kid, fetchErr)
	}
	return fmt.Errorf("%w %q", ErrUnknownKID, kid)
}

// findLocked returns the keys for kid ("" = all keys).
func (s *Set) findLocked(kid string) ([]jose.JSONWebKey, bool) {
	if kid == "" {
		return s.keys, len(s.keys) > 0
	}
	keys, ok := s.byKID[kid]
	return keys, ok
}

// lookupStatic answers from a static set, which never changes.
func (s *Set) lookupStatic(kid string) ([]jose.JSONWebKey, error) {
	if keys, ok := s.findLocked(kid); ok {
		return keys, nil
	}
	// A key without a kid (PEM has none) may verify a token that names
	// one: the kid is only a hint, the signature check decides.
	if len(s.kidless) > 0 {
		return s.kidless, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKID, kid)
}

// usableLocked reports whether the cached keys may be served.
func (s *Set) usableLocked(now time.Time) bool {
	return s.readyLocked(now) == nil
}

// Ready returns nil when lookups can succeed: a static set, or fetched keys
// not older than MaxStale. Otherwise the error (wrapping ErrUnavailable)
// says why.
func (s *Set) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked(s.cfg.Now())
}

func (s *Set) readyLocked(now time.Time) error {
	if s.src == sourceStatic {
		return nil
	}
	if !s.fetched {
		if s.lastErr != nil {
			return fmt.Errorf("%w: provider %q: no keys fetched yet: %w", ErrUnavailable, s.cfg.Name, s.lastErr)
		}
		return fmt.Errorf("%w: provider %q: no keys fetched yet", ErrUnavailable, s.cfg.Name)
	}
	if age := now.Sub(s.lastRefresh); age > s.cfg.MaxStale {
		if s.lastErr != nil {
			return fmt.Errorf("%w: provider %q: keys are stale (last refresh %s ago, max_stale %s): %w",
				ErrUnavailable, s.cfg.Name, age.Round(time.Second), s.cfg.MaxStale, s.lastErr)
		}
		return fmt.Errorf("%w: provider %q: keys are stale (last refresh %s ago, max_stale %s)",
			ErrUnavailable, s.cfg.Name, age.Round(time.Second), s.cfg.MaxStale)
	}
	return nil
}

// WaitReady blocks until Ready returns nil, ctx is done, or the Set is
// closed. It fetches nothing itself: call Start first.
func (s *Set) WaitReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		err := s.readyLocked(s.cfg.Now())
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if err == nil {
			return nil
		}
		if closed {
			return fmt.Errorf("keyset: provider %q: closed before ready: %w", s.cfg.Name, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("keyset: provider %q: waiting for keys: %w (%w)", s.cfg.Name, ctx.Err(), err)
		}
	}
}

// Health returns a snapshot of the Set's state.
func (s *Set) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	h := Health{
		Provider:    s.cfg.Name,
		Source:      s.sourceString(),
		Keys:        len(s.keys),
		KeyIDs:      keyIDs(s.keys),
		LastRefresh: s.lastRefresh,
		LastAttempt: s.lastAttempt,
	}
	if s.lastErr != nil {
		h.LastError = s.lastErr.Error()
	}
	ready := s.readyLocked(now)
	h.Ready = ready == nil
	h.Stale = s.fetched && (s.lastErr != nil || ready != nil)
	return h
}

func (s *Set) sourceString() string {
	switch s.src {
	case sourceDiscovery:
		return redactURL(s.discoveryURL())
	case sourceJWKSURI:
		return redactURL(s.cfg.JWKSURI)
	default:
		return "static"
	}
}

// keyIDs lists the distinct non-empty kids of keys, sorted.
func keyIDs(keys []jose.JSONWebKey) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if k.KeyID != "" {
			ids = append(ids, k.KeyID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
