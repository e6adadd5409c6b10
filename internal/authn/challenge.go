package authn

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Challenge is one WWW-Authenticate challenge (RFC 9110 section 11.6.1)
// that an authenticator contributes, and the response headers that go
// with it.
type Challenge struct {
	// Scheme is the auth-scheme ("DPoP").
	Scheme string
	// Params are the auth-params after the realm, formatted and quoted
	// (`error="invalid_dpop_proof", algs="ES256"`); "" for none. The
	// pipeline writes the realm first.
	Params string
	// Headers are response headers sent with the refusal (DPoP-Nonce),
	// as name (canonical) and value pairs.
	Headers [][2]string
}

// Challenger is implemented by an authenticator whose 401 challenges are
// more than its method's registered scheme (registry.Method.Challenge)
// with RFC 6750's parameters: the JWT method on a route that accepts DPoP
// offers a second scheme, and answers a DPoP failure with a DPoP
// challenge and, for nonces, a DPoP-Nonce header. The pipeline asks the
// authenticators it built; it names no method.
type Challenger interface {
	// ExtraChallenges are offered, after the method's own scheme, to a
	// request that presented no credential at all. Built once; the caller
	// does not modify them.
	ExtraChallenges() []Challenge
	// FailureChallenge is the challenge for err, a refusal this
	// authenticator returned for r. ok false: the default challenge (the
	// method's scheme, with error="invalid_token" for Bearer).
	FailureChallenge(r *http.Request, err error) (c Challenge, ok bool)
}

// HeaderSetter sets a response header (the pipeline's Exchange).
type HeaderSetter interface {
	// SetResponseHeader makes the response carry name (canonical): value.
	SetResponseHeader(name, value string)
}

// ResponseAdvisor is implemented by an authenticator that adds headers to
// the response of a request its route accepted (a fresh DPoP-Nonce when
// the client's is about to expire, RFC 9449 section 8.2). Advise runs
// once the chain has accepted r as id, before the later stages; it must
// be cheap and must not block.
type ResponseAdvisor interface {
	Advise(r *http.Request, id *identity.Identity, h HeaderSetter)
}

// LockoutKeyer is implemented by an authenticator whose credential id can
// be read from the request before the credential is verified (basic's user
// name). Brute-force protection checks that id before the chain runs, so
// a locked-out id is refused whatever was presented with it: for a
// password method, answering 429 only where the password is right would
// tell an attacker which guess was right. The key is the CredentialID the
// authenticator's failures and identities carry; "" for none.
type LockoutKeyer interface {
	LockoutKey(r *http.Request) string
}
