package basic

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/authntest"
)

// writeUsers writes a users file and returns its path.
func writeUsers(t testing.TB, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "users")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newAuth(t testing.TB, path string, ttl time.Duration) (*Authenticator, *FileSource, *clock) {
	t.Helper()
	src, err := OpenFile(path, ttl, 100, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	return &Authenticator{src: src, limit: NewLimiter(4, time.Second), now: clk.Now}, src, clk
}

// req is a request over TLS (r.TLS set) with the given Authorization
// values.
func req(auth ...string) *http.Request {
	r := httptest.NewRequest("GET", "https://gw.test/", nil)
	r.TLS = &tls.ConnectionState{}
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

func basicReq(user, pw string) *http.Request { return req("Basic " + b64s(user+":"+pw)) }

func reasonOf(err error) authn.Reason {
	var f *authn.Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	var u *authn.UnavailableError
	if errors.As(err, &u) {
		return u.Reason
	}
	return ""
}

func TestConformance(t *testing.T) {
	a, _, _ := newAuth(t, writeUsers(t, t.TempDir(), "alice:"+testHash()+" roles=admin\n"), time.Minute)
	authntest.Run(t, a, authntest.Cases{
		None: func() *http.Request { return req() },
		Good: func() *http.Request { return basicReq("alice", "s3cret") },
		Bad: []func() *http.Request{
			func() *http.Request { return basicReq("alice", "wrong") },
			func() *http.Request { return basicReq("mallory", "s3cret") },
			func() *http.Request { return req("Basic !!!") },
			func() *http.Request { return req("Basic\tYTpi") },
			func() *http.Request { return req("Basic "+b64s("alice:s3cret"), "Bearer x") },
		},
	})
}

func TestAuthenticate(t *testing.T) {
	a, _, _ := newAuth(t, writeUsers(t, t.TempDir(), "alice:"+testHash()+" roles=admin,ops groups=eng scopes=orders:read\nbob:"+testBcrypt()+"\n"), 0)
	plain := func(auth string) *http.Request {
		r := httptest.NewRequest("GET", "http://gw.test/", nil)
		r.Header.Set("Authorization", auth)
		return r
	}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		subject string
		reason  authn.Reason
		none    bool
	}{
		{"argon2id user", basicReq("alice", "s3cret"), "alice", "", false},
		{"bcrypt user", basicReq("bob", "legacy-pass"), "bob", "", false},
		{"scheme is case-insensitive", req("bAsIc " + b64s("alice:s3cret")), "alice", "", false},
		{"wrong password", basicReq("alice", "S3cret"), "", ReasonPasswordMismatch, false},
		{"unknown user", basicReq("carol", "s3cret"), "", ReasonUserUnknown, false},
		{"user names are case-sensitive", basicReq("Alice", "s3cret"), "", ReasonUserUnknown, false},
		{"no colon", req("Basic " + b64s("alice")), "", authn.ReasonMalformed, false},
		{"bad base64", req("Basic a$b"), "", authn.ReasonMalformed, false},
		{"non-utf-8", req("Basic " + "YWxp/2U6cw=="), "", authn.ReasonMalformed, false},
		{"empty credentials", req("Basic"), "", authn.ReasonMalformed, false},
		{"huge", req("Basic " + string(make([]byte, 64<<10))), "", authn.ReasonTooLarge, false},
		{"two Basic headers", req("Basic "+b64s("alice:s3cret"), "Basic "+b64s("alice:s3cret")), "", authn.ReasonMalformed, false},
		{"plain http", plain("Basic " + b64s("alice:s3cret")), "", ReasonPlainHTTP, false},
		{"no header", req(), "", "", true},
		{"bearer is not mine", req("Bearer abc"), "", "", true},
		{"other scheme", req("Digest username=x"), "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(tc.r)
			switch {
			case tc.none:
				if !errors.Is(err, authn.ErrNoCredential) || id != nil {
					t.Fatalf("got %v, %v; want ErrNoCredential", id, err)
				}
			case tc.subject != "":
				if err != nil || id.Subject != tc.subject || id.Method != Name || id.CredentialID != "basic:"+tc.subject {
					t.Fatalf("got %+v, %v", id, err)
				}
			default:
				if got := reasonOf(err); got != tc.reason || id != nil {
					t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
				}
			}
		})
	}
	id, _ := a.Authenticate(basicReq("alice", "s3cret"))
	if id.Roles[1] != "ops" || id.Groups[0] != "eng" || id.Scopes[0] != "orders:read" {
		t.Fatalf("identity %+v lacks the user's roles, groups or scopes", id)
	}
	// Unknown user and wrong password: one description for the client.
	_, e1 := a.Authenticate(basicReq("alice", "x"))
	_, e2 := a.Authenticate(basicReq("nobody", "x"))
	var f1, f2 *authn.Failure
	if !errors.As(e1, &f1) || !errors.As(e2, &f2) || f1.Description != f2.Description || f1.CredentialID != "basic:alice" || f2.CredentialID != "basic:nobody" {
		t.Fatalf("failures differ for the client: %+v / %+v", f1, f2)
	}
}

