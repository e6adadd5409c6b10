// Package problem writes RFC 9457 problem details (application/problem+json),
// the only body format of responses Gatehouse produces itself.
//
// Each Type has a stable URN and title that clients may switch on; the
// catalogue is documented in docs/errors.md. Details are written for an
// honest client and never carry internal error text.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of every problem body.
const ContentType = "application/problem+json"

// Type is one kind of problem: a stable identifier, a fixed title and status.
type Type struct {
	Slug   string // stable; the type URI is "urn:gatehouse:problem:" + Slug
	Title  string // fixed per type, so clients can show it
	Status int
}

// URI returns the problem type URI.
func (t Type) URI() string { return "urn:gatehouse:problem:" + t.Slug }

// The catalogue. Slugs never change once released; new ones are added.
var (
	BadRequest       = Type{"bad-request", "Bad request", http.StatusBadRequest}
	RouteNotFound    = Type{"route-not-found", "No route matches the request", http.StatusNotFound}
	Unauthorized     = Type{"unauthorized", "Authentication required or failed", http.StatusUnauthorized}
	Forbidden        = Type{"forbidden", "Not allowed", http.StatusForbidden}
	MethodNotAllowed = Type{"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed}
	BodyTooLarge     = Type{"request-body-too-large", "Request body too large", http.StatusRequestEntityTooLarge}
	HeaderTooLarge   = Type{"request-header-too-large", "Request header fields too large", http.StatusRequestHeaderFieldsTooLarge}
	Internal         = Type{"internal-error", "Internal error", http.StatusInternalServerError}
	UpstreamError    = Type{"upstream-unavailable", "Upstream unavailable", http.StatusBadGateway}
	Unavailable      = Type{"service-unavailable", "Service unavailable", http.StatusServiceUnavailable}
	UpstreamTimeout  = Type{"upstream-timeout", "Upstream timed out", http.StatusGatewayTimeout}
	TooManyRequests  = Type{"too-many-requests", "Too many requests", http.StatusTooManyRequests}
	// QuotaExceeded: the caller's day or month quota is used up
	// (docs/rate-limits.md#quotas).
	QuotaExceeded = Type{"quota-exceeded", "Quota exceeded", http.StatusTooManyRequests}
	// ConcurrencyLimit: the route's max_in_flight requests are already
	// at the upstream (docs/rate-limits.md).
	ConcurrencyLimit = Type{"concurrency-limit", "Too many requests in flight", http.StatusServiceUnavailable}

	// Request hygiene (docs/request-hygiene.md): one type per class of
	// refused request.
	PathControlCharacter    = Type{"path-control-character", "Control character in the path", http.StatusBadRequest}
	PathBackslash           = Type{"path-backslash", "Backslash in the path", http.StatusBadRequest}
	PathFragment            = Type{"path-fragment", "Fragment in the request path", http.StatusBadRequest}
	PathEncodedSeparator    = Type{"path-encoded-separator", "Encoded path separator", http.StatusBadRequest}
	PathParameter           = Type{"path-parameter", "Path parameter not accepted", http.StatusBadRequest}
	PathDoubleEncoding      = Type{"path-double-encoding", "Double-encoded path", http.StatusBadRequest}
	PathInvalidUTF8         = Type{"path-invalid-utf8", "Path is not valid UTF-8", http.StatusBadRequest}
	PathRepeatedSlash       = Type{"path-repeated-slash", "Repeated slashes in the path", http.StatusBadRequest}
	PathAmbiguous           = Type{"path-ambiguous", "Path is an alias of another route's path", http.StatusBadRequest}
	InvalidHost             = Type{"invalid-host", "Invalid Host header", http.StatusBadRequest}
	UnderscoreHeader        = Type{"underscore-header", "Underscore in a header name", http.StatusBadRequest}
	AmbiguousParameter      = Type{"ambiguous-parameter", "Ambiguous header or query parameter", http.StatusBadRequest}
	AmbiguousMethodOverride = Type{"ambiguous-method-override", "Ambiguous method override", http.StatusBadRequest}
	MethodNotImplemented    = Type{"method-not-implemented", "Method not implemented", http.StatusNotImplemented}
)

// Details is the RFC 9457 body, with the request id as an extension member
// so a client can quote it to support.
type Details struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors lists invalid fields of a bad request (an extension member).
	Errors any `json:"errors,omitempty"`
}

// Write sends a problem response. detail must be safe to show to anyone.
func Write(w http.ResponseWriter, t Type, detail, requestID string) {
	WriteFields(w, t, detail, requestID, nil)
}

// WriteFields sends a problem response with an "errors" member naming the
// invalid fields (nil: none). Everything in it must be safe to show.
func WriteFields(w http.ResponseWriter, t Type, detail, requestID string, fields any) {
	body, err := json.Marshal(Details{
		Type:      t.URI(),
		Title:     t.Title,
		Status:    t.Status,
		Detail:    detail,
		RequestID: requestID,
		Errors:    fields,
	})
	if err != nil {
		// Marshalling a struct of strings cannot fail; keep a safe answer anyway.
		body = []byte(`{"type":"urn:gatehouse:problem:internal-error","title":"Internal error","status":500}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(t.Status)
	_, _ = w.Write(body)
}
