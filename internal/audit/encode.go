package audit

import (
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse/internal/jsonenc"
)

// appendEvent appends e as the JSON that encoding/json.Marshal writes for
// it (same keys, order, omitempty and escaping), without reflection: one
// event is written per authentication and authorization decision, so on
// every authenticated request. ok is false when Marshal would fail, which
// only a Time that RFC 3339 cannot express does. One addition to what
// Marshal writes: ClientAddr, as client_ip, when ClientIP is empty.
func appendEvent(b []byte, e *Event) (_ []byte, ok bool) {
	b = append(b, `{"schema_version":`...)
	b = jsonenc.AppendString(b, e.SchemaVersion, jsonenc.Marshal)
	b = append(b, `,"time":"`...)
	b, err := e.Time.AppendText(b)
	if err != nil {
		return b, false
	}
	b = append(b, `","event":`...)
	b = jsonenc.AppendString(b, e.Type, jsonenc.Marshal)
	b = appendOmitEmpty(b, `,"request_id":`, e.RequestID)
	b = appendOmitEmpty(b, `,"route":`, e.Route)
	if e.ClientIP != "" || !e.ClientAddr.IsValid() {
		b = appendOmitEmpty(b, `,"client_ip":`, e.ClientIP)
	} else {
		var scratch [64]byte
		b = append(b, `,"client_ip":`...)
		b = jsonenc.AppendString(b, e.ClientAddr.AppendTo(scratch[:0]), jsonenc.Marshal)
	}
	b = appendOmitEmpty(b, `,"http_method":`, e.HTTPMethod)
	b = appendOmitEmpty(b, `,"path":`, e.Path)
	b = appendOmitEmpty(b, `,"auth_method":`, e.AuthMethod)
	b = append(b, `,"outcome":`...)
	b = jsonenc.AppendString(b, e.Outcome, jsonenc.Marshal)
	b = append(b, `,"reason":`...)
	b = jsonenc.AppendString(b, e.Reason, jsonenc.Marshal)
	b = appendOmitEmpty(b, `,"subject":`, e.Subject)
	b = appendOmitEmpty(b, `,"issuer":`, e.Issuer)
	b = appendOmitEmpty(b, `,"provider":`, e.Provider)
	b = appendOmitEmpty(b, `,"client_id":`, e.ClientID)
	b = appendOmitEmpty(b, `,"credential_id":`, e.CredentialID)
	if len(e.Credentials) > 0 {
		b = append(b, `,"credentials":[`...)
		for i := range e.Credentials {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCredential(b, &e.Credentials[i])
		}
		b = append(b, ']')
	}
	b = appendOmitEmpty(b, `,"policy":`, e.Policy)
	b = appendOmitEmpty(b, `,"rule":`, e.Rule)
	b = appendOmitEmpty(b, `,"signal_event":`, e.SignalEvent)
	return append(b, '}'), true
}

func appendCredential(b []byte, c *Credential) []byte {
	b = append(b, `{"method":`...)
	b = jsonenc.AppendString(b, c.Method, jsonenc.Marshal)
	b = appendOmitEmpty(b, `,"credential_id":`, c.CredentialID)
	b = appendOmitEmpty(b, `,"subject":`, c.Subject)
	b = appendOmitEmpty(b, `,"issuer":`, c.Issuer)
	b = appendOmitEmpty(b, `,"provider":`, c.Provider)
	if c.ExpiresAt != 0 {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, c.ExpiresAt, 10)
	}
	b = appendOmitEmpty(b, `,"cert_thumbprint":`, c.CertThumbprint)
	b = appendOmitEmpty(b, `,"key_binding_kind":`, c.KeyBindingKind)
	b = appendOmitEmpty(b, `,"key_binding":`, c.KeyBinding)
	return append(b, '}')
}

func appendOmitEmpty(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, key...)
	return jsonenc.AppendString(b, value, jsonenc.Marshal)
}

// linePool holds event buffers; maxPooledLine keeps a rare huge event
// from being held forever.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledLine = 16 << 10
