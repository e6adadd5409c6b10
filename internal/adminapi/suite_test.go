package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore"
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

const testToken = "s3cret-admin-token-for-tests"

func openBolt(t *testing.T) apikey.Store {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func openPostgres(t *testing.T) apikey.Store {
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestBolt and TestPostgres run the same suite against each real store.
func TestBolt(t *testing.T)     { runSuite(t, openBolt) }
func TestPostgres(t *testing.T) { runSuite(t, openPostgres) }

func runSuite(t *testing.T, open func(t *testing.T) apikey.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Lifecycle", testLifecycle},
		{"Auth", testAuth},
		{"Validation", testValidation},
		{"Errors", testErrors},
		{"OpenAPICoversRoutes", testOpenAPICoversRoutes},
		{"Concurrency", testConcurrency},
		{"KeyLookup", testKeyLookup},
		{"Revocations", testRevocations},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newFixture(t, open(t)))
		})
	}
}

// recorder is an audit.Logger that keeps events.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Log(e *audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, *e)
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

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
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer is a concurrency-safe log sink, checked for leaked secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	t     *testing.T
	store apikey.Store
	svc   *keymgmt.Service
	rev   *revocation.Service
	srv   *httptest.Server
	audit *recorder
	clock *clock
	logs  *logBuffer
	docv  *docValidator

	mu          sync.Mutex
	invalidated []string
}

func newFixture(t *testing.T, st apikey.Store) *fixture {
	f := &fixture{t: t, store: st, audit: &recorder{}, logs: &logBuffer{}, docv: newDocValidator(t),
		clock: &clock{now: time.Now().UTC().Truncate(time.Second)}}
	h, err := apikey.NewHasher([]byte("pepper-pepper-pepper-pepper-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = &keymgmt.Service{
		Store:  st,
		Format: apikey.Format{Prefix: "gate_test_"},
		Hasher: h,
		Audit:  f.audit,
		Invalidate: func(id string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.invalidated = append(f.invalidated, id)
		},
		Now: f.clock.Now,
	}
	f.rev = &revocation.Service{Store: st.(revocation.Store), Audit: f.audit, Now: f.clock.Now}
	sum := sha256.Sum256([]byte(testToken))
	f.srv = httptest.NewServer(New(Config{
		Service:     f.svc,
		Revocations: f.rev,
		TokenHash:   sum[:],
		Log:         slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) wasInvalidated(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.invalidated, id)
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problemDetails is a decoded problem body with its field errors.
type problemDetails struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []keymgmt.FieldError `json:"errors,omitempty"`
}

const problemContentType = "application/problem+json"

// problem decodes a problem body and checks its media type.
func (r *response) problem(t *testing.T) problemDetails {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != problemContentType {
		t.Fatalf("Content-Type = %q, want %s; body %s", ct, problemContentType, r.body)
	}
	var p problemDetails
	r.decode(t, &p)
	return p
}

// req sends a request. body: nil, a string (sent raw) or a value (JSON).
// token "" sends no Authorization header.
func (f *fixture) req(method, path, token string, body any, hdr ...string) *response {
	f.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	r, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.Client().Do(r)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// call sends an authenticated request, checks the status and validates the
// body against the OpenAPI document's schema for pattern/method/status.
func (f *fixture) call(method, pattern, path string, body any, want int) *response {
	f.t.Helper()
	r := f.req(method, path, testToken, body)
	if r.status != want {
		f.t.Fatalf("%s %s = %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	f.docv.check(f.t, method, pattern, r)
	return r
}
