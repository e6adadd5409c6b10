package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/quota"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
)

// maxBody bounds request bodies.
const maxBody = 64 << 10

// Request bodies. Unknown members are refused.
type createConsumerRequest struct {
	Name     string            `json:"name"`
	Groups   []string          `json:"groups"`
	Tags     []string          `json:"tags"`
	Metadata map[string]string `json:"metadata"`
}

type createKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Routes []string `json:"routes"`
	Tier   string   `json:"rate_limit_tier"`
	// ExpiresAt is RFC 3339; ExpiresIn a Go duration ("720h"). Not both.
	ExpiresAt *string `json:"expires_at"`
	ExpiresIn *string `json:"expires_in"`
}

// lookupKeyRequest carries a key in the body, never in the URL (URLs end
// up in logs).
type lookupKeyRequest struct {
	Key string `json:"key"`
}

type rotateKeyRequest struct {
	// Grace is a Go duration ("24h", "0s"); absent: the configured default.
	Grace *string `json:"grace"`
}

// Response bodies.
type consumerList struct {
	Consumers []*apikey.Consumer `json:"consumers"`
}

type keyList struct {
	Keys []*apikey.Key `json:"keys"`
}

type createdKey struct {
	Key    *apikey.Key `json:"key"`
	Secret string      `json:"secret"`
}

type lookedUpKey struct {
	Key      *apikey.Key      `json:"key"`
	Consumer *apikey.Consumer `json:"consumer"`
}

type rotatedKey struct {
	Key      *apikey.Key `json:"key"`
	Secret   string      `json:"secret"`
	Previous *apikey.Key `json:"previous"`
}

func (a *api) createConsumer(w http.ResponseWriter, r *http.Request) {
	var req createConsumerRequest
	if !decode(w, r, &req) {
		return
	}
	c, err := a.svc.CreateConsumer(r.Context(), keymgmt.NewConsumer{
		Name: req.Name, Groups: req.Groups, Tags: req.Tags, Metadata: req.Metadata,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (a *api) listConsumers(w http.ResponseWriter, r *http.Request) {
	cs, err := a.svc.ListConsumers(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if cs == nil {
		cs = []*apikey.Consumer{}
	}
	writeJSON(w, http.StatusOK, consumerList{cs})
}

func (a *api) getConsumer(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.GetConsumer(r.Context(), r.PathValue("consumer"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// usageResponse is a consumer's quota use.
type usageResponse struct {
	Consumer string        `json:"consumer"`
	Name     string        `json:"name"`
	Quotas   []quota.Usage `json:"quotas"`
}

func (a *api) consumerUsage(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.GetConsumer(r.Context(), r.PathValue("consumer"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	resp := usageResponse{Consumer: c.ID, Name: c.Name, Quotas: []quota.Usage{}}
	if a.usage != nil {
		us, err := a.usage(r.Context(), c)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		resp.Quotas = append(resp.Quotas, us...)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *api) deleteConsumer(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteConsumer(r.Context(), r.PathValue("consumer")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) createKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if !decode(w, r, &req) {
		return
	}
	n := keymgmt.NewKey{Name: req.Name, Scopes: req.Scopes, Routes: req.Routes, Tier: req.Tier}
	var fields []keymgmt.FieldError
	switch {
	case req.ExpiresAt != nil && req.ExpiresIn != nil:
		fields = append(fields, keymgmt.FieldError{Field: "expires_in", Message: "must not be combined with expires_at"})
	case req.ExpiresAt != nil:
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			fields = append(fields, keymgmt.FieldError{Field: "expires_at", Message: "must be an RFC 3339 date-time"})
		} else {
			n.ExpiresAt = &t
		}
	case req.ExpiresIn != nil:
		d, err := time.ParseDuration(*req.ExpiresIn)
		switch {
		case err != nil:
			fields = append(fields, keymgmt.FieldError{Field: "expires_in", Message: `must be a duration such as "720h"`})
		case d <= 0:
			fields = append(fields, keymgmt.FieldError{Field: "expires_in", Message: "must be positive"})
		default:
			t := a.now().Add(d)
			n.ExpiresAt = &t
		}
	}
	if len(fields) > 0 {
		writeProblem(w, probInvalid, "one or more fields are invalid", fields)
		return
	}
	k, secret, err := a.svc.CreateKey(r.Context(), r.PathValue("consumer"), n)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdKey{Key: k, Secret: secret})
}

func (a *api) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.svc.ListKeys(r.Context(), r.URL.Query().Get("consumer"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if keys == nil {
		keys = []*apikey.Key{}
	}
	writeJSON(w, http.StatusOK, keyList{keys})
}

func (a *api) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.svc.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (a *api) rotateKey(w http.ResponseWriter, r *http.Request) {
	var req rotateKeyRequest
	if !decode(w, r, &req) {
		return
	}
	var grace *time.Duration
	if req.Grace != nil {
		d, err := time.ParseDuration(*req.Grace)
		if err != nil {
			writeProblem(w, probInvalid, "one or more fields are invalid",
				[]keymgmt.FieldError{{Field: "grace", Message: `must be a duration such as "24h" or "0s"`}})
			return
		}
		grace = &d
	}
	k, secret, old, err := a.svc.RotateKey(r.Context(), r.PathValue("key"), grace)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rotatedKey{Key: k, Secret: secret, Previous: old})
}

func (a *api) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.svc.RevokeKey(r.Context(), r.PathValue("key"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (a *api) now() time.Time {
	if a.svc.Now != nil {
		return a.svc.Now()
	}
	return time.Now()
}

// decode reads a JSON body into v, answering the request on failure: 413
// past maxBody, 415 for a non-JSON content type, 400 naming the offending
// member otherwise. An empty body decodes as {} (optional bodies).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeProblem(w, probTooLarge, fmt.Sprintf("the body must be at most %d bytes", maxBody), nil)
		} else {
			writeProblem(w, probInvalid, "the body could not be read", nil)
		}
		return false
	}
	if len(body) == 0 {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, probMediaType, "send application/json", nil)
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, probInvalid, "the body is not valid for this operation", []keymgmt.FieldError{jsonFieldError(err)})
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, probInvalid, "the body must hold one JSON object", []keymgmt.FieldError{{Field: "", Message: "unexpected data after the JSON object"}})
		return false
	}
	return true
}

// jsonFieldError names the member a decoding error is about, without
// echoing any value.
func jsonFieldError(err error) keymgmt.FieldError {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return keymgmt.FieldError{Field: te.Field, Message: "must be of type " + jsonTypeName(te.Type.Kind().String())}
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return keymgmt.FieldError{Field: "", Message: "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10)}
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, uerr := strconv.Unquote(field); uerr == nil {
			field = f
		}
		return keymgmt.FieldError{Field: field, Message: "unknown field"}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return keymgmt.FieldError{Field: "", Message: "truncated JSON"}
	}
	return keymgmt.FieldError{Field: "", Message: "malformed JSON"}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	default:
		return kind
	}
}

// writeJSON sends v as application/json. Responses may carry key
// secrets, so nothing is cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, probInternal, "", nil)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// lookupKey answers which stored key a plaintext key is (gatehouse explain
// uses it while the gateway holds the store). The key is not logged.
func (a *api) lookupKey(w http.ResponseWriter, r *http.Request) {
	var req lookupKeyRequest
	if !decode(w, r, &req) {
		return
	}
	k, c, err := a.svc.LookupKey(r.Context(), req.Key)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, lookedUpKey{Key: k, Consumer: c})
}
