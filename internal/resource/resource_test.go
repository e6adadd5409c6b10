package resource

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type counted struct{ opens, closes atomic.Int32 }

func (c *counted) opener(v string) func() (string, func(), error) {
	return func() (string, func(), error) {
		c.opens.Add(1)
		return v, func() { c.closes.Add(1) }, nil
	}
}

func TestReloadKeepsSharedResource(t *testing.T) {
	reg := New()
	var c counted
	old := reg.Scope()
	v1, reused, err := Get(old, "store:a", c.opener("A"))
	if err != nil || reused || v1 != "A" {
		t.Fatalf("first acquire: %q reused=%v err=%v", v1, reused, err)
	}
	// Same key twice in one scope: held once.
	if _, reused, _ := Get(old, "store:a", c.opener("A")); !reused {
		t.Fatal("second acquire in one scope should reuse")
	}
	next := reg.Scope() // a reload builds the next plan...
	v2, reused, err := Get(next, "store:a", c.opener("A2"))
	if err != nil || !reused || v2 != "A" {
		t.Fatalf("reload acquire: %q reused=%v err=%v", v2, reused, err)
	}
	old.Close() // ...then retires the old one
	if c.closes.Load() != 0 {
		t.Fatal("resource closed while the new plan holds it")
	}
	next.Close()
	next.Close() // idempotent
	if got := c.opens.Load(); got != 1 {
		t.Fatalf("opened %d times, want 1", got)
	}
	if got := c.closes.Load(); got != 1 {
		t.Fatalf("closed %d times, want 1", got)
	}
	if reg.Len() != 0 {
		t.Fatalf("registry still holds %v", reg.Keys())
	}
}

func TestChangedSettingsOpenNewResource(t *testing.T) {
	reg := New()
	var c counted
	old := reg.Scope()
	if _, _, err := Get(old, Key("pool", map[string]int{"timeout": 1}), c.opener("1")); err != nil {
		t.Fatal(err)
	}
	next := reg.Scope()
	v, reused, err := Get(next, Key("pool", map[string]int{"timeout": 2}), c.opener("2"))
	if err != nil || reused || v != "2" {
		t.Fatalf("changed settings: %q reused=%v err=%v", v, reused, err)
	}
	old.Close()
	if c.closes.Load() != 1 {
		t.Fatalf("old resource closes=%d, want 1", c.closes.Load())
	}
	next.Close()
}

func TestFailedOpenIsNotRemembered(t *testing.T) {
	reg := New()
	s := reg.Scope()
	defer s.Close()
	boom := errors.New("store down")
	if _, _, err := Get(s, "k", func() (string, func(), error) { return "", nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	v, _, err := Get(s, "k", func() (string, func(), error) { return "ok", nil, nil })
	if err != nil || v != "ok" {
		t.Fatalf("retry: %q %v", v, err)
	}
}

func TestPanickingOpenFails(t *testing.T) {
	s := New().Scope()
	defer s.Close()
	if _, _, err := Get(s, "k", func() (string, func(), error) { panic("bad") }); err == nil {
		t.Fatal("a panicking open must fail")
	}
}

func TestTypeMismatchIsAnError(t *testing.T) {
	s := New().Scope()
	defer s.Close()
	if _, _, err := Get(s, "k", func() (string, func(), error) { return "s", nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Get(s, "k", func() (int, func(), error) { return 1, nil, nil }); err == nil {
		t.Fatal("want a type mismatch error")
	}
}

func TestClosedScopeRefuses(t *testing.T) {
	s := New().Scope()
	s.Close()
	if _, _, err := s.Acquire("k", func() (any, func(), error) { return 1, nil, nil }); err == nil {
		t.Fatal("closed scope must refuse")
	}
}

// Concurrent plans asking for one resource open it once (an embedded
// store's file lock would refuse a second open).
func TestConcurrentAcquireOpensOnce(t *testing.T) {
	reg := New()
	var c counted
	scopes := make([]*Scope, 16)
	var wg sync.WaitGroup
	for i := range scopes {
		scopes[i] = reg.Scope()
		wg.Add(1)
		go func(s *Scope) {
			defer wg.Done()
			if _, _, err := Get(s, "k", c.opener("v")); err != nil {
				t.Error(err)
			}
		}(scopes[i])
	}
	wg.Wait()
	if c.opens.Load() != 1 {
		t.Fatalf("opened %d times", c.opens.Load())
	}
	for _, s := range scopes {
		s.Close()
	}
	if c.closes.Load() != 1 || reg.Len() != 0 {
		t.Fatalf("closes=%d left=%v", c.closes.Load(), reg.Keys())
	}
}

func TestKeyIsStableAndDistinct(t *testing.T) {
	type cfg struct{ A string }
	if Key("x", cfg{"1"}) != Key("x", cfg{"1"}) {
		t.Fatal("equal settings, different keys")
	}
	if Key("x", cfg{"1"}) == Key("x", cfg{"2"}) || Key("x", cfg{"1"}) == Key("y", cfg{"1"}) {
		t.Fatal("different settings or kinds share a key")
	}
}

// TestFailedOpenWaitersReleaseNothing: scopes that waited for an open that
// failed must not release anything: by then another scope may hold a new
// entry under the same key, which must stay open while it is held.
func TestFailedOpenWaitersReleaseNothing(t *testing.T) {
	reg := New()
	for range 200 {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		fail := errors.New("down")
		first := reg.Scope()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = Get(first, "k", func() (*atomic.Bool, func(), error) { <-gate; return nil, nil, fail })
		}()
		for range 4 {
			s := reg.Scope()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.Close()
				_, _, _ = Get(s, "k", func() (*atomic.Bool, func(), error) { <-gate; return nil, nil, fail })
			}()
		}
		holder := reg.Scope()
		var closed atomic.Bool
		close(gate)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, _, err := Get(holder, "k", func() (*atomic.Bool, func(), error) {
					return &closed, func() { closed.Store(true) }, nil
				})
				if err == nil {
					if v.Load() {
						t.Error("acquired a closed resource")
					}
					return
				}
			}
		}()
		wg.Wait()
		first.Close()
		if closed.Load() {
			t.Fatal("a waiter of a failed open released the entry another scope holds")
		}
		holder.Close()
		if !closed.Load() || reg.Len() != 0 {
			t.Fatalf("closed=%v left=%v", closed.Load(), reg.Keys())
		}
	}
}
