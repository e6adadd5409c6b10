package pipeline

import (
	"errors"

	"github.com/gatehouse/gatehouse/internal/authn"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	_ "github.com/gatehouse/gatehouse/internal/authn/methods" // the credential methods compiled in
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// The seam between the pipeline and the credential methods: methods are
// found in the registry (internal/authn/registry) and built with a
// registry.Env. The two resources the pipeline builds for all routes at
// once, the JWT verifier and the API-key runtime, reach their methods
// through Env.Shared, so how they are built and shared across reloads can
// change without touching a method.

var _ authnapikey.Runtime = (*APIKeys)(nil)

// RouteAuthenticator builds a route's API-key authenticator on the shared
// runtime (authn/apikey.Runtime).
func (k *APIKeys) RouteAuthenticator(route string, tags []string, queryParam string) (authn.Authenticator, error) {
	return k.authenticator(route, tags, queryParam)
}

// sharedResources answers registry.Env.Shared for one plan.
func sharedResources(verifier *jwt.Verifier, keys *APIKeys) func(kind string) (any, error) {
	return func(kind string) (any, error) {
		switch kind {
		case jwt.SharedVerifier:
			if verifier != nil {
				return verifier, nil
			}
		case authnapikey.SharedRuntime:
			if keys != nil {
				return keys, nil
			}
		case registry.SharedKeyStore:
			// The store itself, not the runtime's view of it (keys.Store
			// layers the static keys over it).
			if keys != nil && keys.store != nil && keys.store.Store != nil {
				return keys.store.Store, nil
			}
		}
		return nil, registry.ErrNotShared
	}
}

// notEvaluatedCause finds why a method could not be evaluated offline, if
// that is what err says.
func notEvaluatedCause(err error) (method, why string, ok bool) {
	if ne, found := errors.AsType[*NotEvaluatedError](err); found {
		return ne.Method, ne.Why, true
	}
	if ne, found := errors.AsType[*registry.NotEvaluatedError](err); found {
		return ne.Method, ne.Why, true
	}
	return "", "", false
}

// credentialQueries are the query parameters the route's methods read a
// credential from: never written to the access log.
func credentialQueries(rc *config.Route) []string {
	if rc.Authenticate == nil {
		return nil
	}
	var out []string
	for _, m := range rc.Authenticate.Methods {
		if method, ok := registry.Lookup(identity.Method(m)); ok && method.CredentialQuery != nil {
			if q := method.CredentialQuery(rc); q != "" {
				out = append(out, q)
			}
		}
	}
	return out
}
