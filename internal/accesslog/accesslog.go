// Package accesslog writes one structured JSON line per request. It never
// logs headers, cookies or bodies, and it replaces the values of
// credential-carrying query parameters before anything is written.
//
// Lines have the shape of log/slog's JSONHandler output (time, level, msg,
// then the request's fields), but are encoded by hand into a pooled buffer:
// this runs on every request, and slog's generic attribute handling cost
// more than everything else Gatehouse does for a public route.
package accesslog

import (
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonenc"
)

// builtinRedacted are query parameters that carry credentials in common
// protocols (OAuth 2.0, OIDC, API-key-in-URL conventions, signed URLs).
var builtinRedacted = []string{
	"access_token", "api_key", "apikey", "key", "token", "id_token", "refresh_token",
	"code", "client_secret", "password", "secret", "signature", "sig",
	"pass", "pwd", "session", "sid", "phpsessid",
}

// secretSuffixes: a name whose letters and digits end with one of these is
// a credential's too, however it is spelled ("accessToken", "x-api-key",
// "X-Amz-Security-Token", "X-Amz-Signature", "client_assertion",
// "private_token", "jsessionid"). Compared on the normalized name with
// '_' and spaces skipped; "tokens" or "api_keys" do not match.
var secretSuffixes = []string{
	"token", "secret", "password", "passwd", "signature", "assertion", "credential", "credentials",
	"authorization", "apikey", "accesskey", "secretkey", "privatekey", "sessionid", "jwt",
}

// hasSecretSuffix reports whether the normalized name s ends with one of
// secretSuffixes, ignoring '_' and ' '. It allocates nothing.
func hasSecretSuffix[T string | []byte](s T) bool {
	for _, suf := range secretSuffixes {
		i, j := len(s)-1, len(suf)-1
		for ; j >= 0; i, j = i-1, j-1 {
			for i >= 0 && (s[i] == '_' || s[i] == ' ') {
				i--
			}
			if i < 0 || s[i] != suf[j] {
				break
			}
		}
		if j < 0 {
			return true
		}
	}
	return false
}

// Redacted replaces a secret value in the log.
const Redacted = "REDACTED"

// Entry is what one request leaves in the log. Fields that later stages
// fill (the caller's identity) are empty until those stages exist.
type Entry struct {
	Start           time.Time
	RequestID       string
	Listener        string
	Route           string // empty when no route matched
	Method          string
	Host            string
	Path            string
	RawQuery        string // logged with credential values redacted
	Proto           string
	Status          int
	Bytes           int64
	Duration        time.Duration
	ClientIP        netip.Addr
	Upstream        string // the target that served the request
	UpstreamLatency time.Duration
	Subject         string // authenticated caller, once authentication exists
	AuthMethod      string
	Error           string // a stable, non-secret reason when Gatehouse answered itself
}

// Logger writes access log lines. Safe for concurrent use.
type Logger struct {
	out    *output // nil: the Logger writes nothing
	redact map[string]bool
}

// New returns a Logger writing JSON lines to w, one Write per line, as
// each request ends. extraRedact adds query parameter names
// (case-insensitive) to the built-in list of credentials.
func New(w io.Writer, extraRedact []string) *Logger {
	return &Logger{out: &output{w: w}, redact: redactSet(extraRedact)}
}

// NewBuffered is New with the lines collected in a buffer (BufferSize),
// written when it is full, by Flush, and otherwise at most FlushInterval
// after a line enters it, so a request never waits for a write to the
// log's destination. Every Write holds whole lines only, so several
// Loggers can share one destination without splitting each other's lines.
//
// Close writes what is buffered and closes closer (may be nil): call it
// when the Logger is retired, so no line is lost on a graceful stop. A
// line logged after Close is written through to w at once.
func NewBuffered(w io.Writer, closer io.Closer, extraRedact []string) *Logger {
	out := &output{w: w, closer: closer, buf: make([]byte, 0, BufferSize)}
	out.timer = time.AfterFunc(time.Hour, func() { _ = out.flush() })
	out.timer.Stop()
	return &Logger{out: out, redact: redactSet(extraRedact)}
}

// FlushInterval bounds how long a line may sit in a buffered Logger.
const FlushInterval = 200 * time.Millisecond

// BufferSize is the buffer of a buffered Logger; lines are written sooner
// when it fills up.
const BufferSize = 64 << 10

