// Package endpoint is the contract of gateway-owned endpoints: paths the
// gateway answers itself instead of proxying (a login callback, a logout,
// a metadata document, the gateway's own JWKS).
//
// A component, typically a credential method (an authn.Authenticator),
// contributes endpoints by implementing Provider. The pipeline mounts them
// when a plan is built, next to the routes of the configuration, and
// serves them through its own response writer: the access log, audit
// events, metrics, tracing and the response phase apply as to a proxied
// request, and an error the handler returns becomes the answer in the
// pipeline's one respond (problem+json, or a typed reply such as
// reply.RedirectError). The package depends on nothing of the gateway but
// identity, so a credential method can implement Provider without
// importing the pipeline.
package endpoint

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Handler produces one endpoint's response.
type Handler interface {
	// ServeEndpoint writes the response to w, or returns an error before
	// writing anything (the pipeline then answers it, as for a refused
	// request). id is the caller when the endpoint is authenticated, nil
	// on a public one. It must be safe for concurrent use and must not
	// keep w, r or id after it returns.
	ServeEndpoint(w http.ResponseWriter, r *http.Request, id *identity.Identity) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, id *identity.Identity) error

// ServeEndpoint calls f.
func (f HandlerFunc) ServeEndpoint(w http.ResponseWriter, r *http.Request, id *identity.Identity) error {
	return f(w, r, id)
}

// Endpoint is one path the gateway serves.
type Endpoint struct {
	// Name identifies the endpoint in logs and metrics, next to the name
	// of the route that brought its provider in ("app:callback"). A fixed
	// word per endpoint (never built from a request): it is a metric label.
	Name string
	// Path is the exact path served (no {params}, no prefix).
	Path string
	// Methods are the methods served; a request with another gets 405.
	// Required. GET implies HEAD.
	Methods []string
	// Public: served without authentication (a login callback, a
	// metadata document). Otherwise the route's authentication runs
	// first, and a request it refuses never reaches the handler.
	Public bool
	// Handler answers the requests.
	Handler Handler
}

// Provider is implemented by a component that serves endpoints of its
// own. The pipeline asks every authenticator of every route; a path
// contributed by two providers, or also matched by a configured route, is
// a configuration error at build. The same provider (the same value, as
// == compares it) may bring the same endpoint in through several routes:
// it is mounted once, with the first route's hosts and authentication.
type Provider interface {
	Endpoints() []Endpoint
}
