package pipeline

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/config"
)

// buildServedRoute compiles a route of the configuration that the gateway
// serves itself (direct_response); nil for a proxied route.
func buildServedRoute(rc config.Route) *Route {
	if rc.DecisionOnly {
		return buildDecisionOnlyRoute(rc)
	}
	d := rc.DirectResponse
	if d == nil {
		return nil
	}
	return &Route{
		Name:         rc.Name,
		MaxBodyBytes: int64(rc.MaxBodyBytes),
		public:       rc.Authenticate == nil,
		serve:        compileDirectResponse(d).serve,
	}
}

// directResponse is a compiled direct_response: headers built once.
type directResponse struct {
	status int
	header http.Header
	body   []byte
}

func compileDirectResponse(d *config.DirectResponse) *directResponse {
	dr := &directResponse{status: d.Status, header: http.Header{}, body: []byte(d.Body)}
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dr.header.Add(http.CanonicalHeaderKey(k), d.Headers[k])
	}
	if len(dr.body) > 0 {
		ct := d.ContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		dr.header.Set("Content-Type", ct)
		dr.header.Set("X-Content-Type-Options", "nosniff")
	}
	if dr.status != http.StatusNoContent && dr.status != http.StatusNotModified {
		dr.header.Set("Content-Length", strconv.Itoa(len(dr.body)))
	}
	return dr
}

func (d *directResponse) serve(w http.ResponseWriter, x *Exchange) error {
	h := w.Header()
	for k, v := range d.header {
		// Shared by every request and never modified: capped, so that an
		// append by the response phase copies instead of writing into it.
		h[k] = v[:len(v):len(v)]
	}
	w.WriteHeader(d.status)
	if x.Request.Method != http.MethodHead && len(d.body) > 0 {
		_, _ = w.Write(d.body)
	}
	return nil
}
