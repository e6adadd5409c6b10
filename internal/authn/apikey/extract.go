package apikey

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// extract returns the request's key. It looks in the configured header,
// then the Authorization header (one header of an accepted scheme), then
// the query parameter if one is configured. No key anywhere is
// authn.ErrNoCredential; a key in more than one place, or the same place
// repeated, is ambiguous and refused as malformed: the gateway must not
// pick one while an upstream or a log reads the other.
func (a *Authenticator) extract(r *http.Request) (string, error) {
	var key string
	found := 0
	if vs := r.Header[a.header]; len(vs) > 0 {
		if len(vs) > 1 {
			return "", invalid(ReasonKeyMalformed, nil, nil, errAmbiguous)
		}
		key = vs[0]
		found++
	}
	if vs := r.Header["Authorization"]; len(vs) > 0 {
		ours := 0
		for _, v := range vs {
			if cred, ok := a.authorization(v); ok {
				key = cred
				ours++
			}
		}
		if ours > 0 && len(vs) > 1 {
			// Several Authorization headers, one of them a key: which one
			// counts is up to whoever reads them, so none does.
			return "", invalid(ReasonKeyMalformed, nil, nil, errAmbiguous)
		}
		found += ours
	}
	if a.queryParam != "" && r.URL != nil && r.URL.RawQuery != "" {
		if vs := r.URL.Query()[a.queryParam]; len(vs) > 0 {
			if len(vs) > 1 {
				return "", invalid(ReasonKeyMalformed, nil, nil, errAmbiguous)
			}
			key = vs[0]
			found++
		}
	}
	switch {
	case found == 0:
		return "", authn.ErrNoCredential
	case found > 1:
		return "", invalid(ReasonKeyMalformed, nil, nil, errAmbiguous)
	case key == "":
		return "", invalid(ReasonKeyMalformed, nil, nil, errEmpty)
	}
	return key, nil
}

// authorization returns the credential of an Authorization header value
// whose scheme is an accepted one (case-insensitively, RFC 9110 section
// 11.1). A Bearer credential without the key prefix is not ours: it is
// left to a JWT authenticator.
//
// The scheme is the leading run of token characters (RFC 9110 §5.6.2): an
// accepted scheme followed by anything but a space ("ApiKey\t<key>",
// "ApiKey,<key>") is ours and malformed (an empty credential), never "not
// ours", which an allow_anonymous route would let through as anonymous.
func (a *Authenticator) authorization(v string) (cred string, ok bool) {
	scheme, cred, wellFormed := authn.SplitAuthorization(v)
	matched := false
	for _, s := range a.schemes {
		if strings.EqualFold(scheme, s) {
			matched = true
			break
		}
	}
	if !matched {
		return "", false
	}
	if !wellFormed {
		return "", true // an empty credential: refused as malformed
	}
	if a.bearerShared && strings.EqualFold(scheme, "Bearer") && !strings.HasPrefix(cred, a.prefix) {
		return "", false
	}
	return cred, true
}
