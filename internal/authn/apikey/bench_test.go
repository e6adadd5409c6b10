package apikey_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
)

// BenchmarkAuthenticate measures the request hot path against the real
// embedded store: a cache hit (the common case) and a miss that asks bolt.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	c := e.consumer("bench", []string{"g"}, []string{"t"})
	key, _ := e.key(c, nil)
	for _, bc := range []struct {
		name string
		edit func(*authnapikey.Config)
	}{
		{"cache-hit", nil},
		{"miss-bolt", func(c *authnapikey.Config) { c.CacheTTL = -1 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := e.auth(bc.edit)
			r := withKey(key)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("malformed", func(b *testing.B) {
		a := e.auth(nil)
		r := withKey(key[:len(key)-1] + "!")
		b.ReportAllocs()
		for b.Loop() {
			var f *authn.Failure
			if _, err := a.Authenticate(r); !errors.As(err, &f) {
				b.Fatal(err)
			}
		}
	})
	b.Run("no-credential", func(b *testing.B) {
		a := e.auth(nil)
		r := request("/", "Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); !errors.Is(err, authn.ErrNoCredential) {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-hit-parallel", func(b *testing.B) {
		a := e.auth(nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := withKey(key)
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// FuzzAuthenticate feeds arbitrary header and query values: the
// authenticator must never panic, never accept what is not a stored key,
// and never call a presented value "no credential".
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f)
	c := e.consumer("fuzz", nil, nil)
	key, _ := e.key(c, nil)
	a := e.auth(func(c *authnapikey.Config) {
		c.AuthorizationSchemes = []string{"ApiKey", "Bearer"}
		c.QueryParam = "api_key"
	})
	f.Add("X-API-Key", key, "")
	f.Add("Authorization", "Bearer "+key, "")
	f.Add("Authorization", "ApiKey "+key, "api_key="+key)
	f.Add("X-API-Key", "gate_test_\x00\xff", "")
	f.Add("Authorization", "Bearer", "api_key=%zz&api_key")
	f.Fuzz(func(t *testing.T, name, value, query string) {
		r, err := http.NewRequest(http.MethodGet, "http://gw.test/", nil)
		if err != nil {
			t.Skip()
		}
		r.URL.RawQuery = query
		if name == "" {
			name = "X-API-Key"
		}
		r.Header[http.CanonicalHeaderKey(name)] = []string{value}
		id, err := a.Authenticate(r)
		switch {
		case err == nil:
			if id == nil || id.Subject != c.ID {
				t.Fatalf("accepted without the stored key: %+v", id)
			}
		case errors.Is(err, authn.ErrNoCredential):
			if http.CanonicalHeaderKey(name) == "X-Api-Key" {
				t.Fatalf("a value in the key header was called no credential")
			}
		default:
			var fl *authn.Failure
			var u *authn.UnavailableError
			if !errors.As(err, &fl) && !errors.As(err, &u) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}
