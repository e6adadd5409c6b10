package config

// Policy is an authorization policy: what an authenticated caller needs
// on a route. Every rule given must hold; the first that fails decides the
// 403. See docs/policies.md.
type Policy struct {
	// Scopes the credential must carry.
	Scopes ScopeRule `yaml:"scopes" desc:"Required scopes: all_of and/or any_of."`
	// Roles the caller must have.
	Roles ListRule `yaml:"roles" desc:"Required roles: all_of and/or any_of."`
	// Groups the caller must (or must not) be in.
	Groups GroupRule `yaml:"groups" desc:"Required groups (all_of, any_of) and denied groups (deny, checked first)."`
	// Claims: each identity claim must equal one of the values.
	Claims map[string][]string `yaml:"claims" desc:"Identity claims (claims.extra names) that must equal one of the listed values."`
	// Methods add rules for some HTTP methods (first match applies).
	Methods []MethodRule `yaml:"methods" desc:"Extra rules per HTTP method, e.g. GET for readers, POST/DELETE for writers; the first entry listing the method applies."`
	// Expression is a CEL expression over identity, request and now that
	// must be true. Compiled and type-checked at load.
	Expression string `yaml:"expression" desc:"CEL expression over identity, request and now; must be true. Compiled and type-checked at load."`
	// AllowAnonymous lets the anonymous identity through this policy. Default false.
	AllowAnonymous bool `yaml:"allow_anonymous" desc:"Let anonymous callers (authenticate.allow_anonymous) pass this policy. Default false."`
}

// ScopeRule lists scopes: all of AllOf, and at least one of AnyOf.
type ScopeRule struct {
	AllOf []string `yaml:"all_of" desc:"Every one of these is required."`
	AnyOf []string `yaml:"any_of" desc:"At least one of these is required."`
}

// ListRule lists values: all of AllOf, and at least one of AnyOf.
type ListRule struct {
	AllOf []string `yaml:"all_of" desc:"Every one of these is required."`
	AnyOf []string `yaml:"any_of" desc:"At least one of these is required."`
}

// GroupRule adds a deny list to ListRule.
type GroupRule struct {
	AllOf []string `yaml:"all_of" desc:"Every one of these is required."`
	AnyOf []string `yaml:"any_of" desc:"At least one of these is required."`
	Deny  []string `yaml:"deny" desc:"Membership in any of these denies, whatever else holds."`
}

// MethodRule applies extra rules to some HTTP methods.
type MethodRule struct {
	Methods    []string  `yaml:"methods" desc:"HTTP methods this rule applies to. Required."`
	Scopes     ScopeRule `yaml:"scopes" desc:"Required scopes for these methods."`
	Roles      ListRule  `yaml:"roles" desc:"Required roles for these methods."`
	Groups     GroupRule `yaml:"groups" desc:"Required or denied groups for these methods."`
	Expression string    `yaml:"expression" desc:"CEL expression that must be true for these methods."`
}
