package adminapi

import (
	"errors"
	"github.com/gatehouse/gatehouse/internal/quota"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/problem"
)

// The admin API's problem catalogue (see package problem for the format).
var (
	probInvalid      = problem.Type{Slug: "invalid-request", Title: "Invalid request", Status: http.StatusBadRequest}
	probUnauthorized = problem.Type{Slug: "admin-unauthorized", Title: "Admin token missing or invalid", Status: http.StatusUnauthorized}
	probNotFound     = problem.Type{Slug: "not-found", Title: "Not found", Status: http.StatusNotFound}
	// Slugs the proxy also sends are the proxy's types, so that one slug
	// always has one title (docs/errors.md).
	probMethod      = problem.MethodNotAllowed
	probConflict    = problem.Type{Slug: "conflict", Title: "Conflict", Status: http.StatusConflict}
	probTooLarge    = problem.BodyTooLarge
	probMediaType   = problem.Type{Slug: "unsupported-media-type", Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType}
	probInternal    = problem.Internal
	probUnavailable = problem.Type{Slug: "store-unavailable", Title: "Key store unavailable", Status: http.StatusServiceUnavailable}
	probDisabled    = problem.Type{Slug: "admin-disabled", Title: "Admin API disabled", Status: http.StatusServiceUnavailable}
)

// writeProblem sends a problem. detail and fields must be safe to show:
// they never carry a token, a key or internal error text.
func writeProblem(w http.ResponseWriter, t problem.Type, detail string, fields []keymgmt.FieldError) {
	if len(fields) == 0 {
		problem.Write(w, t, detail, "")
		return
	}
	problem.WriteFields(w, t, detail, "", fields)
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
	case errors.Is(err, apikey.ErrUnavailable), errors.Is(err, quota.ErrUnavailable):
		a.log.Warn("adminapi: key store unavailable", "method", r.Method, "pattern", r.Pattern, "err", err)
		writeProblem(w, probUnavailable, "", nil)
	default:
		a.log.Error("adminapi: internal error", "method", r.Method, "pattern", r.Pattern, "err", err)
		writeProblem(w, probInternal, "", nil)
	}
}
