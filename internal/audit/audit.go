// Package audit records every authentication (and later authorization)
// decision as one structured event, separate from the access log, in a
// versioned schema (docs/audit.md). An event never carries a credential:
// only identifiers (subject, issuer, credential id such as a jti) and a
// stable reason code.
package audit

import (
	"bufio"
	"io"
	"net/netip"
	"sync"
	"time"
)

// SchemaVersion is the version of the event schema. It changes only when a
// field changes meaning or disappears; adding a field does not change it.
const SchemaVersion = "1"

// Event types.
const (
	TypeAuthentication = "authn.decision"
	TypeAuthorization  = "authz.decision"
	// TypeRevocationCreated and TypeRevocationDeleted record changes of
	// the revocation list made through this process's admin API
	// (package revocation).
	TypeRevocationCreated = "revocation.created"
	TypeRevocationDeleted = "revocation.deleted"
	// TypeSharedSignal records a Security Event Token pushed by a Shared
	// Signals transmitter (package ssf): what it did, or why it was
	// refused.
	TypeSharedSignal = "ssf.event"
	// TypeKeyLeaked records an API key reported as leaked (package
	// leakreport) and revoked by the report.
	TypeKeyLeaked = "apikey.key_leaked"
	// TypeLockout records the start of a brute-force lockout of a client
	// address or a credential (once per lockout, not per refused request).
	TypeLockout = "authn.lockout"
	// TypeQuotaExceeded records that a caller used up a quota (once per
	// caller, quota and period, not per refused request).
	TypeQuotaExceeded = "quota.exceeded"
)

// Outcomes.
const (
	OutcomeAllow = "allow" // authenticated (or anonymous where allowed)
	OutcomeDeny  = "deny"  // credential missing or invalid: 401
	OutcomeError = "error" // the credential could not be checked: 503, fail closed
)

// Event is one audit record. Empty fields are omitted.
type Event struct {
	SchemaVersion string    `json:"schema_version"`
	Time          time.Time `json:"time"`
	Type          string    `json:"event"`
	RequestID     string    `json:"request_id,omitempty"`
	Route         string    `json:"route,omitempty"`
	ClientIP      string    `json:"client_ip,omitempty"`
	HTTPMethod    string    `json:"http_method,omitempty"`
	Path          string    `json:"path,omitempty"`
	AuthMethod    string    `json:"auth_method,omitempty"`
	Outcome       string    `json:"outcome"`
	Reason        string    `json:"reason"`
	Subject       string    `json:"subject,omitempty"`
	Issuer        string    `json:"issuer,omitempty"`
	Provider      string    `json:"provider,omitempty"`
	ClientID      string    `json:"client_id,omitempty"`
	CredentialID  string    `json:"credential_id,omitempty"`
	// Credentials is the evidence of every credential of an AND chain
	// (require_all), in chain order; empty for a single credential, which
	// the fields above describe.
	Credentials []Credential `json:"credentials,omitempty"`
	// Policy and Rule name what decided an authorization (authz.decision).
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule,omitempty"`
	// SignalEvent is the event type URI of a Shared Signals event
	// (ssf.event).
	SignalEvent string `json:"signal_event,omitempty"`
	// ClientAddr is the client's address for callers that hold it as a
	// netip.Addr (the request pipeline): Writer writes it as client_ip
	// when ClientIP is empty, appending its text in place, so an audited
	// request does not pay for a string (encoding/json would omit it).
	ClientAddr netip.Addr `json:"-"`
}

// Credential is one credential's evidence in an event: identifiers only,
// never the credential itself.
type Credential struct {
	Method       string `json:"method"`
	CredentialID string `json:"credential_id,omitempty"`
	Subject      string `json:"subject,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	Provider     string `json:"provider,omitempty"`
	// ExpiresAt is the credential's expiry in Unix seconds; 0: never.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// CertThumbprint is the client certificate's SHA-256 thumbprint
	// (base64url).
	CertThumbprint string `json:"cert_thumbprint,omitempty"`
	// KeyBindingKind ("x5t#S256", "jkt") and KeyBinding (the thumbprint)
	// are the credential's cnf confirmation.
	KeyBindingKind string `json:"key_binding_kind,omitempty"`
	KeyBinding     string `json:"key_binding,omitempty"`
}

// Logger receives events. Implementations are safe for concurrent use.
type Logger interface {
	// Log records e. It must not keep e after it returns: the pipeline
	// reuses one Event per request.
	Log(e *Event)
}

// Discard drops every event (audit disabled).
type Discard struct{}

// Log implements Logger.
func (Discard) Log(*Event) {}

// Writer writes events as JSON lines, exactly as encoding/json.Marshal
// encodes an Event (see appendEvent). Events are encoded by the caller's
// goroutine and written through a buffer that is flushed by a background
// goroutine at least every FlushInterval, so a request never waits for a
// disk write, and Close flushes everything: no acknowledged event is lost
// on a graceful stop.
type Writer struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	closer io.Closer
	done   chan struct{}
	wg     sync.WaitGroup
	closed bool
}

// FlushInterval bounds how long an event may sit in the buffer.
const FlushInterval = 200 * time.Millisecond

// NewWriter writes to w; closer (may be nil) is closed by Close.
func NewWriter(w io.Writer, closer io.Closer) *Writer {
	aw := &Writer{buf: bufio.NewWriterSize(w, 64<<10), closer: closer, done: make(chan struct{})}
	aw.wg.Add(1)
	go aw.flushLoop()
	return aw
}

func (w *Writer) flushLoop() {
	defer w.wg.Done()
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			w.mu.Lock()
			_ = w.buf.Flush()
			w.mu.Unlock()
		}
	}
}

// Log implements Logger.
func (w *Writer) Log(e *Event) {
	if e.SchemaVersion == "" {
		e.SchemaVersion = SchemaVersion
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	bp := linePool.Get().(*[]byte)
	line, ok := appendEvent((*bp)[:0], e)
	if ok {
		line = append(line, '\n')
		w.mu.Lock()
		if !w.closed {
			_, _ = w.buf.Write(line)
		}
		w.mu.Unlock()
	}
	if cap(line) <= maxPooledLine {
		*bp = line
		linePool.Put(bp)
	}
}

// Flush writes buffered events now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

// Close flushes and stops the writer; later events are dropped.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.buf.Flush()
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
	if w.closer != nil {
		if cerr := w.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
