package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// scripted is an authenticator whose answer depends on a request header,
// so one chain can be driven through every outcome.
type scripted struct {
	method identity.Method
	header string
}

func (s scripted) Method() identity.Method { return s.method }

func (s scripted) Authenticate(r *http.Request) (*identity.Identity, error) {
	switch r.Header.Get(s.header) {
	case "":
		return nil, ErrNoCredential
	case "good":
		return &identity.Identity{Subject: string(s.method) + "-user", Method: s.method}, nil
	case "down":
		return nil, &UnavailableError{Method: s.method, Reason: ReasonKeysUnavailable}
	case "nil":
		return nil, nil
	case "opaque":
		return nil, NotMine(&Failure{Method: s.method, Reason: ReasonUnsupported, Description: "Not a JWT."})
	case "opaque-nil":
		return nil, &NotMineError{}
	default:
		return nil, &Failure{Method: s.method, Reason: ReasonBadSignature, Description: "The access token is not valid."}
	}
}

func TestChain(t *testing.T) {
	jwtA := scripted{identity.MethodJWT, "X-Jwt"}
	keyA := scripted{identity.MethodAPIKey, "X-Key"}
	mtls := scripted{identity.MethodMTLS, "X-Cert"}
	for _, tc := range []struct {
		name        string
		chain       Chain
		headers     map[string]string
		wantSubject string
		wantReason  Reason // for *Failure
		wantUnavail bool
	}{
		{"or: first succeeds", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Jwt": "good"}, "jwt-user", "", false},
		{"or: second succeeds when first not responsible", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Key": "good"}, "api_key-user", "", false},
		{"or: a bad credential stops the chain", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Jwt": "bad", "X-Key": "good"}, "", ReasonBadSignature, false},
		{"or: nothing presented", Chain{Authenticators: []Authenticator{jwtA, keyA}}, nil, "", ReasonMissing, false},
		{"or: anonymous allowed", Chain{Authenticators: []Authenticator{jwtA}, AllowAnonymous: true}, nil, "", "", false},
		{"or: anonymous never hides a bad credential", Chain{Authenticators: []Authenticator{jwtA}, AllowAnonymous: true}, map[string]string{"X-Jwt": "bad"}, "", ReasonBadSignature, false},
		{"or: unavailable fails closed", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Jwt": "down", "X-Key": "good"}, "", "", true},
		{"or: anonymous never hides an outage", Chain{Authenticators: []Authenticator{jwtA}, AllowAnonymous: true}, map[string]string{"X-Jwt": "down"}, "", "", true},
		{"buggy authenticator denies", Chain{Authenticators: []Authenticator{jwtA}}, map[string]string{"X-Jwt": "nil"}, "", "", true},
		{"and: both succeed, last identity wins", Chain{Authenticators: []Authenticator{mtls, jwtA}, RequireAll: true}, map[string]string{"X-Cert": "good", "X-Jwt": "good"}, "jwt-user", "", false},
		{"and: one missing", Chain{Authenticators: []Authenticator{mtls, jwtA}, RequireAll: true}, map[string]string{"X-Jwt": "good"}, "", ReasonMissing, false},
		{"and: one bad", Chain{Authenticators: []Authenticator{mtls, jwtA}, RequireAll: true}, map[string]string{"X-Cert": "good", "X-Jwt": "bad"}, "", ReasonBadSignature, false},
		{"empty chain denies", Chain{}, nil, "", ReasonMissing, false},
		{"or: not mine, nobody claims: its failure", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Jwt": "opaque"}, "", ReasonUnsupported, false},
		{"or: not mine is never anonymous", Chain{Authenticators: []Authenticator{jwtA}, AllowAnonymous: true}, map[string]string{"X-Jwt": "opaque"}, "", ReasonUnsupported, false},
		{"or: not mine without a failure still refuses", Chain{Authenticators: []Authenticator{jwtA}, AllowAnonymous: true}, map[string]string{"X-Jwt": "opaque-nil"}, "", ReasonUnsupported, false},
		{"or: not mine, a later method claims it", Chain{Authenticators: []Authenticator{jwtA, keyA}, AllowAnonymous: true}, map[string]string{"X-Jwt": "opaque", "X-Key": "good"}, "api_key-user", "", false},
		{"or: not mine, a later method refuses it", Chain{Authenticators: []Authenticator{jwtA, keyA}}, map[string]string{"X-Jwt": "opaque", "X-Key": "bad"}, "", ReasonBadSignature, false},
		{"and: not mine is its own failure", Chain{Authenticators: []Authenticator{mtls, jwtA}, RequireAll: true}, map[string]string{"X-Cert": "good", "X-Jwt": "opaque"}, "", ReasonUnsupported, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			id, err := tc.chain.Authenticate(r)
			var f *Failure
			var u *UnavailableError
			switch {
			case tc.wantReason != "":
				if !errors.As(err, &f) || f.Reason != tc.wantReason || id != nil {
					t.Fatalf("got %v, %v; want failure %s", id, err, tc.wantReason)
				}
			case tc.wantUnavail:
				if !errors.As(err, &u) || id != nil {
					t.Fatalf("got %v, %v; want unavailable", id, err)
				}
			case tc.wantSubject == "":
				if err != nil || !id.IsAnonymous() {
					t.Fatalf("got %v, %v; want anonymous", id, err)
				}
			default:
				if err != nil || id.Subject != tc.wantSubject {
					t.Fatalf("got %v, %v; want %s", id, err, tc.wantSubject)
				}
			}
			if errors.Is(err, ErrNoCredential) {
				t.Fatal("the chain must never return ErrNoCredential")
			}
		})
	}
}

func TestChainConcurrent(t *testing.T) {
	c := &Chain{Authenticators: []Authenticator{scripted{identity.MethodJWT, "X-Jwt"}}}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "/", nil)
			if i%2 == 0 {
				r.Header.Set("X-Jwt", "good")
			}
			id, err := c.Authenticate(r)
			if (i%2 == 0) != (err == nil && id != nil) {
				t.Errorf("request %d: %v %v", i, id, err)
			}
		}()
	}
	wg.Wait()
}

// cachedAuth returns the same identity object on every call, as the JWT
// verified-token cache does: the chain must never change it.
type cachedAuth struct{ id *identity.Identity }

func (c cachedAuth) Method() identity.Method { return c.id.Method }

func (c cachedAuth) Authenticate(*http.Request) (*identity.Identity, error) { return c.id, nil }

func TestChainComposite(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cert := &identity.Identity{Method: identity.MethodMTLS, Subject: "CN=svc", CredentialID: "serial-1",
		CertThumbprint: "thumb", ExpiresAt: t0.Add(time.Hour)}
	tok := &identity.Identity{Method: identity.MethodJWT, Subject: "alice", Issuer: "https://idp", Provider: "corp",
		CredentialID: "jti-1", Scopes: []string{"read"}, ExpiresAt: t0.Add(10 * time.Minute),
		KeyBinding: identity.KeyBinding{Kind: "x5t#S256", Value: "thumb"}}
	key := &identity.Identity{Method: identity.MethodAPIKey, Subject: "c-1", CredentialID: "k-1"}
	for _, tc := range []struct {
		name        string
		auths       []*identity.Identity
		primary     identity.Method
		wantSubject string
		wantMethods string
		wantExpiry  time.Time
	}{
		{"default primary is the last", []*identity.Identity{cert, tok}, "", "alice", "mtls,jwt", t0.Add(10 * time.Minute)},
		{"named primary", []*identity.Identity{cert, tok}, identity.MethodMTLS, "CN=svc", "mtls,jwt", t0.Add(10 * time.Minute)},
		{"expiry ignores credentials that never expire", []*identity.Identity{key, cert}, "", "CN=svc", "api_key,mtls", t0.Add(time.Hour)},
		{"three credentials", []*identity.Identity{key, cert, tok}, identity.MethodAPIKey, "c-1", "api_key,mtls,jwt", t0.Add(10 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snapshots := make([]identity.Identity, len(tc.auths))
			c := Chain{RequireAll: true, Primary: tc.primary}
			for i, id := range tc.auths {
				snapshots[i] = *id
				c.Authenticators = append(c.Authenticators, cachedAuth{id})
			}
			got, err := c.Authenticate(httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			var methods []string
			for _, ev := range got.Evidence() {
				methods = append(methods, string(ev.Method))
			}
			if got.Subject != tc.wantSubject || strings.Join(methods, ",") != tc.wantMethods || !got.ExpiresAt.Equal(tc.wantExpiry) || !got.Composite() {
				t.Fatalf("got subject %q methods %v expiry %v", got.Subject, methods, got.ExpiresAt)
			}
			for i, id := range tc.auths {
				if id == got {
					t.Fatal("the composite is an authenticator's (cached) identity")
				}
				if id.Credentials != nil || !id.ExpiresAt.Equal(snapshots[i].ExpiresAt) || id.Subject != snapshots[i].Subject {
					t.Fatalf("identity %d was changed: %+v", i, id)
				}
			}
			if ev := got.Evidence(); ev[len(ev)-1] != tc.auths[len(tc.auths)-1].Credential() {
				t.Errorf("evidence %+v", ev)
			}
		})
	}
	// One method: the identity itself, no composite, no allocation.
	c := Chain{RequireAll: true, Authenticators: []Authenticator{cachedAuth{tok}}}
	r := httptest.NewRequest("GET", "/", nil)
	if got, _ := c.Authenticate(r); got != tok || got.Composite() {
		t.Fatalf("single AND member: %+v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Authenticate(r) }); n != 0 {
		t.Errorf("single AND member allocates %v times", n)
	}
}
