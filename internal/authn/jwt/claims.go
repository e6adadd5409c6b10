package jwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// identity applies the claim checks to a token whose signature has verified
// and builds the caller's identity from it.
func (p *provider) identity(c map[string]any, now time.Time) (*identity.Identity, error) {
	subject := scalarString(lookup(c, p.subject))
	jti, _ := c["jti"].(string)
	fail := func(reason authn.Reason, err error) (*identity.Identity, error) {
		f := failure(reason, p, err)
		f.Subject, f.CredentialID = subject, jti
		return nil, f
	}

	exp, reason, err := p.checkTimes(c, now)
	if err != nil {
		return fail(reason, err)
	}
	if reason, err := p.checkAudience(lookup(c, p.audClaim)); err != nil {
		return fail(reason, err)
	}
	for _, path := range p.required {
		if lookup(c, path) == nil {
			return fail(authn.ReasonMissingClaim, fmt.Errorf("authn/jwt: required claim %q is missing", path))
		}
	}
	for _, cv := range p.values {
		v := lookup(c, cv.path)
		if v == nil {
			return fail(authn.ReasonMissingClaim, fmt.Errorf("authn/jwt: claim %q is missing", cv.path))
		}
		if !matchesValue(v, cv.values) {
			return fail(authn.ReasonClaimValue, fmt.Errorf("authn/jwt: claim %q has no accepted value", cv.path))
		}
	}
	if subject == "" {
		return fail(authn.ReasonMissingClaim, fmt.Errorf("authn/jwt: subject claim %q is missing or empty", p.subject))
	}

	id := &identity.Identity{
		Subject:      subject,
		Issuer:       p.issuer,
		Provider:     p.name,
		Method:       identity.MethodJWT,
		CredentialID: jti,
		ExpiresAt:    exp,
	}
	if v := c["iat"]; v != nil {
		id.IssuedAt, _ = numericDate(v) // checkTimes accepted it
	}
	if v, present := c["cnf"]; present {
		// RFC 7800: cnf is an object. Anything else is a binding nobody
		// can check, so the token is refused rather than taken as unbound.
		cnf, ok := v.(map[string]any)
		if !ok {
			return fail(authn.ReasonMalformed, errors.New("authn/jwt: cnf is not an object"))
		}
		id.KeyBinding = keyBinding(cnf)
	}
	for _, path := range p.clientID {
		if s, ok := lookup(c, path).(string); ok && s != "" {
			id.ClientID = s
			break
		}
	}
	for _, path := range p.scopes {
		if v := lookup(c, path); v != nil {
			id.Scopes = stringList(v, true)
			break
		}
	}
	if p.roles != "" {
		id.Roles = stringList(lookup(c, p.roles), false)
	}
	if p.groups != "" {
		id.Groups = stringList(lookup(c, p.groups), false)
	}
	if len(p.claims) > 0 {
		id.Claims = make(map[string]any, len(p.claims))
		for _, cc := range p.claims {
			if v, ok := copyClaim(lookup(c, cc.path)); ok {
				id.Claims[cc.name] = v
			}
		}
	}
	if field := controlCharField(id); field != "" {
		// Identity headers cannot carry control characters: such a value
		// would be dropped on the way to the upstream (a subject, or a
		// groups list a backend filters on, silently missing) or split a
		// header in a careless one. Refuse the token rather than forward
		// an identity that is not the one the token states.
		return fail(authn.ReasonMalformed, fmt.Errorf("authn/jwt: %s holds a control character", field))
	}
	return id, nil
}

// controlCharField names the first identity field holding a C0 control
// character (other than tab) or DEL, or returns "".
func controlCharField(id *identity.Identity) string {
	for _, f := range []struct {
		name string
		v    string
	}{{"subject", id.Subject}, {"client id", id.ClientID}} {
		if hasControl(f.v) {
			return f.name
		}
	}
	for _, f := range []struct {
		name string
		v    []string
	}{{"scopes", id.Scopes}, {"roles", id.Roles}, {"groups", id.Groups}} {
		for _, s := range f.v {
			if hasControl(s) {
				return f.name
			}
		}
	}
	for name, v := range id.Claims {
		switch t := v.(type) {
		case string:
			if hasControl(t) {
				return "claim " + name
			}
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok && hasControl(s) {
					return "claim " + name
				}
			}
		}
	}
	return ""
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// checkTimes checks exp (required), nbf, iat and the token's lifetime, with
// the provider's leeway. A claim of the wrong type makes the token
// malformed rather than being ignored.
func (p *provider) checkTimes(c map[string]any, now time.Time) (time.Time, authn.Reason, error) {
	expV := c["exp"]
	if expV == nil {
		return time.Time{}, authn.ReasonMissingClaim, errors.New("authn/jwt: exp is missing")
	}
	exp, err := numericDate(expV)
	if err != nil {
		return time.Time{}, authn.ReasonMalformed, fmt.Errorf("authn/jwt: exp: %w", err)
	}
	if now.After(exp.Add(p.skew)) {
		return exp, authn.ReasonExpired, fmt.Errorf("authn/jwt: expired at %s (now %s, leeway %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), p.skew)
	}
	latest := now.Add(p.skew)
	if v := c["nbf"]; v != nil {
		nbf, err := numericDate(v)
		if err != nil {
			return exp, authn.ReasonMalformed, fmt.Errorf("authn/jwt: nbf: %w", err)
		}
		if nbf.After(latest) {
			return exp, authn.ReasonNotYetValid, fmt.Errorf("authn/jwt: not valid before %s (now %s, leeway %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), p.skew)
		}
	}
	var iat time.Time
	hasIat := false
	if v := c["iat"]; v != nil {
		hasIat = true
		iat, err = numericDate(v)
		if err != nil {
			return exp, authn.ReasonMalformed, fmt.Errorf("authn/jwt: iat: %w", err)
		}
		if iat.After(latest) {
			return exp, authn.ReasonIssuedInFuture, fmt.Errorf("authn/jwt: issued at %s, in the future (now %s, leeway %s)", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), p.skew)
		}
	}
	if p.maxLifetime > 0 {
		if !hasIat {
			return exp, authn.ReasonMissingClaim, errors.New("authn/jwt: iat is missing and a maximum lifetime is set")
		}
		if life := exp.Sub(iat); life > p.maxLifetime {
			return exp, authn.ReasonLifetime, fmt.Errorf("authn/jwt: lifetime %s exceeds %s", life, p.maxLifetime)
		}
	}
	return exp, "", nil
}

// checkAudience requires aud (or the provider's audience claim: a string
// or an array of strings) to contain one of the provider's audiences.
func (p *provider) checkAudience(aud any) (authn.Reason, error) {
	switch a := aud.(type) {
	case nil:
		return authn.ReasonMissingClaim, fmt.Errorf("authn/jwt: %s is missing", p.audClaim)
	case string:
		if slices.Contains(p.audiences, a) {
			return "", nil
		}
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && slices.Contains(p.audiences, s) {
				return "", nil
			}
		}
	}
	return authn.ReasonAudience, fmt.Errorf("authn/jwt: no accepted audience in %s", p.audClaim)
}

