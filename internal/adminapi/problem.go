package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
)

// problemContentType is the media type of every error body (RFC 9457).
const problemContentType = "application/problem+json"

// problemType is one kind of admin API error. Slugs are stable; the type
// URI is "urn:gatehouse:problem:" + slug, as in package problem.
type problemType struct {
	slug   string
	title  string
	status int
}

// The admin API's problem catalogue.
var (
	probInvalid      = problemType{"invalid-request", "Invalid request", http.StatusBadRequest}
	probUnauthorized = problemType{"admin-unauthorized", "Admin token missing or invalid", http.StatusUnauthorized}
	probNotFound     = problemType{"not-found", "Not found", http.StatusNotFound}
	probMethod       = problemType{"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed}
	probConflict     = problemType{"conflict", "Conflict", http.StatusConflict}
	probTooLarge     = problemType{"request-body-too-large", "Request body too large", http.StatusRequestEntityTooLarge}
	probMediaType    = problemType{"unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType}
	probInternal     = problemType{"internal-error", "Internal error", http.StatusInternalServerError}
	probUnavailable  = problemType{"store-unavailable", "Key store unavailable", http.StatusServiceUnavailable}
	probDisabled     = problemType{"admin-disabled", "Admin API disabled", http.StatusServiceUnavailable}
)

// problemDetails is the body: RFC 9457 members plus "errors", the list of
// invalid fields of a 400.
type problemDetails struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []keymgmt.FieldError `json:"errors,omitempty"`
}

// writeProblem sends a problem. detail and fields must be safe to show:
// they never carry a token, a key or internal error text.
func writeProblem(w http.ResponseWriter, t problemType, detail string, fields []keymgmt.FieldError) {
	body, err := json.Marshal(problemDetails{
		Type:   "urn:gatehouse:problem:" + t.slug,
		Title:  t.title,
		Status: t.status,
		Detail: detail,
		Errors: fields,
	})
	if err != nil {
		body = []byte(`{"type":"urn:gatehouse:problem:internal-error","title":"Internal error","status":500}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", problemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(t.status)
	_, _ = w.Write(body)
}

// writeError maps a service error to its problem, with errors.Is/As only.
// Unexpected errors are logged and answered with a bare 500.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *keymgmt.ValidationError
	switch {
	case errors.As(err, &verr):
		writeProblem(w, probInvalid, "one or more fields are invalid", verr.Fields)
	case errors.Is(err, apikey.ErrNotFound):
		writeProblem(w, probNotFound, "", nil)
	case errors.Is(err, keymgmt.ErrKeyRevoked):
		writeProblem(w, probConflict, "the key is revoked", nil)
	case errors.Is(err, keymgmt.ErrKeyRotated):
		writeProblem(w, probConflict, "the key was already rotated; rotate its successor", nil)
	case errors.Is(err, keymgmt.ErrKeyExpired):
		writeProblem(w, probConflict, "the key has expired", nil)
	case errors.Is(err, apikey.ErrConflict):
		writeProblem(w, probConflict, "a resource with this name already exists", nil)
	case errors.Is(err, apikey.ErrUnavailable):
		a.log.Warn("adminapi: key store unavailable", "method", r.Method, "pattern", r.Pattern, "err", err)
		writeProblem(w, probUnavailable, "", nil)
	default:
		a.log.Error("adminapi: internal error", "method", r.Method, "pattern", r.Pattern, "err", err)
		writeProblem(w, probInternal, "", nil)
	}
}
