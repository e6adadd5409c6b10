package pipeline

import (
	"net/http"
	"strings"
)

// The response phase: what stages contribute to the response the client
// gets, whoever produces it. A stage records header edits on the Exchange
// while the request runs (SetResponseHeader, AddResponseHeader,
// RemoveResponseHeaders); the recorder applies them once, in order, just
// before the final status is written (recorder.WriteHeader):
//
//   - for a proxied response, after ReverseProxy copied the upstream's
//     headers (and removed hop-by-hop ones), so an edit replaces, extends
//     or removes what the upstream sent and no upstream header can undo it;
//   - for the gateway's own answers (every error respond writes: 401, 403,
//     413, 502, …) and for gateway-owned endpoints (Route.serve, e.g. CORS
//     preflights), so a browser also sees them on a refusal.
//
// Interim 1xx responses and a 101 switch get none. Edits made after the
// response started are lost, as the headers are. CORS (cors.go) is the
// first user; response cookies and rate-limit headers plug in the same way.

type editOp uint8

const (
	editSet    editOp = iota + 1 // replace every value
	editAdd                      // append a value
	editRemove                   // remove every header whose name starts with name
)

// responseEdit is one recorded change to the response headers.
type responseEdit struct {
	op          editOp
	name, value string
}

// SetResponseHeader makes the response carry name: value, replacing any
// value the upstream (or the gateway) set. name must be canonical
// (http.CanonicalHeaderKey).
func (x *Exchange) SetResponseHeader(name, value string) {
	x.response = append(x.response, responseEdit{editSet, name, value})
}

// AddResponseHeader adds a value to the response's name header, keeping
// the others (Vary, Set-Cookie). name must be canonical.
func (x *Exchange) AddResponseHeader(name, value string) {
	x.response = append(x.response, responseEdit{editAdd, name, value})
}

// RemoveResponseHeaders removes every response header whose canonical
// name starts with prefix (a whole name is its own prefix), typically
// what the upstream must not decide ("Access-Control-"). Edits recorded
// after it still apply.
func (x *Exchange) RemoveResponseHeaders(prefix string) {
	x.response = append(x.response, responseEdit{op: editRemove, name: prefix})
}

// applyResponse runs the response phase on h. x may be nil (a response
// written before any route matched, by Inspect or Refuse).
func (x *Exchange) applyResponse(h http.Header) {
	if x == nil {
		return
	}
	for _, e := range x.response {
		switch e.op {
		case editSet:
			h[e.name] = []string{e.value}
		case editAdd:
			h[e.name] = append(h[e.name], e.value)
		case editRemove:
			for k := range h {
				if strings.HasPrefix(k, e.name) {
					delete(h, k)
				}
			}
		}
	}
}
