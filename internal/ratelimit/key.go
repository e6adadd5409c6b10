package ratelimit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// KeySpec says what a limit counts by: one part, or several joined with
// '+' ("subject", "claim:tenant", "client_id+ip"). Parse it once, when
// the configuration is compiled; Key then builds a request's key.
//
//	subject      the caller: issuer and subject (for API keys, the consumer;
//	             for mTLS, the certificate's identity)
//	consumer     the same as subject (the word API-key users look for)
//	client_id    the OAuth client (client_id/azp); for API keys, the consumer name
//	credential   the credential: API key id, token id (jti), certificate fingerprint
//	claim:NAME   a claim selected for policies (tenant, plan); strings, numbers, booleans
//	ip           the client address, as the forwarding settings derive it
//	route        the route: one count shared by every caller
type KeySpec struct {
	parts []keyPart
}

type keyKind uint8

const (
	keySubject keyKind = iota
	keyClientID
	keyCredential
	keyClaim
	keyIP
	keyRoute
)

type keyPart struct {
	kind  keyKind
	claim string
}

// maxKeySpec bounds a spec's text and parts: it comes from configuration,
// but a parser has a budget.
const (
	maxKeySpecLen   = 256
	maxKeySpecParts = 4
)

// ParseKeySpec reads a key spec.
func ParseKeySpec(s string) (KeySpec, error) {
	if s == "" {
		return KeySpec{}, fmt.Errorf("ratelimit: empty key")
	}
	if len(s) > maxKeySpecLen {
		return KeySpec{}, fmt.Errorf("ratelimit: key of %d bytes (at most %d)", len(s), maxKeySpecLen)
	}
	var spec KeySpec
	seen := map[keyPart]bool{}
	for _, word := range strings.Split(s, "+") {
		if len(spec.parts) == maxKeySpecParts {
			return KeySpec{}, fmt.Errorf("ratelimit: key %q: at most %d parts", s, maxKeySpecParts)
		}
		var p keyPart
		switch word {
		case "subject", "consumer":
			p.kind = keySubject
		case "client_id":
			p.kind = keyClientID
		case "credential":
			p.kind = keyCredential
		case "ip":
			p.kind = keyIP
		case "route":
			p.kind = keyRoute
		default:
			name, ok := strings.CutPrefix(word, "claim:")
			if !ok {
				return KeySpec{}, fmt.Errorf("ratelimit: key %q: unknown part %q (subject, consumer, client_id, credential, claim:NAME, ip, route)", s, word)
			}
			if !validName(name) {
				return KeySpec{}, fmt.Errorf("ratelimit: key %q: claim name %q: use 1 to 64 letters, digits, '-', '_' or '.'", s, name)
			}
			p = keyPart{kind: keyClaim, claim: name}
		}
		if seen[p] {
			return KeySpec{}, fmt.Errorf("ratelimit: key %q: %q twice", s, word)
		}
		seen[p] = true
		spec.parts = append(spec.parts, p)
	}
	return spec, nil
}

// String is the spec in its configuration spelling (consumer is spelled
// subject).
func (k KeySpec) String() string {
	var b strings.Builder
	for i, p := range k.parts {
		if i > 0 {
			b.WriteByte('+')
		}
		switch p.kind {
		case keySubject:
			b.WriteString("subject")
		case keyClientID:
			b.WriteString("client_id")
		case keyCredential:
			b.WriteString("credential")
		case keyClaim:
			b.WriteString("claim:" + p.claim)
		case keyIP:
			b.WriteString("ip")
		case keyRoute:
			b.WriteString("route")
		}
	}
	return b.String()
}

// NeedsIdentity reports whether the key reads the caller's identity (as
// opposed to only the address and the route): on a route that admits
// anonymous callers such a key puts all of them in one bucket.
func (k KeySpec) NeedsIdentity() bool {
	for _, p := range k.parts {
		if p.kind != keyIP && p.kind != keyRoute {
			return true
		}
	}
	return false
}

// missing stands for a part the request does not have. Multi-part keys
// are length-prefixed, so it cannot shift into another part; a value that
// is exactly one NUL byte shares its bucket, which only limits its sender
// together with the requests lacking the part.
const missing = "\x00"

// Key builds the request's key. complete is false when a part was
// missing (an anonymous caller for subject, a claim the token lacks, no
// client address): the key then holds a marker for that part, so every
// request lacking it shares one bucket, which limits them together
// rather than not at all. A one-part key is the part itself, except
// subject (issuer and subject): the cost is at most one allocation.
func (k KeySpec) Key(id *identity.Identity, route, clientIP string) (key string, complete bool) {
	if len(k.parts) == 1 {
		v, ok := k.part(k.parts[0], id, route, clientIP)
		if ok && k.parts[0].kind == keySubject {
			v = id.Issuer + "\x00" + v
		}
		return v, ok
	}
	complete = true
	var vals [maxKeySpecParts]string
	size := 0
	for i, p := range k.parts {
		v, ok := k.part(p, id, route, clientIP)
		complete = complete && ok
		if p.kind == keySubject && ok {
			// issuer NUL subject: the same sub from two issuers is two callers.
			v = id.Issuer + "\x00" + v
		}
		vals[i] = v
		size += len(v) + 6
	}
	// Length-prefixed parts: "3:web11:203.0.113.9" cannot be read as
	// another split of the same bytes.
	b := make([]byte, 0, size)
	for _, v := range vals[:len(k.parts)] {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b), complete
}

func (k KeySpec) part(p keyPart, id *identity.Identity, route, clientIP string) (string, bool) {
	var v string
	anon := id.IsAnonymous()
	switch p.kind {
	case keySubject:
		if !anon {
			v = id.Subject
		}
	case keyClientID:
		if !anon {
			v = id.ClientID
		}
	case keyCredential:
		if !anon {
			v = id.CredentialID
		}
	case keyClaim:
		if !anon {
			v = claimString(id.Claims[p.claim])
		}
	case keyIP:
		v = clientIP
	case keyRoute:
		v = route
	}
	if v == "" {
		return missing, false
	}
	return v, true
}

// claimString is a scalar claim's value; "" for anything else (a list or
// an object is not a key).
func claimString(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case float64:
		return strconv.FormatFloat(c, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(c, 10)
	case int:
		return strconv.Itoa(c)
	case bool:
		return strconv.FormatBool(c)
	}
	return ""
}
