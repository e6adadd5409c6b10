package authn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// noKeys is a provider's key source that has none: the tokens below never
// get as far as a key lookup.
type noKeys struct{}

func (noKeys) Lookup(context.Context, string) ([]jose.JSONWebKey, error) { return nil, nil }

// introspection stands in for the token introspection method to come: it
// claims opaque bearer tokens of its issuer's form (ory_at_…) and leaves
// every other credential to the next method.
type introspection struct{}

func (introspection) Method() identity.Method { return "introspection" }

func (introspection) Authenticate(r *http.Request) (*identity.Identity, error) {
	scheme, token, _ := authn.SplitAuthorization(r.Header.Get("Authorization"))
	if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(token, "ory_at_") {
		return nil, authn.ErrNoCredential
	}
	return &identity.Identity{Subject: "introspected", Method: "introspection"}, nil
}

// TestChainOpaqueBearer drives the real JWT and API-key authenticators
// through chains with an opaque bearer token: the JWT method declines it
// as not its own, a later method may claim it, and if none does the answer
// is 401 token_unsupported, never "missing" and never anonymous.
func TestChainOpaqueBearer(t *testing.T) {
	v, err := jwt.NewVerifier([]jwt.Provider{{
		Name: "idp", Issuer: "https://idp.example", Audiences: []string{"api"}, Keys: noKeys{},
		Algorithms: []jose.SignatureAlgorithm{jose.RS256},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwtA, err := jwt.NewAuthenticator(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	format, err := apikey.NewFormat("gate_test_")
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := apikey.NewHasher([]byte("0123456789abcdef0123456789abcdef-test-pepper"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	consumer := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "billing", CreatedAt: time.Now()}
	if err := st.CreateConsumer(ctx, consumer); err != nil {
		t.Fatal(err)
	}
	key, err := format.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(ctx, &apikey.Key{ID: apikey.NewKeyID(), ConsumerID: consumer.ID, Hash: hasher.Hash(key),
		Hint: apikey.Hint(key), Status: apikey.StatusActive, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	keyA, err := authnapikey.New(authnapikey.Config{Store: st, Format: format, Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	// An API-key method that shares the Bearer scheme: only values of its
	// key format are its own.
	keyBearer, err := authnapikey.New(authnapikey.Config{Store: st, Format: format, Hasher: hasher, AuthorizationSchemes: []string{"Bearer"}})
	if err != nil {
		t.Fatal(err)
	}

	const (
		opaque  = "Bearer ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ"
		github  = "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a"
		notJWS  = "Bearer abc.d+f.g/h"
		garbage = "Bearer !!!"
	)
	chain := func(anon bool, as ...authn.Authenticator) authn.Chain {
		return authn.Chain{Authenticators: as, AllowAnonymous: anon}
	}
	for _, tc := range []struct {
		name        string
		chain       authn.Chain
		auth        string
		wantSubject string       // an identity
		wantReason  authn.Reason // a *Failure
	}{
		{"[jwt] + opaque", chain(false, jwtA), opaque, "", authn.ReasonUnsupported},
		{"[jwt] + three parts not base64url", chain(false, jwtA), notJWS, "", authn.ReasonUnsupported},
		{"[jwt] allow_anonymous + opaque is not anonymous", chain(true, jwtA), opaque, "", authn.ReasonUnsupported},
		{"[jwt] allow_anonymous + no credential is anonymous", chain(true, jwtA), "", "anonymous", ""},
		{"[jwt] allow_anonymous + garbage bearer", chain(true, jwtA), garbage, "", authn.ReasonMalformed},
		{"[jwt, api_key] + opaque non-key bearer", chain(false, jwtA, keyA), github, "", authn.ReasonUnsupported},
		{"[jwt, api_key] allow_anonymous + opaque non-key bearer", chain(true, jwtA, keyA), github, "", authn.ReasonUnsupported},
		{"[jwt, api_key on Bearer] + opaque non-key bearer", chain(true, jwtA, keyBearer), github, "", authn.ReasonUnsupported},
		{"[jwt, api_key on Bearer] + an API key as bearer", chain(false, jwtA, keyBearer), "Bearer " + key, consumer.ID, ""},
		{"[jwt, api_key] + API key scheme", chain(false, jwtA, keyA), "ApiKey " + key, consumer.ID, ""},
		{"[jwt, introspection] + opaque is claimed", chain(false, jwtA, introspection{}), opaque, "introspected", ""},
		{"[introspection, jwt] + opaque is claimed", chain(false, introspection{}, jwtA), opaque, "introspected", ""},
		{"[jwt, introspection] + opaque of another issuer", chain(true, jwtA, introspection{}), github, "", authn.ReasonUnsupported},
		{"and [introspection, jwt] + opaque: jwt's own failure", authn.Chain{Authenticators: []authn.Authenticator{introspection{}, jwtA}, RequireAll: true}, opaque, "", authn.ReasonUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			id, err := tc.chain.Authenticate(r)
			if errors.Is(err, authn.ErrNoCredential) {
				t.Fatalf("the chain returned a not-responsible error: %v", err)
			}
			var f *authn.Failure
			switch {
			case tc.wantReason != "":
				if id != nil || !errors.As(err, &f) || f.Reason != tc.wantReason {
					t.Fatalf("got %v, %v; want failure %s", id, err, tc.wantReason)
				}
				if tc.wantReason == authn.ReasonUnsupported && (f.Method != identity.MethodJWT || f.Description == "") {
					t.Fatalf("failure %+v; want the JWT method's, described", f)
				}
			case tc.wantSubject == "anonymous":
				if err != nil || !id.IsAnonymous() {
					t.Fatalf("got %v, %v; want anonymous", id, err)
				}
			default:
				if err != nil || id == nil || id.Subject != tc.wantSubject {
					t.Fatalf("got %+v, %v; want subject %s", id, err, tc.wantSubject)
				}
			}
		})
	}
}
