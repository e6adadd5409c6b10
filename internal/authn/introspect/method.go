package introspect

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/jwt"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// Options is routes[].authenticate.introspection.
type Options struct {
	// Provider names the identity provider that introspects the route's
	// tokens. An opaque token names no issuer, so exactly one provider
	// must be chosen: by default the one introspecting provider among the
	// route's providers (authenticate.providers, or all).
	Provider string `yaml:"provider" desc:"Identity provider (with an introspection block) that introspects this route's tokens. Default: the only introspecting provider among authenticate.providers (or all providers); required when there are several."`
	// ConfirmJWT introspects JWTs too (normally left to the jwt method):
	// with require_all and methods [jwt, introspection], a JWT must both
	// verify and be active at the provider.
	ConfirmJWT bool `yaml:"confirm_jwt" desc:"Introspect JWTs too, not only opaque tokens: with require_all: true and methods [jwt, introspection], a valid JWT must also be active at the provider (revocation seen within cache_ttl). Default false: JWTs are left to the jwt method."`
}

// SetDefaults: none beyond the zero values.
func (o *Options) SetDefaults() {}

// resourceKind is the resource kind of an Introspector.
const resourceKind = "introspection"

func init() {
	registry.Register(registry.Method{
		Name:           identity.MethodIntrospection,
		Challenge:      "Bearer",
		Options:        &Options{},
		Validate:       validate,
		Build:          build,
		ReadsProviders: true,
		Present: func(r *http.Request, value string, _ *config.Config) error {
			r.Header.Set("Authorization", "Bearer "+value)
			return nil
		},
	})
}

// providerFor chooses the route's introspecting provider (see Options).
func providerFor(cfg *config.Config, rc *config.Route, o *Options) (*config.IdentityProvider, string, error) {
	a := rc.Authenticate
	if o != nil && o.Provider != "" {
		for i := range cfg.IdentityProviders {
			p := &cfg.IdentityProviders[i]
			if p.Name != o.Provider {
				continue
			}
			if p.Introspection == nil {
				return nil, "introspection.provider", fmt.Errorf("identity provider %q has no introspection block", p.Name)
			}
			if len(a.Providers) > 0 && !slices.Contains(a.Providers, p.Name) {
				return nil, "introspection.provider", fmt.Errorf("%q is not among the route's providers", p.Name)
			}
			return p, "", nil
		}
		return nil, "introspection.provider", fmt.Errorf("unknown identity provider %q", o.Provider)
	}
	var found []*config.IdentityProvider
	for i := range cfg.IdentityProviders {
		p := &cfg.IdentityProviders[i]
		if p.Introspection != nil && (len(a.Providers) == 0 || slices.Contains(a.Providers, p.Name)) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], "", nil
	case 0:
		return nil, "methods", fmt.Errorf("introspection needs an identity provider with an introspection block among the route's providers")
	}
	names := make([]string, len(found))
	for i, p := range found {
		names[i] = p.Name
	}
	return nil, "introspection.provider", fmt.Errorf("several providers introspect (%s) and an opaque token names no issuer: choose one with introspection.provider", strings.Join(names, ", "))
}

func validate(m config.RouteMethod) config.Errors {
	o, _ := m.Options.(*Options)
	var errs config.Errors
	if _, key, err := providerFor(m.Config, m.Route, o); err != nil {
		errs = append(errs, m.Errorf(key, "%v", err))
	}
	a := m.Route.Authenticate
	withJWT := slices.Contains(a.Methods, string(identity.MethodJWT))
	confirm := o != nil && o.ConfirmJWT
	switch {
	case confirm && withJWT && !a.RequireAll:
		// In an OR chain the jwt method answers for a JWT alone (or
		// introspection does, before it): one of the two never runs.
		errs = append(errs, m.Errorf("introspection.confirm_jwt", "with jwt also listed, confirm_jwt needs require_all: true (every JWT must verify and be active)"))
	case !confirm && withJWT && a.RequireAll:
		// Both read the one bearer token: without confirm_jwt no token
		// can satisfy both (a JWT is not introspected, an opaque token
		// is not a JWT).
		errs = append(errs, m.Errorf("methods", "require_all with jwt and introspection needs introspection.confirm_jwt: true: both read the same bearer token, which is introspected only with confirm_jwt"))
	}
	return errs
}

func build(env registry.Env) (authn.Authenticator, error) {
	o, _ := env.Options.(*Options)
	pc, _, err := providerFor(env.Config, env.Route, o)
	if err != nil {
		return nil, fmt.Errorf("authn/introspect: route %q: %w", env.Route.Name, err)
	}
	if env.Validating {
		// Offline tools cannot ask the provider.
		return registry.NotEvaluated(identity.MethodIntrospection, "introspection asks the identity provider "+pc.Name), nil
	}
	open := func() (*Introspector, func(), error) {
		var po ProviderObserver
		if obs, ok := env.Observer.(Observer); ok {
			po = obs.Introspection(pc.Name)
		}
		deps := Deps{Now: env.Now, Observer: po}
		if pc.Introspection.ResponseFormat == "jwt" {
			// Signed answers are verified with the provider's keys, the
			// key set the jwt method uses.
			if v, err := env.Shared(jwt.SharedVerifier); err == nil {
				if verifier, ok := v.(*jwt.Verifier); ok {
					deps.Keys, deps.Algorithms, _ = verifier.Keys(pc.Name)
				}
			}
		}
		in, err := NewIntrospector(*pc, deps)
		if err != nil {
			return nil, nil, err
		}
		return in, in.Close, nil
	}
	var in *Introspector
	if env.Resources != nil {
		// The whole provider block is the key: the cache holds identities
		// mapped with its claim rules, asked with its client.
		in, _, err = resource.Get(env.Resources, resource.Key(resourceKind, pc), open)
	} else {
		in, _, err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("authn/introspect: provider %q: %w", pc.Name, err)
	}
	return NewAuthenticator(in, int(pc.MaxTokenSize), o != nil && o.ConfirmJWT), nil
}