// maxNumericDate bounds NumericDate seconds (about 285 million years) so
// that time arithmetic never overflows.
const maxNumericDate = 1 << 53

// numericDate converts a NumericDate (RFC 7519: seconds since the epoch,
// possibly fractional) to a time.
func numericDate(v any) (time.Time, error) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, errors.New("not a number")
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return time.Unix(min(max(i, -maxNumericDate), maxNumericDate), 0), nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return time.Time{}, errors.New("not a number")
	}
	// Out of range parses to ±Inf or 0; the clamp handles both.
	f = min(max(f, -maxNumericDate), maxNumericDate)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// lookup resolves a claim path in c: the whole path as one key first, then
// split at each '.' in turn into an object key and the rest of the path.
// It returns nil for an absent or null claim.
func lookup(c map[string]any, path string) any {
	if v, ok := c[path]; ok {
		return v
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := c[path[:i]].(map[string]any); ok {
			if v := lookup(sub, path[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

// scalarString returns a string claim, or a number's JSON text (some
// providers use numeric subject ids); anything else is "".
func scalarString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return string(t)
	}
	return ""
}

// stringList reads a list claim: an array of strings (other elements are
// skipped), or a single string, split on spaces when split is set (OAuth
// scope) and taken whole otherwise.
func stringList(v any, split bool) []string {
	switch t := v.(type) {
	case string:
		if split {
			return strings.Fields(t)
		}
		if t != "" {
			return []string{t}
		}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// matchesValue reports whether a claim (or, for an array, one of its
// elements) equals one of values. Numbers and booleans compare by their
// JSON text.
func matchesValue(v any, values []string) bool {
	if a, ok := v.([]any); ok {
		for _, e := range a {
			if s, ok := valueText(e); ok && slices.Contains(values, s) {
				return true
			}
		}
		return false
	}
	s, ok := valueText(v)
	return ok && slices.Contains(values, s)
}

func valueText(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return string(t), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// copyClaim converts a claim for Identity.Claims: strings, booleans,
// numbers and arrays of those; anything else is left out.
func copyClaim(v any) (any, bool) {
	if a, ok := v.([]any); ok {
		out := make([]any, len(a))
		for i, e := range a {
			s, ok := copyScalar(e)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return copyScalar(v)
}

func copyScalar(v any) (any, bool) {
	switch t := v.(type) {
	case string, bool:
		return t, true
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, true
		}
		if f, err := t.Float64(); err == nil {
			return f, true
		}
	}
	return nil, false
}

// keyBinding reads a token's cnf confirmation (RFC 7800): the thumbprint
// of the certificate (x5t#S256, RFC 8705) or of the key (jkt, RFC 9449) the
// token is bound to. It is evidence for policies and for the method that
// checks the binding; a member that is not a well-formed base64url SHA-256
// thumbprint is not taken, so a policy that requires a binding fails
// closed rather than comparing against garbage.
func keyBinding(cnf map[string]any) identity.KeyBinding {
	for _, kind := range [...]string{"x5t#S256", "jkt"} {
		raw, present := cnf[kind]
		if !present {
			continue
		}
		if v, ok := raw.(string); ok && isThumbprint(v) {
			return identity.KeyBinding{Kind: kind, Value: v}
		}
		// A binding of a known kind that no certificate or key can match:
		// marked, so that every check refuses it (never taken as unbound).
		return identity.KeyBinding{Kind: identity.KeyBindingInvalid}
	}
	return identity.KeyBinding{}
}

// isThumbprint: 43 base64url characters without padding (32 bytes).
func isThumbprint(v string) bool {
	if len(v) != 43 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
