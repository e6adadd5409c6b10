package config

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sync"
)

// Credential methods are not known to this package by hand: each method's
// package registers itself (through internal/authn/registry, which calls
// RegisterMethod), with the typed block it reads under
// routes[].authenticate.<method> and the checks of that block. The
// configuration decodes, validates and documents (JSON schema) what is
// registered, and never imports a method package.

// MethodSpec is what the configuration knows of one credential method.
type MethodSpec struct {
	// Name is the method's name in authenticate.methods ("jwt", "mtls").
	Name string
	// Options, if not nil, is a pointer to a zero value of the struct
	// decoded from routes[].authenticate.<Name>: yaml and desc tags as in
	// the rest of this package. A struct with setDefaults-style defaults
	// can implement interface{ SetDefaults() }.
	Options any
	// Validate, if not nil, checks a route that lists the method: the whole
	// configuration, the route and its decoded options block (nil when the
	// route gives none). It returns errors made with RouteMethod.Errorf.
	Validate func(RouteMethod) Errors
	// ReadsProviders: the method reads authenticate.providers (the
	// identity providers accepted on the route), so the key is valid on a
	// route that lists it. jwt always does.
	ReadsProviders bool
}

// RouteMethod is one route's use of a method, as its Validate hook sees it.
type RouteMethod struct {
	Config *Config
	File   *File
	// Route is the route; Index its position in routes.
	Route *Route
	Index int
	// Options is the decoded routes[].authenticate.<method> block (the
	// type of MethodSpec.Options), or nil when the route gives none.
	Options any
}

// Path is the key path of the route's authenticate section.
func (m RouteMethod) Path() string { return fmt.Sprintf("routes[%d].authenticate", m.Index) }

// Errorf makes an error located at key under the route's authenticate
// section ("providers[0]", "mtls.trusted_cas"), with file:line:column.
func (m RouteMethod) Errorf(key, format string, args ...any) *Error {
	path := m.Path()
	if key != "" {
		path += "." + key
	}
	return m.File.Errorf(path, format, args...)
}

// OptionsDefaulter is implemented by an options block with defaults: it
// runs on the new value before the block's keys are decoded.
type OptionsDefaulter interface{ SetDefaults() }

var (
	methodsMu sync.RWMutex
	methods   = map[string]*MethodSpec{}
	// builtinMethods read keys of Authenticate itself (providers,
	// api_key_query_param), so the configuration knows their names even
	// before their packages register: a configuration tool linked without
	// them still reads users' files the same way.
	builtinMethods = []string{"jwt", "api_key"}
	methodNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// reservedMethodKeys are Authenticate's own keys: no method may be
	// named like one, or its block would shadow it.
	reservedMethodKeys = func() []string {
		var out []string
		for _, f := range orderedFields(reflect.TypeFor[Authenticate]()) {
			out = append(out, f.name)
		}
		return out
	}()
)

// RegisterMethod makes a credential method known to the configuration. It
// is meant for package initialisation (through the authenticator
// registry) and panics on a programming error: a bad or reserved name, a
// method registered twice, an Options that is not a pointer to a struct.
func RegisterMethod(s MethodSpec) {
	if !methodNameRE.MatchString(s.Name) || slices.Contains(reservedMethodKeys, s.Name) || s.Name == "anonymous" {
		panic(fmt.Sprintf("config: method name %q: use lower-case letters, digits and '_', not an authenticate key", s.Name))
	}
	if s.Options != nil {
		t := reflect.TypeOf(s.Options)
		if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			panic(fmt.Sprintf("config: method %q: Options must be a pointer to a struct, not %s", s.Name, t))
		}
	}
	methodsMu.Lock()
	defer methodsMu.Unlock()
	if _, dup := methods[s.Name]; dup {
		panic(fmt.Sprintf("config: method %q registered twice", s.Name))
	}
	methods[s.Name] = &s
}

// MethodNames lists the known credential methods, sorted.
func MethodNames() []string {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	out := slices.Clone(builtinMethods)
	for n := range methods {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// KnownMethod reports whether name is a registered (or built-in) method.
func KnownMethod(name string) bool {
	if slices.Contains(builtinMethods, name) {
		return true
	}
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	_, ok := methods[name]
	return ok
}

// readsProviders reports whether method reads authenticate.providers.
func readsProviders(name string) bool {
	if name == "jwt" {
		return true
	}
	s := methodSpec(name)
	return s != nil && s.ReadsProviders
}

func methodSpec(name string) *MethodSpec {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	return methods[name]
}

// MethodOptionTypes maps every method with an options block to the
// block's struct type (documentation tests, the schema).
func MethodOptionTypes() map[string]reflect.Type {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	out := map[string]reflect.Type{}
	for n, s := range methods {
		if s.Options != nil {
			out[n] = reflect.TypeOf(s.Options).Elem()
		}
	}
	return out
}

// extensible is implemented by a section whose keys include registered
// blocks besides its own fields (Authenticate: one block per method).
type extensible interface {
	// extraType is the struct type decoded for key, if key is a block.
	extraType(key string) (reflect.Type, bool)
	// setExtra stores the decoded block (a pointer to extraType's struct).
	setExtra(key string, v any)
}

var extensibleType = reflect.TypeFor[extensible]()

func (a *Authenticate) extraType(key string) (reflect.Type, bool) {
	s := methodSpec(key)
	if s == nil || s.Options == nil {
		return nil, false
	}
	return reflect.TypeOf(s.Options).Elem(), true
}

func (a *Authenticate) setExtra(key string, v any) {
	if a.MethodOptions == nil {
		a.MethodOptions = map[string]any{}
	}
	a.MethodOptions[key] = v
}

// Options returns the decoded routes[].authenticate.<method> block (a
// pointer to the method's options struct), or nil when the route gives
// none.
func (a *Authenticate) Options(method string) any {
	if a == nil {
		return nil
	}
	return a.MethodOptions[method]
}

// extraSchema adds the registered blocks of an extensible section to its
// schema properties.
func extraSchema(t reflect.Type, props schemaObject) {
	if !reflect.PointerTo(t).Implements(extensibleType) {
		return
	}
	for name, ot := range MethodOptionTypes() {
		fs := schemaFor(ot)
		fs["description"] = "Options of the " + name + " method (see docs/extending.md)."
		props[name] = fs
	}
}

// validateMethods runs the registered checks of each method a route
// lists, and refuses a method block for a method the route does not list.
func validateMethods(c *Config, f *File, i int, r *Route) Errors {
	var errs Errors
	a := r.Authenticate
	for _, name := range slices.Sorted(maps.Keys(a.MethodOptions)) {
		if !slices.Contains(a.Methods, name) {
			errs = append(errs, f.Errorf(fmt.Sprintf("routes[%d].authenticate.%s", i, name), "applies to the %s method, which is not listed", name))
		}
	}
	for _, m := range a.Methods {
		s := methodSpec(m)
		if s == nil || s.Validate == nil {
			continue
		}
		errs = append(errs, s.Validate(RouteMethod{Config: c, File: f, Route: r, Index: i, Options: a.Options(m)})...)
	}
	return errs
}
