package jwt_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/authntest"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestConformance runs the shared authenticator suite against the JWT
// authenticator wired to a real provider through a real key set.
func TestConformance(t *testing.T) {
	idp := testidp.Start(t)
	set, err := keyset.New(keyset.Config{Name: "idp", Issuer: idp.Issuer, Discovery: true})
	if err != nil {
		t.Fatal(err)
	}
	set.Start()
	t.Cleanup(set.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := set.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := jwt.NewVerifier([]jwt.Provider{{
		Name: "idp", Issuer: idp.Issuer, Audiences: []string{idp.Audience}, Keys: set,
		Algorithms: []jose.SignatureAlgorithm{jose.RS256},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := jwt.NewAuthenticator(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(auth string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			return r
		}
	}
	good := idp.ClientCredentialsToken(t)
	expired := idp.Mint(t, map[string]any{"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-30 * time.Minute).Unix()})
	authntest.Run(t, a, authntest.Cases{
		None:    req("Basic dXNlcjpwYXNz"),
		Good:    req("Bearer " + good),
		Bad:     []func() *http.Request{req("Bearer " + expired), req("Bearer not a token"), req("Bearer " + good + "x")},
		NotMine: []func() *http.Request{req("Bearer not-a-token"), req("Bearer ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ")},
	})
}
