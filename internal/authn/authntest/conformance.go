// Package authntest is the conformance suite every authenticator must
// pass: no credential → not responsible; bad credential → a typed failure
// that stops the chain; a credential of another method's form, presented
// where this one looks → "not mine" (authn.NotMineError), which a later
// method may claim but which is never anonymous; a good one → an identity
// of its method; safe under concurrency. (Never writing the response needs no test: an Authenticator
// is given the request only, and the pipeline alone holds the writer.)
package authntest

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Cases are requests prepared by the authenticator's own test.
type Cases struct {
	// None carries no credential of the authenticator's kind.
	None func() *http.Request
	// Good carries a valid credential.
	Good func() *http.Request
	// Bad carries presented-but-invalid credentials.
	Bad []func() *http.Request
	// NotMine carries credentials presented where the authenticator looks
	// but, by their form, of another method (an opaque bearer token for
	// the JWT method). Optional: a method that claims everything it reads
	// has none.
	NotMine []func() *http.Request
}

// Run checks a against the contract in authn's package documentation.
func Run(t *testing.T, a authn.Authenticator, c Cases) {
	t.Helper()
	t.Run("no credential is not responsible", func(t *testing.T) {
		id, err := a.Authenticate(c.None())
		if !errors.Is(err, authn.ErrNoCredential) || id != nil {
			t.Fatalf("got %v, %v; want ErrNoCredential", id, err)
		}
	})
	t.Run("good credential yields an identity of this method", func(t *testing.T) {
		id, err := a.Authenticate(c.Good())
		if err != nil || id == nil || id.Method != a.Method() || id.Subject == "" || id.IsAnonymous() {
			t.Fatalf("got %+v, %v", id, err)
		}
	})
	t.Run("bad credentials are typed failures", func(t *testing.T) {
		if len(c.Bad) == 0 {
			t.Fatal("the suite needs at least one bad credential")
		}
		for i, bad := range c.Bad {
			id, err := a.Authenticate(bad())
			var f *authn.Failure
			if id != nil || !errors.As(err, &f) || f.Reason == "" || f.Method != a.Method() || errors.Is(err, authn.ErrNoCredential) {
				t.Fatalf("bad credential %d: got %v, %v; want a *authn.Failure of method %s", i, id, err, a.Method())
			}
			// A failure stops an OR chain: the next method is never asked.
			next := &counting{}
			chain := authn.Chain{Authenticators: []authn.Authenticator{a, next}, AllowAnonymous: true}
			if id, err := chain.Authenticate(bad()); err == nil || id != nil || next.calls != 0 {
				t.Fatalf("bad credential %d fell through the chain (id %v, next called %d times)", i, id, next.calls)
			}
		}
	})
	t.Run("credentials of another form are not mine, never anonymous", func(t *testing.T) {
		for i, mk := range c.NotMine {
			id, err := a.Authenticate(mk())
			var nm *authn.NotMineError
			var f *authn.Failure
			if id != nil || !errors.As(err, &nm) || !errors.Is(err, authn.ErrNoCredential) || errors.As(err, &f) {
				t.Fatalf("not-mine credential %d: got %v, %v; want an *authn.NotMineError that is not a *authn.Failure", i, id, err)
			}
			if nm.Failure == nil || nm.Failure.Reason == "" || nm.Failure.Method != a.Method() {
				t.Fatalf("not-mine credential %d: carried failure %+v; want one of method %s", i, nm.Failure, a.Method())
			}
			// Alone on an allow_anonymous route: refused with the carried
			// failure, never let through as anonymous.
			alone := authn.Chain{Authenticators: []authn.Authenticator{a}, AllowAnonymous: true}
			if id, err := alone.Authenticate(mk()); id != nil || !errors.As(err, &f) || f.Reason != nm.Failure.Reason {
				t.Fatalf("not-mine credential %d alone: got %v, %v; want failure %s", i, id, err, nm.Failure.Reason)
			}
			// A later method that claims it wins.
			next := &counting{}
			chain := authn.Chain{Authenticators: []authn.Authenticator{a, next}}
			if id, err := chain.Authenticate(mk()); err != nil || id == nil || next.calls != 1 {
				t.Fatalf("not-mine credential %d never reached the next method (id %v, err %v, next called %d times)", i, id, err, next.calls)
			}
		}
	})
	t.Run("safe under concurrency", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				good := i%2 == 0
				mk := c.Bad[i%len(c.Bad)]
				if good {
					mk = c.Good
				}
				id, err := a.Authenticate(mk())
				if good != (err == nil && id != nil) {
					t.Errorf("request %d (good=%v): %v %v", i, good, id, err)
				}
			}()
		}
		wg.Wait()
	})
}

type counting struct{ calls int }

func (c *counting) Method() identity.Method { return identity.MethodAPIKey }
func (c *counting) Authenticate(*http.Request) (*identity.Identity, error) {
	c.calls++
	return &identity.Identity{Subject: "fallthrough", Method: identity.MethodAPIKey}, nil
}
