package jwt

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/certbind"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// ReasonDPoPNotAllowed: a token was sent with the DPoP scheme on a route
// where DPoP is off (for the route and for the token's provider).
const ReasonDPoPNotAllowed authn.Reason = "dpop_not_allowed"

var errDPoPNotAllowed = errors.New("authn/jwt: the DPoP scheme is not accepted on this route")

// nonceHeader is dpop.HeaderNonce in canonical form, as response header
// edits need it.
var nonceHeader = http.CanonicalHeaderKey(dpop.HeaderNonce)

const descDPoPNotAllowed = "DPoP-bound access tokens are not accepted on this route."

func dpopNotAllowed(t *verified) *authn.Failure {
	f := failure(ReasonDPoPNotAllowed, nil, errDPoPNotAllowed)
	f.Description = descDPoPNotAllowed
	if t != nil {
		annotate(f, t)
	}
	return f
}

// checkBinding checks, on every request (the token may come from the
// cache), what the token is bound to:
//
//  1. the client certificate (RFC 8705): a token with cnf.x5t#S256 must
//     come over a connection whose client certificate has that
//     thumbprint; with certificate_bound required (provider or route),
//     every token must carry one (token_binding_mismatch,
//     token_binding_required);
//  2. Bearer: a DPoP-bound token (cnf.jkt) is refused, and every token
//     when DPoP is required (dpop.CheckBearer);
//  3. DPoP: the scheme must be on for the token's provider or the route
//     (dpop_not_allowed), and the proof must verify against the request
//     and bind to cnf.jkt (dpop.Verifier.VerifyRequest).
//
// The stricter of the provider's and the route's settings applies.
func (a *Authenticator) checkBinding(r *http.Request, token string, s scheme, t *verified) error {
	p := t.p
	if err := certbind.CheckCertificateBinding(t.cnf, certbind.RequestCertificate(r), p.certRequired || a.certRequired); err != nil {
		var ce *certbind.Error
		if !errors.As(err, &ce) {
			return err
		}
		f := ce.Failure(identity.MethodJWT)
		annotate(f, t)
		return f
	}
	mode := max(p.dpopMode, a.dpopMode)
	switch s {
	case schemeBearer:
		if err := dpop.CheckBearer(mode, t.cnf); err != nil {
			return bindingError(err, t)
		}
	case schemeDPoP:
		if mode == dpop.ModeDisabled {
			return dpopNotAllowed(t)
		}
		scheme, host := a.origin(r)
		if _, err := p.dpop.VerifyRequest(r.Context(), r, dpop.RequestURL(r, scheme, host), token, t.cnf); err != nil {
			return bindingError(err, t)
		}
	}
	return nil
}

// bindingError turns a *dpop.Error into the authn outcome, with what the
// verified token says about the caller for the audit event.
func bindingError(err error, t *verified) error {
	var de *dpop.Error
	if !errors.As(err, &de) {
		return err
	}
	out := de.AuthnError(identity.MethodJWT)
	switch e := out.(type) {
	case *authn.Failure:
		annotate(e, t)
	case *authn.UnavailableError:
		e.Provider = t.p.name
	}
	return out
}

// annotate records in f what the verified token says (never the token).
func annotate(f *authn.Failure, t *verified) {
	f.Issuer, f.Provider, f.Subject, f.CredentialID = t.id.Issuer, t.id.Provider, t.id.Subject, t.id.CredentialID
}

// ExtraChallenges implements authn.Challenger: `DPoP algs="…"` on a route
// that accepts DPoP, beside the Bearer challenge.
func (a *Authenticator) ExtraChallenges() []authn.Challenge { return a.extra }

// FailureChallenge implements authn.Challenger. A DPoP failure (a proof,
// a binding, a bound token sent as Bearer) is answered with a DPoP
// challenge naming its error code, and for use_dpop_nonce a fresh nonce
// in DPoP-Nonce; any other failure of a token sent with the DPoP scheme
// with `DPoP error="invalid_token"` (RFC 9449 section 7.1). The rest
// keeps the Bearer challenge.
func (a *Authenticator) FailureChallenge(r *http.Request, err error) (authn.Challenge, bool) {
	var de *dpop.Error
	if errors.As(err, &de) {
		v := a.verifierFor(err)
		h, nonce := v.Challenge(de)
		c := authn.Challenge{Scheme: dpop.Scheme, Params: dpopParams(h)}
		if nonce != "" {
			c.Headers = [][2]string{{nonceHeader, nonce}}
		}
		return c, true
	}
	if !a.dpopScheme || errors.Is(err, errDPoPNotAllowed) {
		return authn.Challenge{}, false
	}
	if v := r.Header["Authorization"]; len(v) != 1 {
		return authn.Challenge{}, false
	} else if _, s, _ := splitToken(v[0]); s != schemeDPoP {
		return authn.Challenge{}, false
	}
	desc := ""
	var f *authn.Failure
	if errors.As(err, &f) {
		desc = f.Description
	}
	return authn.Challenge{Scheme: dpop.Scheme, Params: dpopParams(dpop.Challenge(dpop.ErrorInvalidToken, desc, a.dpopAlgs))}, true
}

// verifierFor is the DPoP verifier of the provider a failure names (its
// algorithms and nonces make the challenge); the first provider's when
// it names none.
func (a *Authenticator) verifierFor(err error) *dpop.Verifier {
	var f *authn.Failure
	if errors.As(err, &f) {
		if p, ok := a.v.byName[f.Provider]; ok {
			return p.dpop
		}
	}
	var u *authn.UnavailableError
	if errors.As(err, &u) {
		if p, ok := a.v.byName[u.Provider]; ok {
			return p.dpop
		}
	}
	return a.v.providers[0].dpop
}

// dpopParams is a DPoP challenge without its scheme.
func dpopParams(challenge string) string {
	return strings.TrimPrefix(strings.TrimPrefix(challenge, dpop.Scheme), " ")
}

// Advise implements authn.ResponseAdvisor: on a request accepted with
// the DPoP scheme whose proof carried a nonce of the previous slot, the
// response carries the next nonce (DPoP-Nonce, RFC 9449 section 8.2), so
// that the client never meets use_dpop_nonce while it keeps calling.
func (a *Authenticator) Advise(r *http.Request, id *identity.Identity, h authn.HeaderSetter) {
	if !a.renewNonces || id == nil {
		return
	}
	if v := r.Header["Authorization"]; len(v) != 1 {
		return
	} else if _, s, _ := splitToken(v[0]); s != schemeDPoP {
		return
	}
	for _, c := range id.Evidence() {
		if c.Method != identity.MethodJWT {
			continue
		}
		p, ok := a.v.byName[c.Provider]
		if !ok {
			return
		}
		proof, err := dpop.ProofFromHeader(r.Header)
		if err != nil {
			return
		}
		if n := p.dpop.RenewNonce(proof); n != "" {
			h.SetResponseHeader(nonceHeader, n)
		}
		return
	}
}
