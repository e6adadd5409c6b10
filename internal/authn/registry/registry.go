// Package registry is where credential methods plug in. Each method (jwt,
// api_key, mtls, …) is one package that calls Register once, from an init
// function, with a Method descriptor: its name, its WWW-Authenticate
// scheme, its typed options block under routes[].authenticate.<name>, the
// checks of that block, the factory of its Authenticator, the credential
// headers it reads, and how tools place a credential on a synthetic
// request. The configuration, the pipeline, `gatehouse explain` and
// `gatehouse policy test` find methods here; none of them names one.
//
// The list of methods compiled into the gateway is the package
// internal/authn/methods: one blank import per method.
//
// See docs/extending.md.
package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// Method describes one credential method.
type Method struct {
	// Name is the method's name in authenticate.methods, identity
	// headers, audit events and policies. Required.
	Name identity.Method
	// Challenge is the WWW-Authenticate scheme a 401 names for the method
	// ("Bearer", "ApiKey", "DPoP", "Basic"). A Bearer challenge carries
	// RFC 6750's error="invalid_token" for a bad credential. Required.
	Challenge string
	// ChallengeParams, if not empty, are auth-params written after the
	// realm in every challenge of the method (basic: `charset="UTF-8"`,
	// RFC 7617 §2.1), formatted and quoted.
	ChallengeParams string
	// Options, if not nil, is a pointer to a zero value of the struct the
	// method reads from routes[].authenticate.<Name> (yaml and desc tags,
	// as in internal/config; every key must be documented in
	// docs/configuration.md). Decoded strictly, with file:line:column
	// errors; an options block of a method the route does not list is an
	// error.
	Options any
	// Validate, if not nil, checks a route that lists the method: the whole
	// configuration, the route and its decoded options (nil when the route
	// gives none). Errors are made with RouteMethod.Errorf, so they carry
	// their key path and position.
	Validate func(config.RouteMethod) config.Errors
	// Build makes the route's authenticator, once per route and plan.
	// Required.
	Build func(Env) (authn.Authenticator, error)
	// CredentialHeaders, if not nil, names the request headers that carry
	// the method's credential. They are removed before the upstream on
	// every route, public ones included (unless the route forwards
	// Authorization), so a credential never reaches a backend that did not
	// ask for it.
	CredentialHeaders func(*config.Config) []string
	// CredentialQuery, if not nil, names a query parameter a route reads
	// the credential from (discouraged): removed before the upstream on the
	// routes that list the method, and never written to the access log.
	CredentialQuery func(*config.Route) string
	// Present, if not nil, places a credential given as text on a
	// synthetic request, for `gatehouse explain --credential NAME=VALUE`
	// and policy test cases. Methods whose credential is not text (a client
	// certificate) leave it nil.
	Present func(r *http.Request, value string, cfg *config.Config) error
	// UsesKeyStore, if not nil, reports whether the method keeps records
	// of route r in the API-key store (api_keys.store): the pipeline then
	// opens the store even when no route accepts API keys, and hands it
	// out as Env.Shared(SharedKeyStore).
	UsesKeyStore func(r *config.Route) bool
	// ReadsProviders: the method reads authenticate.providers (the identity
	// providers accepted on the route), so the configuration accepts the
	// key on a route that lists it.
	ReadsProviders bool
}

