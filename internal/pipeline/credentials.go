package pipeline

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// The evidence of a composite identity (an AND chain), as identity headers
// and audit events carry it.

// methodList is the value of identity_headers.method: the method, or for
// a composite identity every credential's method in chain order,
// comma-joined ("mtls,jwt"). Method names are registry names, which never
// hold a comma.
func methodList(id *identity.Identity) string {
	if len(id.Credentials) == 0 {
		return string(id.Method) // no allocation on the usual path
	}
	n := len(id.Credentials) - 1
	for _, c := range id.Credentials {
		n += len(c.Method)
	}
	var b strings.Builder
	b.Grow(n)
	for i, c := range id.Credentials {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(c.Method))
	}
	return b.String()
}

// encodeCredentials renders the evidence as an RFC 8941 structured-field
// List: one Item per credential, the method as a Token, the evidence as
// Parameters:
//
//	mtls;x5t="3q2-7w…", jwt;id="t-1";sub="alice";iss="https://idp";prov="corp";exp=1700000000;cnf-x5t="3q2-7w…"
//
// Strings are sf-strings; a value with non-ASCII characters is an RFC 9651
// Display String (%"…", UTF-8 percent-encoded). credentialsSafe must have
// accepted the evidence.
func encodeCredentials(cs []identity.Credential) string {
	var b []byte
	for i, c := range cs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, c.Method...)
		b = appendParam(b, "id", c.CredentialID)
		b = appendParam(b, "sub", c.Subject)
		b = appendParam(b, "iss", c.Issuer)
		b = appendParam(b, "prov", c.Provider)
		if !c.ExpiresAt.IsZero() {
			if exp := c.ExpiresAt.Unix(); exp >= 0 && exp <= 999_999_999_999_999 {
				b = append(b, ";exp="...)
				b = strconv.AppendInt(b, exp, 10)
			}
		}
		b = appendParam(b, "x5t", c.CertThumbprint)
		switch c.KeyBinding.Kind {
		case "x5t#S256":
			b = appendParam(b, "cnf-x5t", c.KeyBinding.Value)
		case "jkt":
			b = appendParam(b, "cnf-jkt", c.KeyBinding.Value)
		}
	}
	return string(b)
}

// appendParam appends ;key=value, or nothing for an empty value.
func appendParam(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ';')
	b = append(b, key...)
	b = append(b, '=')
	return appendSFString(b, value)
}

// appendSFString appends an sf-string (RFC 8941 §3.3.3) when value is
// printable ASCII, and a Display String (RFC 9651 §3.3.8) otherwise.
func appendSFString(b []byte, value string) []byte {
	ascii := true
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		b = append(b, '"')
		for i := 0; i < len(value); i++ {
			if c := value[i]; c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, value[i])
		}
		return append(b, '"')
	}
	const hex = "0123456789abcdef" // RFC 9651: lower-case hex digits
	b = append(b, '%', '"')
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c == '%' || c == '"' || c < 0x20 || c > 0x7e {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return append(b, '"')
}

// credentialsSafe reports whether the evidence can be encoded: every text
// is valid UTF-8 (a Display String carries nothing else).
func credentialsSafe(cs []identity.Credential) bool {
	for _, c := range cs {
		for _, s := range [...]string{c.CredentialID, c.Subject, c.Issuer, c.Provider, c.CertThumbprint, c.KeyBinding.Value} {
			if !utf8.ValidString(s) {
				return false
			}
		}
	}
	return true
}

// auditCredentials is the evidence as audit events record it (identifiers
// only, never a credential).
func auditCredentials(cs []identity.Credential) []audit.Credential {
	out := make([]audit.Credential, len(cs))
	for i, c := range cs {
		out[i] = audit.Credential{Method: string(c.Method), CredentialID: c.CredentialID, Subject: c.Subject,
			Issuer: c.Issuer, Provider: c.Provider, CertThumbprint: c.CertThumbprint,
			KeyBindingKind: c.KeyBinding.Kind, KeyBinding: c.KeyBinding.Value}
		if !c.ExpiresAt.IsZero() {
			out[i].ExpiresAt = c.ExpiresAt.Unix()
		}
	}
	return out
}
