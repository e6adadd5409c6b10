// Package accesslog writes one structured JSON line per request through
// log/slog. It never logs headers, cookies or bodies, and it replaces the
// values of credential-carrying query parameters before anything is written.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// builtinRedacted are query parameters that carry credentials in common
// protocols (OAuth 2.0, OIDC, API-key-in-URL conventions, signed URLs).
var builtinRedacted = []string{
	"access_token", "api_key", "apikey", "key", "token", "id_token", "refresh_token",
	"code", "client_secret", "password", "secret", "signature", "sig",
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
	log    *slog.Logger
	redact map[string]bool
}

// New returns a Logger writing JSON lines to w. extraRedact adds query
// parameter names (case-insensitive) to the built-in list of credentials.
func New(w io.Writer, extraRedact []string) *Logger {
	redact := make(map[string]bool, len(builtinRedacted)+len(extraRedact))
	for _, k := range builtinRedacted {
		redact[k] = true
	}
	for _, k := range extraRedact {
		redact[strings.ToLower(k)] = true
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	return &Logger{log: slog.New(h), redact: redact}
}

// Discard is a Logger that writes nothing (access log disabled).
func Discard() *Logger { return &Logger{} }

// Log writes e as one line.
func (l *Logger) Log(e *Entry) {
	if l == nil || l.log == nil {
		return
	}
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("request_id", e.RequestID),
		slog.String("listener", e.Listener),
		slog.String("route", e.Route),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
	)
	if e.RawQuery != "" {
		attrs = append(attrs, slog.String("query", l.RedactQuery(e.RawQuery)))
	}
	attrs = append(attrs,
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.Int64("bytes", e.Bytes),
		slog.Float64("duration_ms", ms(e.Duration)),
		slog.String("client_ip", addrString(e.ClientIP)),
	)
	if e.Upstream != "" {
		attrs = append(attrs,
			slog.String("upstream", e.Upstream),
			slog.Float64("upstream_latency_ms", ms(e.UpstreamLatency)))
	}
	if e.Subject != "" || e.AuthMethod != "" {
		attrs = append(attrs, slog.String("subject", e.Subject), slog.String("auth_method", e.AuthMethod))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// RedactQuery returns rawQuery with the values of credential parameters
// replaced. A pair whose name cannot be decoded is redacted too: an
// encoding trick must not smuggle a secret past the filter.
func (l *Logger) RedactQuery(rawQuery string) string {
	var b strings.Builder
	b.Grow(len(rawQuery))
	for i, pair := range strings.Split(rawQuery, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(name)
		if err != nil || l.redact[strings.ToLower(key)] {
			b.WriteString(name)
			if hasValue || err != nil {
				b.WriteString("=" + Redacted)
			}
			continue
		}
		b.WriteString(pair)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