// Env is what a method's Build gets: the route it authenticates and the
// plan's process resources.
type Env struct {
	// Config is the whole configuration, Route the route being built
	// (never nil), Options the route's decoded options block (nil when the
	// route gives none).
	Config  *config.Config
	Route   *config.Route
	Options any
	// Log is the operational logger (never nil).
	Log *slog.Logger
	// Now is the clock for validity checks (never nil).
	Now func() time.Time
	// Validating: the plan is built only to check a configuration or to
	// explain offline (gatehouse validate, explain, policy test); a method
	// that needs a process resource it cannot open then returns an
	// authenticator that refuses with NotEvaluated instead of failing.
	Validating bool
	// Resources is the plan's hold on the process's shared resources
	// (internal/resource): a method opens what outlives one plan (a store,
	// a cache, a key set) through it, keyed by its configuration, so a
	// reload reuses it. nil in tools that build throwaway plans.
	Resources *resource.Scope
	// Origin returns the scheme ("http" or "https") and host the client
	// addressed a request to: the connection's (TLS or not) and Host, or,
	// when the TCP peer is a trusted proxy (forwarding.trusted_proxies),
	// what its X-Forwarded-Proto and X-Forwarded-Host say. For checks that
	// compare the URL the client signed (a DPoP proof's htu). nil in tools
	// that build throwaway plans: use the connection's view.
	Origin func(r *http.Request) (scheme, host string)
	// Shared answers resources the pipeline builds for several routes at
	// once ("jwt.verifier", "api_key.runtime"); ErrNotShared for a kind
	// it does not have. Methods of their own use Resources instead.
	Shared func(kind string) (any, error)
	// Observer is the process's metrics observer (the pipeline's Observer;
	// nil: none). It outlives plans. A method that reports metrics of its
	// own checks it for the small interface it defines (authn/introspect:
	// introspect.Observer), so the pipeline never names a method's
	// metrics.
	Observer any
}

// SharedKeyStore is the Env.Shared kind of the open API-key store (an
// apikey.Store; also an apikey.UserStore for the embedded and PostgreSQL
// stores), for methods with UsesKeyStore.
const SharedKeyStore = "api_key.store"

// ErrNotShared is Env.Shared's answer for a kind the pipeline does not
// provide (or not in this plan: the API-key runtime is not open).
var ErrNotShared = errors.New("registry: no such shared resource")

// NotEvaluated is an authenticator standing in for a method that cannot be
// evaluated in a Validating plan: it refuses every request with an
// *authn.UnavailableError of reason "not_evaluated" whose cause is a
// *NotEvaluatedError, so that tools report it instead of dropping the
// method.
func NotEvaluated(m identity.Method, why string) authn.Authenticator {
	return notEvaluated{method: m, why: why}
}

type notEvaluated struct {
	method identity.Method
	why    string
}

func (n notEvaluated) Method() identity.Method { return n.method }

func (n notEvaluated) Authenticate(*http.Request) (*identity.Identity, error) {
	return nil, &authn.UnavailableError{Method: n.method, Reason: "not_evaluated",
		Err: &NotEvaluatedError{Method: string(n.method), Why: n.why}}
}

// NotEvaluatedError says a credential method could not be evaluated
// offline, and why.
type NotEvaluatedError struct {
	Method string
	Why    string
}

func (e *NotEvaluatedError) Error() string {
	return "pipeline: " + e.Method + " cannot be evaluated offline: " + e.Why
}

var (
	mu      sync.RWMutex
	methods = map[identity.Method]*Method{}
)

// Register adds a method. Call it from the method package's init; it
// panics on a programming error (a missing name, challenge or Build, a
// name registered twice, an options block that is not a pointer to a
// struct), which every test run of the gateway then shows.
func Register(m Method) {
	if m.Name == "" || m.Challenge == "" || m.Build == nil {
		panic(fmt.Sprintf("registry: method %q needs Name, Challenge and Build", m.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := methods[m.Name]; dup {
		panic(fmt.Sprintf("registry: method %q registered twice", m.Name))
	}
	config.RegisterMethod(config.MethodSpec{Name: string(m.Name), Options: m.Options, Validate: m.Validate, ReadsProviders: m.ReadsProviders})
	methods[m.Name] = &m
}

// Lookup returns the method registered under name.
func Lookup(name identity.Method) (*Method, bool) {
	mu.RLock()
	defer mu.RUnlock()
	m, ok := methods[name]
	return m, ok
}

// Names lists the registered methods, sorted.
func Names() []identity.Method {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]identity.Method, 0, len(methods))
	for n := range methods {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Challenge is the WWW-Authenticate scheme of a registered method;
// "Bearer" for an unknown one.
func Challenge(name identity.Method) string {
	if m, ok := Lookup(name); ok {
		return m.Challenge
	}
	return "Bearer"
}
