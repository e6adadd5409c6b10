package pipeline

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/accesslog"
	"github.com/gatehouse/gatehouse/internal/requestid"
)

// HeaderTooLargeError means the request line and header fields exceed the
// listener's max_header_bytes (431).
type HeaderTooLargeError struct{ Limit int64 }

func (e *HeaderTooLargeError) Error() string {
	return "pipeline: request header fields larger than " + strconv.FormatInt(e.Limit, 10) + " bytes"
}

// Refuse answers a request that its listener refused before routing, with
// err mapped by respond as any other refusal: a problem+json body, the
// request id, and one access log line. Nothing of the request is forwarded.
func (p *Plan) Refuse(w http.ResponseWriter, r *http.Request, listener string, err error) {
	rid := requestid.FromIncoming(r.Header.Get(requestid.Header))
	w.Header()[requestid.Header] = []string{rid}
	rec := &recorder{ResponseWriter: w}
	e := &accesslog.Entry{
		Start: time.Now(), RequestID: rid, Listener: listener, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, RawQuery: r.URL.RawQuery, Proto: r.Proto, ClientIP: p.resolver.ClientIP(r),
	}
	defer p.observeRefused(r, e) // after finish: the status and duration are final
	defer p.finish(rec, r, e)
	p.respond(rec, r, e, err)
}
