package proxy

import (
	"github.com/gatehouse/gatehouse/internal/accesslog"

	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// EchoHandler returns the builtin demo backend ("builtin:echo"). It answers
// 200 with a JSON description of the request it received:
//
//	{"method", "path", "raw_query", "host", "proto",
//	 "headers": {name: [values]}, "remote_addr", "body_bytes"}
//
// "path" is the escaped path, as it went on the wire. The values of
// credential-carrying headers (Authorization, Proxy-Authorization, Cookie,
// X-Api-Key) are replaced by "[redacted]", so a demo never echoes a secret
// back, into a browser history or a shared screenshot.
// echoRedactor masks credential query parameters (access_token, api_key,
// …) the same way the access log does, so the demo never shows a secret.
var echoRedactor = accesslog.New(io.Discard, nil)

func EchoHandler() http.Handler { return echoHandler{} }

type echoHandler struct{}

// echoReport is the JSON the echo backend answers with.
type echoReport struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"raw_query"`
	Host       string              `json:"host"`
	Proto      string              `json:"proto"`
	Headers    map[string][]string `json:"headers"`
	RemoteAddr string              `json:"remote_addr"`
	BodyBytes  int64               `json:"body_bytes"`
}

// redactedHeaders carry credentials. Keys are canonical header names.
var redactedHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"X-Api-Key":           true,
}

const redacted = "[redacted]"

func (echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "echo: reading the request body failed", http.StatusBadRequest)
		return
	}
	headers := make(map[string][]string, len(r.Header))
	for name, values := range r.Header {
		if redactedHeaders[http.CanonicalHeaderKey(name)] {
			masked := make([]string, len(values))
			for i := range masked {
				masked[i] = redacted
			}
			values = masked
		}
		headers[name] = values
	}
	report := echoReport{
		Method:     r.Method,
		Path:       r.URL.EscapedPath(),
		RawQuery:   echoRedactor.RedactQuery(r.URL.RawQuery),
		Host:       r.Host,
		Proto:      r.Proto,
		Headers:    headers,
		RemoteAddr: r.RemoteAddr,
		BodyBytes:  n,
	}
	body, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		http.Error(w, "echo: encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// inProcessRemoteAddr is what the echo backend sees as its peer when it is
// served in-process: there is no socket, and no address would be true.
const inProcessRemoteAddr = "in-process"

// inProcessTransport serves requests with an http.Handler in the calling
// goroutine, without a socket. It turns the outbound client request into
// what a server would have parsed, so the handler sees what a real
// upstream would.
type inProcessTransport struct {
	handler http.Handler
}

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := &trackedBody{rc: req.Body}
	if req.Body == nil {
		body.rc = http.NoBody
	}
	defer body.Close() // the RoundTripper contract: always close the body
	if err := req.Context().Err(); err != nil {
		return nil, err
	}

	in := req.WithContext(req.Context()) // shallow copy; req is the caller's
	u := *req.URL
	u.Scheme, u.Host = "", ""
	in.URL = &u
	in.RequestURI = u.RequestURI()
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1
	in.RemoteAddr = inProcessRemoteAddr
	in.Body = body

	rec := &memResponse{header: make(http.Header)}
	t.handler.ServeHTTP(rec, in)
	if err := body.failure(); err != nil {
		// Report the body failure itself (e.g. *http.MaxBytesError), as
		// a network upstream's transport would, not the handler's answer.
		return nil, err
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// memResponse is a minimal buffering http.ResponseWriter for handlers
// whose answers are small, such as the echo backend.
type memResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.header }

func (m *memResponse) WriteHeader(code int) {
	if m.status == 0 && code >= 200 {
		m.status = code
	}
}

func (m *memResponse) Write(p []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return m.body.Write(p)
}
