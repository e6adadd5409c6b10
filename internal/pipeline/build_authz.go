package pipeline

import (
	"errors"
	"fmt"
	"sort"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/config"
)

// compilePolicy compiles a configured policy; CEL expressions are parsed
// and type-checked here, once. Errors are located at path (+ the field).
func compilePolicy(name string, pc config.Policy, path string, file *config.File) (*authz.Policy, error) {
	pol, err := authz.Compile(name, policySpec(pc))
	if err == nil {
		return pol, nil
	}
	var errs config.Errors
	for _, e := range unjoin(err) {
		var ce *authz.CompileError
		if errors.As(e, &ce) {
			errs = append(errs, file.Errorf(path+"."+ce.Field, "%s", ce.Msg))
		} else {
			errs = append(errs, file.Errorf(path, "%v", e))
		}
	}
	return nil, errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// compileNamedPolicies compiles the top-level policies, in name order so
// error output is stable.
func compileNamedPolicies(cfg *config.Config, file *config.File) (map[string]*authz.Policy, error) {
	names := make([]string, 0, len(cfg.Policies))
	for n := range cfg.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]*authz.Policy, len(names))
	var errs config.Errors
	for _, n := range names {
		pol, err := compilePolicy(n, cfg.Policies[n], "policies."+n, file)
		if err != nil {
			es, _ := config.AsErrors(err)
			errs = append(errs, es...)
			continue
		}
		out[n] = pol
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// routePolicy returns the compiled policy of route i, or nil.
func routePolicy(i int, rc config.Route, named map[string]*authz.Policy, file *config.File) (*authz.Policy, error) {
	switch {
	case rc.Policy != "":
		pol, ok := named[rc.Policy]
		if !ok {
			return nil, file.Errorf(fmt.Sprintf("routes[%d].policy", i), "unknown policy %q", rc.Policy)
		}
		return pol, nil
	case rc.Authorize != nil:
		return compilePolicy("route:"+rc.Name, *rc.Authorize, fmt.Sprintf("routes[%d].authorize", i), file)
	}
	return nil, nil
}

func policySpec(pc config.Policy) authz.Spec {
	s := authz.Spec{
		Scopes:         authz.ScopeRule{AllOf: pc.Scopes.AllOf, AnyOf: pc.Scopes.AnyOf},
		Roles:          authz.ListRule{AllOf: pc.Roles.AllOf, AnyOf: pc.Roles.AnyOf},
		Groups:         authz.GroupRule{AllOf: pc.Groups.AllOf, AnyOf: pc.Groups.AnyOf, Deny: pc.Groups.Deny},
		Claims:         pc.Claims,
		Expression:     pc.Expression,
		AllowAnonymous: pc.AllowAnonymous,
	}
	for _, m := range pc.Methods {
		s.Methods = append(s.Methods, authz.MethodRule{
			Methods:    m.Methods,
			Scopes:     authz.ScopeRule{AllOf: m.Scopes.AllOf, AnyOf: m.Scopes.AnyOf},
			Roles:      authz.ListRule{AllOf: m.Roles.AllOf, AnyOf: m.Roles.AnyOf},
			Groups:     authz.GroupRule{AllOf: m.Groups.AllOf, AnyOf: m.Groups.AnyOf, Deny: m.Groups.Deny},
			Expression: m.Expression,
		})
	}
	return s
}
