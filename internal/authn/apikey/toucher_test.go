package apikey_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
)

func TestToucherBatches(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("touchy", nil, nil)
	_, k1 := e.key(c, nil)
	_, k2 := e.key(c, nil)
	touch := authnapikey.NewToucher(e.store, time.Hour, nil)
	base := e.clock.Now()
	latest := base.Add(999 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 1000; i += 4 {
				// Out of order on purpose: the latest time wins, not the last call.
				touch.Touch(k1.ID, base.Add(time.Duration((i*7919)%1000)*time.Second))
			}
		})
	}
	wg.Wait()
	touch.Touch(k2.ID, base)
	if got := e.store.touchBatches(); len(got) != 0 {
		t.Fatalf("written before interval or Close: %d batches", len(got))
	}
	if err := touch.Close(); err != nil {
		t.Fatal(err)
	}
	batches := e.store.touchBatches()
	if len(batches) != 1 {
		t.Fatalf("%d TouchKeys calls, want 1", len(batches))
	}
	if b := batches[0]; len(b) != 2 || !b[k1.ID].Equal(latest) || !b[k2.ID].Equal(base) {
		t.Fatalf("batch %v", b)
	}
	stored, err := e.bolt.GetKey(context.Background(), k1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LastUsedAt == nil || !stored.LastUsedAt.Equal(latest) {
		t.Fatalf("stored last use %v, want %v", stored.LastUsedAt, latest)
	}

	// Close is idempotent and later touches are ignored.
	touch.Touch(k1.ID, latest.Add(time.Hour))
	if err := touch.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.store.touchBatches()); n != 1 {
		t.Fatalf("%d TouchKeys calls after a second Close, want 1", n)
	}
}

func TestToucherWritesEveryInterval(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("periodic", nil, nil)
	_, k := e.key(c, nil)
	touch := authnapikey.NewToucher(e.store, 20*time.Millisecond, nil)
	defer touch.Close()
	touch.Touch(k.ID, e.clock.Now())
	deadline := time.Now().Add(5 * time.Second)
	for len(e.store.touchBatches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no write within 5s at a 20ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing pending: no empty writes.
	time.Sleep(100 * time.Millisecond)
	if n := len(e.store.touchBatches()); n != 1 {
		t.Fatalf("%d writes for one touch, want 1", n)
	}
}

func TestToucherErrorsAreLoggedNotFatal(t *testing.T) {
	e := newEnv(t)
	c := e.consumer("unlucky", nil, nil)
	_, k := e.key(c, nil)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	touch := authnapikey.NewToucher(e.store, time.Hour, log)
	touch.Touch(k.ID, e.clock.Now())
	if err := e.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := touch.Close(); err == nil {
		t.Fatal("Close reported no error for a failed write")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "last-used") {
		t.Fatalf("write error not logged: %q", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
