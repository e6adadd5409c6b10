package revocation_test

import (
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/revocation"
)

// switchFeed is a feed a test turns on and off and fires by hand.
type switchFeed struct {
	up   atomic.Bool
	subs []func()
}

func (f *switchFeed) Subscribe(changed func()) func() {
	f.subs = append(f.subs, changed)
	i := len(f.subs) - 1
	return func() { f.subs[i] = nil }
}

func (f *switchFeed) Listening() bool { return f.up.Load() }

func (f *switchFeed) fire() {
	for _, fn := range f.subs {
		if fn != nil {
			fn()
		}
	}
}

func TestJoinFeeds(t *testing.T) {
	if revocation.JoinFeeds() != nil || revocation.JoinFeeds(nil, nil) != nil {
		t.Fatal("no feeds must join to nil (a single-process store)")
	}
	one := &switchFeed{}
	if revocation.JoinFeeds(nil, one) != revocation.Feed(one) {
		t.Fatal("one feed must join to itself")
	}
	for _, tc := range []struct {
		name      string
		a, b      bool
		listening bool
	}{
		{name: "both down", listening: false},
		{name: "first up", a: true, listening: true},
		{name: "second up", b: true, listening: true},
		{name: "both up", a: true, b: true, listening: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := &switchFeed{}, &switchFeed{}
			a.up.Store(tc.a)
			b.up.Store(tc.b)
			j := revocation.JoinFeeds(a, b)
			if got := j.Listening(); got != tc.listening {
				t.Errorf("Listening = %v, want %v", got, tc.listening)
			}
			var calls int
			cancel := j.Subscribe(func() { calls++ })
			a.fire()
			b.fire()
			if calls != 2 {
				t.Errorf("%d changes relayed, want 2 (one from each feed)", calls)
			}
			cancel()
			a.fire()
			b.fire()
			if calls != 2 {
				t.Errorf("changes relayed after cancel")
			}
		})
	}
	if revocation.Unheard.Listening() {
		t.Error("Unheard listens")
	}
}
