// Package ssf receives OpenID Shared Signals (SSF 1.0) and CAEP 1.0 security
// events: Security Event Tokens (RFC 8417) pushed by configured transmitters
// (RFC 8935), verified with the transmitter's keys, and turned into actions
// on the gateway: a session-revoked or credential-change event revokes the
// subject's tokens issued before it (through the revocation list, so every
// replica refuses them), a token-claims-change event drops the subject's
// cached verifications. docs/revocation.md describes it for operators.
package ssf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
)

// Event types the receiver acts on or knows.
const (
	EventSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventCredentialChange  = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	EventTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	EventVerification      = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// MediaType is the Content-Type of a pushed SET (RFC 8935 §2) and the
// JOSE typ it may carry (RFC 8417 §2.3).
const MediaType = "application/secevent+jwt"

// Budgets of a SET: its size, the length of any string claim kept, and the
// JSON nesting depth.
const (
	MaxSETBytes  = 64 << 10
	MaxTextBytes = 1024
	MaxDepth     = 16
)

// SignatureAlgorithms are the algorithms a SET may be signed with:
// asymmetric only, so a transmitter's published key can never forge.
var SignatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ErrMalformed is matched (errors.Is) by every parsing failure.
var ErrMalformed = errors.New("ssf: malformed SET")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseSET parses the compact JWS serialization of a SET, without verifying
// it: the size budget, one signature, an asymmetric algorithm, no
// critical headers, and typ secevent+jwt when a typ is present.
func ParseSET(raw []byte) (*jose.JSONWebSignature, error) {
	if len(raw) == 0 || len(raw) > MaxSETBytes {
		return nil, malformed("size %d outside 1..%d bytes", len(raw), MaxSETBytes)
	}
	if bytes.Count(raw, []byte{'.'}) != 2 {
		return nil, malformed("not a compact JWS")
	}
	jws, err := jose.ParseSigned(string(raw), SignatureAlgorithms)
	if err != nil {
		return nil, malformed("%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, malformed("one signature required")
	}
	h := jws.Signatures[0].Header
	if _, ok := h.ExtraHeaders[jose.HeaderKey("crit")]; ok {
		return nil, malformed("critical headers are not supported")
	}
	if typ, ok := h.ExtraHeaders[jose.HeaderType]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(s, MediaType) && !strings.EqualFold(s, "secevent+jwt") {
			return nil, malformed("typ is not secevent+jwt")
		}
	}
	return jws, nil
}

// Subject is a subject identifier (RFC 9493) of a SET, reduced to the
// formats the gateway can map: iss_sub, email, opaque (a complex subject
// contributes its user member).
type Subject struct {
	Format string
	Issuer string // iss_sub
	Sub    string // iss_sub
	Email  string // email
	ID     string // opaque
}

// SET is the verified content of a Security Event Token that the receiver
// needs: its one event and that event's subject.
type SET struct {
	Issuer   string
	Audience []string
	IssuedAt time.Time
	JTI      string
	// EventType is the URI of the SET's one event.
	EventType string
	// Subject is the top-level sub_id (SSF 1.0), else the event's subject
	// member (CAEP); Format is empty when there is none.
	Subject Subject
	// EventTimestamp is the event's event_timestamp; zero when absent.
	EventTimestamp time.Time
}

// DecodeClaims decodes a SET payload strictly: valid UTF-8 JSON within
// the depth budget, no duplicate member names, iss, iat, jti and events
// present with their types, aud a string or a list of strings, exactly one
// event (SSF 1.0 §4.1.8) whose value is an object, and, when present, an
// exp in the future of now. Subjects of unknown formats decode with only
// their Format.
func DecodeClaims(payload []byte, now time.Time) (*SET, error) {
	if len(payload) > MaxSETBytes {
		return nil, malformed("payload too large")
	}
	if !utf8.Valid(payload) {
		return nil, malformed("payload is not UTF-8")
	}
	if err := checkJSON(payload); err != nil {
		return nil, err
	}
	var c struct {
		Iss    *string                    `json:"iss"`
		Aud    json.RawMessage            `json:"aud"`
		Iat    json.RawMessage            `json:"iat"`
		Exp    json.RawMessage            `json:"exp"`
		JTI    *string                    `json:"jti"`
		SubID  json.RawMessage            `json:"sub_id"`
		Events map[string]json.RawMessage `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, malformed("claims: %v", err)
	}
	s := &SET{}
	switch {
	case c.Iss == nil || *c.Iss == "":
		return nil, malformed("iss is required")
	case c.JTI == nil || *c.JTI == "":
		return nil, malformed("jti is required")
	case isAbsent(c.Iat):
		return nil, malformed("iat is required")
	case len(c.Events) != 1:
		return nil, malformed("events must hold exactly one event, not %d", len(c.Events))
	}
	if err := checkText("iss", *c.Iss); err != nil {
		return nil, err
	}
	if err := checkText("jti", *c.JTI); err != nil {
		return nil, err
	}
	s.Issuer, s.JTI = *c.Iss, *c.JTI
	iat, err := numericDate("iat", c.Iat)
	if err != nil {
		return nil, err
	}
	s.IssuedAt = iat
	if !isAbsent(c.Exp) {
		exp, err := numericDate("exp", c.Exp)
		if err != nil {
			return nil, err
		}
		if !now.Before(exp) {
			return nil, malformed("expired")
		}
	}
	if s.Audience, err = audience(c.Aud); err != nil {
		return nil, err
	}
	for typ, raw := range c.Events {
		if typ == "" {
			return nil, malformed("an event type is empty")
		}
		if err := checkText("event type", typ); err != nil {
			return nil, err
		}
		s.EventType = typ
		var ev struct {
			Subject        json.RawMessage `json:"subject"`
			EventTimestamp json.RawMessage `json:"event_timestamp"`
		}
		if len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '{' {
			return nil, malformed("the event is not an object")
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&ev); err != nil {
			return nil, malformed("event: %v", err)
		}
		if !isAbsent(ev.EventTimestamp) {
			if s.EventTimestamp, err = numericDate("event_timestamp", ev.EventTimestamp); err != nil {
				return nil, err
			}
		}
		subj := c.SubID
		if isAbsent(subj) {
			subj = ev.Subject
		}
		if !isAbsent(subj) {
			if s.Subject, err = subject(subj, 0); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func isAbsent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// audience decodes aud: absent, a string or a list of strings.
func audience(raw json.RawMessage) ([]string, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if err := checkText("aud", one); err != nil {
			return nil, err
		}
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, malformed("aud must be a string or a list of strings")
	}
	if len(list) > 32 {
		return nil, malformed("aud has too many entries")
	}
	for _, a := range list {
		if err := checkText("aud", a); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// subject decodes a subject identifier; a complex subject (a "complex"
// format, or members without a format) yields its user member.
func subject(raw json.RawMessage, depth int) (Subject, error) {
	if depth > 2 {
		return Subject{}, malformed("subject nested too deep")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Subject{}, malformed("subject must be an object")
	}
	var format string
	if f, ok := m["format"]; ok {
		if err := json.Unmarshal(f, &format); err != nil || format == "" {
			return Subject{}, malformed("subject format must be a string")
		}
	}
	str := func(key string) (string, error) {
		v, ok := m[key]
		if !ok {
			return "", malformed("subject of format %s without %s", format, key)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || s == "" {
			return "", malformed("subject %s must be a non-empty string", key)
		}
		return s, checkText("subject "+key, s)
	}
	s := Subject{Format: format}
	var err error
	switch format {
	case "iss_sub":
		if s.Issuer, err = str("iss"); err != nil {
			return Subject{}, err
		}
		s.Sub, err = str("sub")
	case "email":
		s.Email, err = str("email")
	case "opaque":
		s.ID, err = str("id")
	case "complex", "":
		user, ok := m["user"]
		if !ok {
			return Subject{Format: "complex"}, nil
		}
		return subject(user, depth+1)
	default:
		if len(format) > MaxTextBytes {
			return Subject{}, malformed("subject format too long")
		}
	}
	if err != nil {
		return Subject{}, err
	}
	return s, nil
}

// numericDate decodes a NumericDate (a JSON number of seconds since the
// epoch, fractions allowed; never a string) within year 1970..9999.
func numericDate(name string, raw json.RawMessage) (time.Time, error) {
	var n json.Number
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || (t[0] != '-' && (t[0] < '0' || t[0] > '9')) || json.Unmarshal(t, &n) != nil {
		return time.Time{}, malformed("%s is not a NumericDate", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
		return time.Time{}, malformed("%s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func checkText(name, s string) error {
	if len(s) > MaxTextBytes {
		return malformed("%s longer than %d bytes", name, MaxTextBytes)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return malformed("%s has control characters", name)
		}
	}
	return nil
}

// checkJSON walks the document once: one JSON value, nesting within
// MaxDepth, and no object with a member name twice (decoders disagree on
// which one wins, so a SET that has one is refused).
func checkJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		expect bool // object: the next token is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return malformed("JSON: %v", err)
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.expect {
				if k, ok := tok.(string); ok {
					if _, dup := top.keys[k]; dup {
						return malformed("duplicate member %q", truncate(k))
					}
					top.keys[k] = struct{}{}
					top.expect = false
					continue
				}
			} else {
				top.expect = true
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, keys: map[string]struct{}{}, expect: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > MaxDepth {
			return malformed("nested deeper than %d", MaxDepth)
		}
		if len(stack) == 0 && dec.More() {
			return malformed("trailing data")
		}
	}
	if len(stack) != 0 {
		return malformed("truncated JSON")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
