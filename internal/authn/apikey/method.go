package apikey

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// SharedRuntime is the Env.Shared kind under which the pipeline hands out
// the process's open API-key runtime (store, shared cache, last-used
// toucher), as a Runtime.
const SharedRuntime = "api_key.runtime"

// Runtime makes a route's API-key authenticator on the process's shared
// key runtime (implemented by the pipeline's *APIKeys).
type Runtime interface {
	RouteAuthenticator(route string, tags []string, queryParam string) (authn.Authenticator, error)
}

func init() {
	registry.Register(registry.Method{
		Name:      identity.MethodAPIKey,
		Challenge: "ApiKey",
		Build: func(env registry.Env) (authn.Authenticator, error) {
			rt, err := env.Shared(SharedRuntime)
			if errors.Is(err, registry.ErrNotShared) {
				if env.Validating {
					// Never dropped: a plan built to validate may still be
					// inspected, and must then say it cannot judge keys.
					return registry.NotEvaluated(identity.MethodAPIKey, "no API-key store was opened"), nil
				}
				return nil, errors.New("api_key needs the API-key store, which is not open")
			}
			if err != nil {
				return nil, err
			}
			keys, ok := rt.(Runtime)
			if !ok {
				return nil, errors.New("authn/apikey: the shared runtime cannot make authenticators")
			}
			rc := env.Route
			q := rc.Authenticate.APIKeyQueryParam
			if q != "" {
				env.Log.Warn("pipeline: route reads API keys from a query parameter; keys in URLs leak into browser history and proxy logs",
					"route", rc.Name, "param", q)
			}
			return keys.RouteAuthenticator(rc.Name, rc.Tags, q)
		},
		CredentialHeaders: func(c *config.Config) []string {
			if c.APIKeys.Header == "" {
				return nil
			}
			return []string{c.APIKeys.Header}
		},
		CredentialQuery: func(rc *config.Route) string { return rc.Authenticate.APIKeyQueryParam },
		Present: func(r *http.Request, value string, c *config.Config) error {
			r.Header.Set(c.APIKeys.Header, value)
			return nil
		},
	})
}
