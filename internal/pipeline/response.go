package pipeline

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/reply"
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
//
// Cookies (AddResponseCookie) are edits too: each one is its own
// Set-Cookie field, added beside the upstream's (never merged, never
// replacing one).
//
// A stage that must see the answer before it decides (refresh a session
// cookie only on a 2xx, add a header only to errors) implements
// ResponseStage: its Respond runs once per request, when the response
// head is known, whoever produced it: the upstream (from the recorder,
// where ReverseProxy writes the head after copying the upstream's
// headers), respond (errors), or a gateway-owned endpoint or preflight.
// It runs for the stages that ran (whose Process was called, whatever it
// returned), in their order, after the edits recorded so far are applied;
// edits it records are applied right after it.

// ResponseStage is a Stage that also takes part in the response phase.
type ResponseStage interface {
	Stage
	// Respond sees the response's status and headers (the upstream's or
	// the gateway's, with the edits recorded so far applied) just before
	// they are sent. It must not write the response; it changes it with
	// x's response methods (SetResponseHeader, AddResponseCookie, …), and
	// should not edit h directly. Called at most once per request, on
	// the request's goroutine or the proxy's, never concurrently.
	Respond(x *Exchange, status int, h http.Header)
}

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

// AddResponseCookie adds a Set-Cookie field to the response, beside any
// the upstream sent. A cookie that net/http could not send as it is (a
// name that is not a token, a value with a ';' or a control character) is
// refused with an error and not added.
func (x *Exchange) AddResponseCookie(c *http.Cookie) error {
	if err := reply.CheckCookie(c); err != nil {
		return err
	}
	x.response = append(x.response, responseEdit{editAdd, "Set-Cookie", c.String()})
	return nil
}

// applyResponse runs the response phase on h, for a response with the
// given final status. x may be nil (a response written before any route
// matched, by Inspect or Refuse).
func (x *Exchange) applyResponse(status int, h http.Header) {
	if x == nil {
		return
	}
	x.applyEdits(h)
	if x.Route == nil || len(x.Route.responders) == 0 {
		return
	}
	for _, rs := range x.Route.responders {
		if rs.at >= x.ran {
			break
		}
		rs.s.Respond(x, status, h)
		x.applyEdits(h)
	}
}

// applyEdits applies the edits not applied yet.
func (x *Exchange) applyEdits(h http.Header) {
	edits := x.response[x.applied:]
	x.applied = len(x.response)
	for _, e := range edits {
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

// responder is a stage of a route that implements ResponseStage, and its
// index in the route's stages.
type responder struct {
	at int
	s  ResponseStage
}

// responders lists a route's response stages in order (a traced stage is
// asked for the stage it wraps).
func responders(stages []Stage) []responder {
	var out []responder
	for i, s := range stages {
		if t, ok := s.(*tracedStage); ok {
			s = t.Stage
		}
		if rs, ok := s.(ResponseStage); ok {
			out = append(out, responder{i, rs})
		}
	}
	return out
}
