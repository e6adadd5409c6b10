// Package resource owns what outlives one compiled plan: key stores,
// credential caches, identity providers' key sets, upstream connection
// pools and the Redis client. A plan acquires each resource it
// needs by a key derived from the configuration that defines it; a reload
// whose new plan asks for the same key gets the same, warm resource, and a
// resource is closed only when the last plan holding it is retired.
//
// The registry does not know what it holds: the open function given to
// Acquire builds the value and says how to close it. That keeps it free of
// dependencies, so every package that defines a resource can use it.
package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Registry holds the resources of one gateway process. The zero value is
// not usable; call New. It is safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	value any
	close func()
	refs  int
	// ready is closed once open has returned; err is its error. A second
	// plan asking for a resource being opened waits for the first open
	// instead of opening it twice (an embedded store's file lock would
	// refuse the second).
	ready chan struct{}
	err   error
}

// New returns an empty registry. One per gateway process.
func New() *Registry { return &Registry{entries: map[string]*entry{}} }

// Scope returns a new scope: one plan's hold on the registry.
func (r *Registry) Scope() *Scope { return &Scope{reg: r, held: map[string]any{}} }

// Len reports how many resources are open (tests, status pages).
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Keys lists the keys of the open resources, sorted (tests, status pages).
func (r *Registry) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.entries))
	for k := range r.entries {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Scope is one plan's hold on resources: everything acquired through it is
// released by Close, once. Acquiring a key twice in one scope returns the
// same value and holds it once, so a plan can ask per route for what is
// shared by all its routes.
type Scope struct {
	reg *Registry

	mu     sync.Mutex
	held   map[string]any
	order  []string
	closed bool
}

// Opener builds a resource: its value and the function that closes it
// (nil when there is nothing to close).
type Opener func() (value any, close func(), err error)

// Acquire returns the resource under key, opening it with open when no
// scope holds it yet. reused reports that the value was already open
// before this scope asked for it (a reload kept it). An open that fails
// is not remembered: the next Acquire tries again.
func (s *Scope) Acquire(key string, open Opener) (value any, reused bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, fmt.Errorf("resource: scope closed, cannot acquire %s", key)
	}
	if v, ok := s.held[key]; ok {
		s.mu.Unlock()
		return v, true, nil
	}
	s.mu.Unlock()

	v, reused, err := s.reg.acquire(key, open)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.reg.release(key)
		return nil, false, fmt.Errorf("resource: scope closed, cannot acquire %s", key)
	}
	if held, ok := s.held[key]; ok {
		// Acquired concurrently through this scope: hold it once.
		s.reg.release(key)
		return held, true, nil
	}
	s.held[key] = v
	s.order = append(s.order, key)
	return v, reused, nil
}

// Close releases every resource the scope holds, newest first; resources
// no other scope holds are closed. Close is idempotent.
func (s *Scope) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	order := s.order
	s.order, s.held = nil, nil
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		s.reg.release(order[i])
	}
}

func (r *Registry) acquire(key string, open Opener) (any, bool, error) {
	r.mu.Lock()
	if e, ok := r.entries[key]; ok {
		e.refs++
		r.mu.Unlock()
		<-e.ready
		if e.err != nil {
			// The failed entry is gone from the map already (its opener
			// removed it before announcing the failure): nothing to
			// release, and releasing by key could hit a newer entry that
			// another scope opened since.
			return nil, false, e.err
		}
		return e.value, true, nil
	}
	e := &entry{refs: 1, ready: make(chan struct{})}
	r.entries[key] = e
	r.mu.Unlock()

	func() {
		defer func() {
			if p := recover(); p != nil {
				e.err = fmt.Errorf("resource: opening %s panicked: %v", key, p)
			}
		}()
		e.value, e.close, e.err = open()
	}()
	if e.err != nil {
		r.mu.Lock()
		if r.entries[key] == e {
			delete(r.entries, key) // the next Acquire opens it afresh
		}
		r.mu.Unlock()
		close(e.ready)
		return nil, false, e.err
	}
	close(e.ready)
	return e.value, false, nil
}

func (r *Registry) release(key string) {
	r.mu.Lock()
	e, ok := r.entries[key]
	if !ok {
		r.mu.Unlock()
		return
	}
	e.refs--
	last := e.refs == 0
	if last {
		delete(r.entries, key)
	}
	r.mu.Unlock()
	if last && e.err == nil && e.close != nil {
		e.close()
	}
}

// Get is Acquire with the value's type checked: a key names one kind of
// resource, so a mismatch is a programming error, returned as one.
func Get[T any](s *Scope, key string, open func() (T, func(), error)) (T, bool, error) {
	v, reused, err := s.Acquire(key, func() (any, func(), error) { return open() })
	if err != nil {
		var zero T
		return zero, false, err
	}
	t, ok := v.(T)
	if !ok {
		var zero T
		return zero, false, fmt.Errorf("resource: %s holds %T, not %T", key, v, zero)
	}
	return t, reused, nil
}

// Key derives a resource key from its kind and the configuration that
// defines it (anything encoding/json can encode): equal settings give
// equal keys, so a reload that leaves them unchanged reuses the resource,
// and any change gives a new one.
func Key(kind string, settings any) string {
	b, err := json.Marshal(settings)
	if err != nil {
		// Unencodable settings are never shared: a key no other call
		// can produce.
		return fmt.Sprintf("%s:unshared:%p", kind, &b)
	}
	sum := sha256.Sum256(b)
	return kind + ":" + hex.EncodeToString(sum[:12])
}
