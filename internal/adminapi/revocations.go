package adminapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// createRevocationsRequest revokes one kind of credential, one entry per
// value. A token is revoked by its SHA-256 (kind token): the token itself
// is never sent (gatehouse tokens revoke --token-file hashes it locally).
type createRevocationsRequest struct {
	Kind   string   `json:"kind"`
	Issuer string   `json:"issuer"`
	Values []string `json:"values"`
	Reason string   `json:"reason"`
	// Before and Until are RFC 3339.
	Before *string `json:"before"`
	Until  *string `json:"until"`
}

type revocationList struct {
	Revocations []*revocation.Entry `json:"revocations"`
}

func (a *api) createRevocations(w http.ResponseWriter, r *http.Request) {
	var req createRevocationsRequest
	if !decode(w, r, &req) {
		return
	}
	rr := revocation.Request{Kind: revocation.Kind(req.Kind), Issuer: req.Issuer, Values: req.Values, Reason: req.Reason}
	var fields []keymgmt.FieldError
	for _, t := range []struct {
		name string
		in   *string
		out  **time.Time
	}{{"before", req.Before, &rr.Before}, {"until", req.Until, &rr.Until}} {
		if t.in == nil {
			continue
		}
		v, err := time.Parse(time.RFC3339, *t.in)
		if err != nil {
			fields = append(fields, keymgmt.FieldError{Field: t.name, Message: "must be an RFC 3339 date-time"})
			continue
		}
		*t.out = &v
	}
	if len(fields) > 0 {
		writeProblem(w, probInvalid, "one or more fields are invalid", fields)
		return
	}
	entries, err := a.rev.Revoke(r.Context(), rr)
	if err != nil {
		a.writeRevocationError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, revocationList{entries})
}

func (a *api) listRevocations(w http.ResponseWriter, r *http.Request) {
	entries, err := a.rev.List(r.Context())
	if err != nil {
		a.writeRevocationError(w, r, err)
		return
	}
	if entries == nil {
		entries = []*revocation.Entry{}
	}
	writeJSON(w, http.StatusOK, revocationList{entries})
}

func (a *api) deleteRevocation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("revocation")
	if !revocation.ValidID(id) {
		writeProblem(w, probNotFound, "", nil)
		return
	}
	if err := a.rev.Unrevoke(r.Context(), id); err != nil {
		a.writeRevocationError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeRevocationError maps the list's validation errors to 400, and the
// rest as for keys (not found, store unavailable, internal).
func (a *api) writeRevocationError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *revocation.ValidationError
	if errors.As(err, &verr) {
		fields := make([]keymgmt.FieldError, len(verr.Fields))
		for i, f := range verr.Fields {
			fields[i] = keymgmt.FieldError{Field: f.Field, Message: f.Message}
		}
		writeProblem(w, probInvalid, "one or more fields are invalid", fields)
		return
	}
	a.writeError(w, r, err)
}
