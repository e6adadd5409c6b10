package apikey_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
)

// countingStore wraps the real store to count lookups and record touch
// batches; every call still goes to the real store.
type countingStore struct {
	apikey.Store
	lookups atomic.Int64

	mu      sync.Mutex
	touches []map[string]time.Time
}

func (s *countingStore) LookupKey(ctx context.Context, hash []byte) (*apikey.Key, *apikey.Consumer, error) {
	s.lookups.Add(1)
	return s.Store.LookupKey(ctx, hash)
}

func (s *countingStore) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	s.mu.Lock()
	s.touches = append(s.touches, maps.Clone(lastUsed))
	s.mu.Unlock()
	return s.Store.TouchKeys(ctx, lastUsed)
}

func (s *countingStore) touchBatches() []map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]time.Time(nil), s.touches...)
}

// clock is an injectable, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a real embedded store in a temporary directory, with the format
// and hasher keys are made with.
type env struct {
	t      testing.TB
	bolt   *boltstore.Store
	store  *countingStore
	format apikey.Format
	hasher *apikey.Hasher
	clock  *clock
}

var testPepper = []byte("0123456789abcdef0123456789abcdef-test-pepper")

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	format, err := apikey.NewFormat("gate_test_")
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := apikey.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		t:      t,
		bolt:   st,
		store:  &countingStore{Store: st},
		format: format,
		hasher: hasher,
		clock:  &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
}

func (e *env) consumer(name string, groups, tags []string) *apikey.Consumer {
	e.t.Helper()
	c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: name, Groups: groups, Tags: tags, CreatedAt: e.clock.Now()}
	if err := e.bolt.CreateConsumer(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// key stores a new active key of c, adjusted by edit, and returns its
// plaintext and stored form.
func (e *env) key(c *apikey.Consumer, edit func(*apikey.Key)) (string, *apikey.Key) {
	e.t.Helper()
	plain, err := e.format.Generate()
	if err != nil {
		e.t.Fatal(err)
	}
	k := &apikey.Key{
		ID:         apikey.NewKeyID(),
		ConsumerID: c.ID,
		Hash:       e.hasher.Hash(plain),
		Hint:       apikey.Hint(plain),
		Status:     apikey.StatusActive,
		CreatedAt:  e.clock.Now(),
	}
	if edit != nil {
		edit(k)
	}
	if err := e.bolt.CreateKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return plain, k
}

// unknownKey is a well-formed key that is not stored.
func (e *env) unknownKey() string {
	e.t.Helper()
	plain, err := e.format.Generate()
	if err != nil {
		e.t.Fatal(err)
	}
	return plain
}

func (e *env) auth(edit func(*authnapikey.Config)) *authnapikey.Authenticator {
	e.t.Helper()
	cfg := authnapikey.Config{Store: e.store, Format: e.format, Hasher: e.hasher, Now: e.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	a, err := authnapikey.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// request builds a GET request with the given header name/value pairs.
func request(target string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func withKey(key string) *http.Request { return request("/", "X-API-Key", key) }

// failure returns err as a *authn.Failure or fails the test.
func failure(t testing.TB, err error) *authn.Failure {
	t.Helper()
	var f *authn.Failure
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a *authn.Failure", err)
	}
	return f
}