// TestUnknownUserCostsAVerification: an unknown user is verified against
// the dummy hash, so it is not answered at once. A lookup miss that skipped
// the hash would be about a thousand times faster than a verification; the
// margin is wide (20×) because the machine running the tests may be busy,
// and timing differences smaller than that are not what this test judges.
func TestUnknownUserCostsAVerification(t *testing.T) {
	a, _, _ := newAuth(t, writeUsers(t, t.TempDir(), "alice:"+testHash()+"\n"), 0)
	dummy() // built once, outside the measurement
	measure := func(user string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			_, _ = a.Authenticate(basicReq(user, "nope"))
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong, unknown := measure("alice"), measure("mallory")
	if unknown < wrong/20 || unknown > wrong*20 {
		t.Fatalf("unknown user took %v, wrong password %v: an existence oracle", unknown, wrong)
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	path := writeUsers(t, dir, "alice:"+testHash()+"\n")
	a, src, clk := newAuth(t, path, time.Minute)
	if _, err := a.Authenticate(basicReq("alice", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if n := src.table().cache.len(); n != 1 {
		t.Fatalf("cache holds %d pairs after a success, want 1", n)
	}
	// A wrong password is never cached.
	_, _ = a.Authenticate(basicReq("alice", "bad"))
	if n := src.table().cache.len(); n != 1 {
		t.Fatalf("cache holds %d pairs after a failure, want 1", n)
	}
	// A hit takes no verification slot: with every slot taken, a cached
	// pair still passes and an uncached one is refused with 503.
	hold := NewLimiter(1, 0)
	hold.slots <- struct{}{}
	a.limit = hold
	if _, err := a.Authenticate(basicReq("alice", "s3cret")); err != nil {
		t.Fatalf("cache hit: %v", err)
	}
	if _, err := a.Authenticate(basicReq("alice", "other")); reasonOf(err) != ReasonBusy {
		t.Fatalf("no free slot: %v, want %s", err, ReasonBusy)
	}
	var u *authn.UnavailableError
	if _, err := a.Authenticate(basicReq("alice", "other")); !errors.As(err, &u) {
		t.Fatalf("busy is not an UnavailableError (503): %v", err)
	}
	// Past the TTL, the pair is verified again (and refused: no slot).
	clk.Add(time.Minute)
	if _, err := a.Authenticate(basicReq("alice", "s3cret")); reasonOf(err) != ReasonBusy {
		t.Fatalf("expired entry still served: %v", err)
	}
	<-hold.slots
	if _, err := a.Authenticate(basicReq("alice", "s3cret")); err != nil {
		t.Fatal(err)
	}
	// A change of the users file (a new password) drops every cached
	// pair: the old password stops working at once.
	h2, err := HashPassword([]byte("n3w"), DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	writeUsers(t, dir, "alice:"+h2+"\n")
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(basicReq("alice", "s3cret")); reasonOf(err) != ReasonPasswordMismatch {
		t.Fatalf("old password after the change: %v", err)
	}
	if _, err := a.Authenticate(basicReq("alice", "n3w")); err != nil {
		t.Fatal(err)
	}
	// Reloading an unchanged file keeps the warm cache.
	before := src.table()
	if err := src.Reload(); err != nil || src.table() != before {
		t.Fatalf("unchanged file replaced the table (err %v)", err)
	}
	// A file that no longer parses keeps the users read before.
	writeUsers(t, dir, "alice:plaintext\n")
	if err := src.Reload(); err == nil {
		t.Fatal("a plaintext file was accepted")
	}
	if _, err := a.Authenticate(basicReq("alice", "n3w")); err != nil {
		t.Fatalf("broken file dropped the users: %v", err)
	}
}

func TestCacheKeyNeverHoldsThePassword(t *testing.T) {
	k1, k2 := keyOf("alice", []byte("pw")), keyOf("alic", []byte("epw"))
	if k1 == k2 {
		t.Fatal("user and password are not separated in the cache key")
	}
	if k1 != keyOf("alice", []byte("pw")) {
		t.Fatal("cache key is not deterministic")
	}
}

func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := writeUsers(t, dir, "alice:"+testHash()+"\n")
	src, err := OpenFile(path, time.Minute, 10, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Replace the file by rename, as editors do.
	tmp := filepath.Join(dir, "users.tmp")
	if err := os.WriteFile(tmp, []byte("bob:"+testHash()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for src.table().users["bob"] == nil {
		if ctx.Err() != nil {
			t.Fatal("the changed users file was not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if src.table().users["alice"] != nil {
		t.Fatal("alice survived the change")
	}
}

func TestLockoutKey(t *testing.T) {
	a := &Authenticator{}
	for _, tc := range []struct {
		r    *http.Request
		want string
	}{
		{basicReq("alice", "x"), "basic:alice"},
		{req(), ""},
		{req("Bearer x"), ""},
		{req("Basic !!"), ""},
	} {
		if got := a.LockoutKey(tc.r); got != tc.want {
			t.Errorf("LockoutKey = %q, want %q", got, tc.want)
		}
	}
}

// TestConcurrentMissesShareOneVerification: when a client's cached
// credential has expired and many of its connections arrive at once, one
// verification runs and the others wait for its verdict, instead of each
// needing a slot (with one slot and no wait, all but one would get 503
// verification_busy). A wrong password is shared as a failure the same way.
func TestConcurrentMissesShareOneVerification(t *testing.T) {
	a, _, _ := newAuth(t, writeUsers(t, t.TempDir(), "alice:"+testHash()+"\n"), time.Minute)
	a.limit = NewLimiter(1, time.Millisecond)
	for _, tc := range []struct {
		password string
		reason   authn.Reason
	}{{"s3cret", ""}, {"wrong", ReasonPasswordMismatch}} {
		const n = 32
		errs := make(chan error, n)
		var start sync.WaitGroup
		start.Add(1)
		for range n {
			go func() {
				start.Wait()
				_, err := a.Authenticate(basicReq("alice", tc.password))
				errs <- err
			}()
		}
		start.Done()
		for range n {
			if got := reasonOf(<-errs); got != tc.reason {
				t.Fatalf("password %q: reason %q, want %q (no request may be refused as busy)", tc.password, got, tc.reason)
			}
		}
	}
}