func redactSet(extra []string) map[string]bool {
	redact := make(map[string]bool, len(builtinRedacted)+len(extra))
	for _, k := range builtinRedacted {
		redact[k] = true
	}
	for _, k := range extra {
		redact[normalizeName(k)] = true
	}
	return redact
}

// Discard is a Logger that writes nothing (access log disabled).
func Discard() *Logger { return &Logger{} }

// Log writes e as one line.
func (l *Logger) Log(e *Entry) {
	if l == nil || l.out == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	line := l.appendLine((*bp)[:0], e, time.Now())
	l.out.write(line)
	if cap(line) <= maxPooledLine {
		*bp = line
		linePool.Put(bp)
	}
}

// linePool holds line buffers; maxPooledLine keeps a rare huge line (a
// long query string) from being held forever.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledLine = 16 << 10

// appendLine appends e as the JSON line log/slog's JSONHandler would
// write for it at time now: the same keys, in the same order, with the
// same formatting of strings, numbers and times.
func (l *Logger) appendLine(b []byte, e *Entry, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = jsonenc.AppendString(b, e.RequestID, jsonenc.Slog)
	b = appendField(b, `,"listener":`, e.Listener)
	b = appendField(b, `,"route":`, e.Route)
	b = appendField(b, `,"method":`, e.Method)
	b = appendField(b, `,"host":`, e.Host)
	b = appendField(b, `,"path":`, e.Path)
	if e.RawQuery != "" {
		var scratch [256]byte
		b = append(b, `,"query":`...)
		b = jsonenc.AppendString(b, l.appendRedactedQuery(scratch[:0], e.RawQuery), jsonenc.Slog)
	}
	b = appendField(b, `,"proto":`, e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = jsonenc.AppendFloat(b, ms(e.Duration))
	b = append(b, `,"client_ip":`...)
	if e.ClientIP.IsValid() {
		var scratch [64]byte
		b = jsonenc.AppendString(b, e.ClientIP.AppendTo(scratch[:0]), jsonenc.Slog)
	} else {
		b = append(b, `""`...)
	}
	if e.Upstream != "" {
		b = appendField(b, `,"upstream":`, e.Upstream)
		b = append(b, `,"upstream_latency_ms":`...)
		b = jsonenc.AppendFloat(b, ms(e.UpstreamLatency))
	}
	if e.Subject != "" || e.AuthMethod != "" {
		b = appendField(b, `,"subject":`, e.Subject)
		b = appendField(b, `,"auth_method":`, e.AuthMethod)
	}
	if e.Error != "" {
		b = appendField(b, `,"error":`, e.Error)
	}
	return append(b, "}\n"...)
}

func appendField(b []byte, key, value string) []byte {
	b = append(b, key...)
	return jsonenc.AppendString(b, value, jsonenc.Slog)
}

// RedactQuery returns rawQuery with the values of credential parameters
// replaced. A parameter is a credential when its name, or one of the
// bracketed parts of its name, is on the list once both are normalized as
// the frameworks that read them do:
//
//   - pairs are separated by "&" or ";" (some servers split on both);
//   - the name is percent-decoded ("api%5Fkey", "+" is a space);
//   - "api_key[]", "api_key[0]" and "auth[token]" are the arrays and maps of
//     PHP, Rails and others: each part is checked ("api_key", "auth", "token");
//   - letters are compared without case ("API_KEY", "Access_Token"),
//     spaces around a part are ignored, and ".", "-" and a space inside
//     are the same as "_" (PHP reads "api.key" and " api key" as api_key).
//
// A pair whose name cannot be decoded, or is too long to check, is
// redacted too: an encoding trick must not smuggle a secret past the filter.
func (l *Logger) RedactQuery(rawQuery string) string {
	return string(l.appendRedactedQuery(make([]byte, 0, len(rawQuery)), rawQuery))
}

// appendRedactedQuery appends RedactQuery(rawQuery) to b. It allocates
// nothing beyond b's growth: names are normalized in a stack buffer.
func (l *Logger) appendRedactedQuery(b []byte, rawQuery string) []byte {
	rest := rawQuery
	for {
		end := strings.IndexAny(rest, "&;")
		pair := rest
		if end >= 0 {
			pair = rest[:end]
		}
		name, _, hasValue := strings.Cut(pair, "=")
		switch l.classify(name) {
		case nameSecret:
			b = append(b, name...)
			if hasValue {
				b = append(b, "="+Redacted...)
			}
		case nameSuspect:
			b = append(b, name...)
			b = append(b, "="+Redacted...)
		default:
			b = append(b, pair...)
		}
		if end < 0 {
			return b
		}
		b = append(b, rest[end])
		rest = rest[end+1:]
	}
}

const (
	nameClean   = iota
	nameSecret  // a credential's name
	nameSuspect // cannot be decoded or is too long to check: treated as a secret
)

// maxNameLen bounds the normalized names checked; a longer one is suspect.
const maxNameLen = 256

// classify normalizes a raw parameter name and looks each of its parts up.
func (l *Logger) classify(name string) int {
	if len(name) <= maxNameLen && plainName(name) {
		// The common case: nothing to decode, fold or split.
		if l.redact[name] || hasSecretSuffix(name) {
			return nameSecret
		}
		return nameClean
	}
	return l.classifySlow(name)
}

// plainName reports whether name is already in normalized form and has a
// single part.
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'A' <= c && c <= 'Z', c == '%', c == '+', c == '[', c == ']', c == '.', c == '-', c == ' ', c == '\t':
			return false
		}
	}
	return true
}

