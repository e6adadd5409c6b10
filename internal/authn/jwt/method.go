package jwt

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// SharedVerifier is the Env.Shared kind under which the pipeline hands out
// the *Verifier it compiles once per plan for every identity provider.
const SharedVerifier = "jwt.verifier"

func init() {
	registry.Register(registry.Method{
		Name:      identity.MethodJWT,
		Challenge: "Bearer",
		// The route's providers are authenticate's own key, kept for
		// existing files; config checks them. The block
		// routes[].authenticate.jwt holds the token binding overrides.
		Options: &Options{},
		// The DPoP proof is a credential too: the upstream never sees it.
		CredentialHeaders: func(*config.Config) []string { return []string{dpop.Scheme} },
		Build: func(env registry.Env) (authn.Authenticator, error) {
			v, err := env.Shared(SharedVerifier)
			if errors.Is(err, registry.ErrNotShared) {
				return nil, errors.New("authn/jwt: no identity provider is configured")
			}
			if err != nil {
				return nil, err
			}
			verifier, ok := v.(*Verifier)
			if !ok || verifier == nil {
				return nil, fmt.Errorf("authn/jwt: shared %s is %T", SharedVerifier, v)
			}
			opts := AuthenticatorOptions{Providers: env.Route.Authenticate.Providers, Origin: env.Origin}
			if o, ok := env.Options.(*Options); ok && o != nil {
				switch o.DPoP {
				case "allowed":
					opts.DPoP = dpop.ModeAllowed
				case "required":
					opts.DPoP = dpop.ModeRequired
				}
				opts.RequireCertificateBound = o.CertificateBound == "required"
			}
			return NewAuthenticatorWithOptions(verifier, opts)
		},
		Present: func(r *http.Request, value string, _ *config.Config) error {
			r.Header.Set("Authorization", "Bearer "+value)
			return nil
		},
	})
}
