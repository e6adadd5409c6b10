package dpop

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// VerifyRequest is the whole DPoP check of a request whose access token
// was presented with the DPoP scheme and has been verified: the one DPoP
// header (ProofFromHeader), the proof against the request (Verify, with
// requestURL the externally visible URL, see RequestURL) and the token's
// binding to the proof key (CheckBinding with the token's cnf claim, nil
// when it has none). It must run on every request, also when the token
// came from a cache of verified tokens.
func (v *Verifier) VerifyRequest(ctx context.Context, r *http.Request, requestURL *url.URL, accessToken string, cnf map[string]any) (Proof, error) {
	raw, err := ProofFromHeader(r.Header)
	if err != nil {
		return Proof{}, err
	}
	p, err := v.Verify(ctx, raw, r.Method, requestURL, accessToken)
	if err != nil {
		return Proof{}, err
	}
	jkt, _ := TokenJKT(cnf)
	if err := CheckBinding(jkt, p.JKT); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// ProofFromHeader returns the request's one DPoP header value. No header
// is ReasonProofMissing; several headers, or one whose value is a comma
// list (what a proxy makes of several) or empty, is ReasonProofInvalid
// (RFC 9449 section 4.3, step 1).
func ProofFromHeader(h http.Header) (string, error) {
	vals := h.Values("Dpop")
	switch {
	case len(vals) == 0:
		return "", newError(ReasonProofMissing, CheckMissing, nil)
	case len(vals) > 1:
		return "", newError(ReasonProofInvalid, CheckHeaderCount, errHeaderCount)
	}
	p := strings.Trim(vals[0], " \t")
	if p == "" || strings.IndexByte(p, ',') >= 0 {
		return "", newError(ReasonProofInvalid, CheckHeaderCount, errHeaderCount)
	}
	return p, nil
}

// TokenJKT reads cnf.jkt from a token's cnf claim (nil when absent). bound
// is true when cnf carries a jkt member at all; jkt is "" when that member
// is not a non-empty string (a malformed binding, which then matches no
// proof).
func TokenJKT(cnf map[string]any) (jkt string, bound bool) {
	v, ok := cnf["jkt"]
	if !ok {
		return "", false
	}
	s, _ := v.(string)
	return s, true
}

// BearerDowngrade reports whether a token with this cnf claim must be
// refused when presented with the Bearer scheme (RFC 9449 section 7.1): it
// is bound to a DPoP key.
func BearerDowngrade(cnf map[string]any) bool {
	_, bound := TokenJKT(cnf)
	return bound
}

// CheckBinding compares the token's cnf.jkt with the proof key's
// thumbprint, in constant time. An unbound token ("") presented with a
// proof is refused too: the DPoP scheme promises a bound token.
func CheckBinding(tokenJKT, proofJKT string) error {
	if tokenJKT == "" {
		return newError(ReasonTokenBindingMismatch, CheckUnbound, errUnbound)
	}
	if subtle.ConstantTimeCompare([]byte(tokenJKT), []byte(proofJKT)) != 1 {
		return newError(ReasonTokenBindingMismatch, CheckJKT, errBinding)
	}
	return nil
}

// Mode is a route's (or provider's) DPoP policy.
type Mode int

const (
	// ModeDisabled: the DPoP scheme is not accepted; bound tokens are
	// still refused as Bearer.
	ModeDisabled Mode = iota
	// ModeAllowed: Bearer (unbound tokens) and DPoP are both accepted.
	ModeAllowed
	// ModeRequired: only the DPoP scheme with a bound token.
	ModeRequired
)

// CheckBearer applies mode to a token presented with the Bearer scheme:
// a bound token is refused (ReasonBoundTokenAsBearer), and under
// ModeRequired so is every other (ReasonProofMissing, CheckRequired).
// Call it once the token is verified, with its cnf claim.
func CheckBearer(mode Mode, cnf map[string]any) error {
	if BearerDowngrade(cnf) {
		return newError(ReasonBoundTokenAsBearer, CheckBearerScheme, errBearer)
	}
	if mode == ModeRequired {
		return newError(ReasonProofMissing, CheckRequired, errRequired)
	}
	return nil
}

// RenewNonce returns the nonce to send in a DPoP-Nonce header on a
// successful response to a request with proof (the DPoP header's value,
// already accepted by Verify): a fresh nonce when the proof's nonce is
// from the previous slot, so that the client has the next one before its
// own expires (RFC 9449 section 8.2); "" when it is current, or when
// nonces are off. It reads the proof's claims without checking them
// again.
func (v *Verifier) RenewNonce(proof string) string {
	if v.nonces == nil {
		return ""
	}
	_, rest, ok := strings.Cut(proof, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if json.Unmarshal(b, &c) != nil || c.Nonce == "" || v.nonces.current(c.Nonce) {
		return ""
	}
	return v.nonces.Next()
}