// classifySlow is classify for names that need normalizing, in a buffer
// on the stack.
func (l *Logger) classifySlow(name string) int {
	var buf [maxNameLen]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '%':
			if i+2 >= len(name) || !isHex(name[i+1]) || !isHex(name[i+2]) {
				return nameSuspect
			}
			c = unhex(name[i+1])<<4 | unhex(name[i+2])
			i += 2
			if c < 0x20 && c != '\t' || c == 0x7f {
				// An encoded control character ("api_key%00"): some
				// servers cut the name there.
				return nameSuspect
			}
		case '+':
			c = ' '
		}
		if n == len(buf) {
			return nameSuspect
		}
		buf[n] = normalizeByte(c)
		n++
	}
	// Check the part before the first '[' and each bracketed part, without
	// the spaces around it (PHP drops leading spaces; others trim).
	for start, i := 0, 0; i <= n; i++ {
		if i < n && buf[i] != '[' && buf[i] != ']' {
			continue
		}
		seg := trimSpaces(buf[start:i])
		for j, c := range seg {
			if c == ' ' {
				seg[j] = '_'
			}
		}
		if len(seg) > 0 && (l.redact[string(seg)] || hasSecretSuffix(seg)) {
			return nameSecret
		}
		start = i + 1
	}
	return nameClean
}

// normalizeByte folds case and the separators frameworks treat alike; a
// space stays a space until the part it is in has been trimmed.
func normalizeByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '.' || c == '-':
		return '_'
	case c == '\t':
		return ' '
	}
	return c
}

func trimSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// normalizeName is classify's normalization for configured names.
func normalizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = normalizeByte(c)
	}
	b = trimSpaces(b)
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Flush writes buffered lines now.
func (l *Logger) Flush() error {
	if l == nil || l.out == nil {
		return nil
	}
	return l.out.flush()
}

// Close writes buffered lines and closes the destination given to
// NewBuffered. Lines logged afterwards are written through unbuffered.
func (l *Logger) Close() error {
	if l == nil || l.out == nil {
		return nil
	}
	return l.out.close()
}

// output is where lines go: straight to w, or through buf when the Logger
// is buffered (buf has capacity) and not closed.
type output struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	buf    []byte
	timer  *time.Timer // flushes FlushInterval after buf stops being empty
	closed bool
}

func (o *output) write(line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cap(o.buf) == 0 || o.closed {
		_, _ = o.w.Write(line)
		return
	}
	if len(o.buf)+len(line) > cap(o.buf) {
		o.flushLocked()
		if len(line) > cap(o.buf) {
			_, _ = o.w.Write(line)
			return
		}
	}
	if len(o.buf) == 0 {
		o.timer.Reset(FlushInterval)
	}
	o.buf = append(o.buf, line...)
}

func (o *output) flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.flushLocked()
}

// flushLocked writes the buffer. On a write error the buffered lines are
// dropped, as an unbuffered Logger drops a line it cannot write.
func (o *output) flushLocked() error {
	if len(o.buf) == 0 {
		return nil
	}
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	return err
}

func (o *output) close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
	}
	err := o.flushLocked()
	o.mu.Unlock()
	if o.closer != nil {
		if cerr := o.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
