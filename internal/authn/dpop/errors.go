package dpop

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// Reason codes of DPoP outcomes, recorded in audit events (docs/audit.md).
const (
	// ReasonProofMissing: the route requires DPoP (or the token is
	// presented with the DPoP scheme) and the request has no DPoP header.
	ReasonProofMissing authn.Reason = "dpop_proof_missing"
	// ReasonProofInvalid: the DPoP proof fails one of the checks of RFC 9449
	// section 4.3. Error.Check says which one, for logs only.
	ReasonProofInvalid authn.Reason = "dpop_proof_invalid"
	// ReasonProofReplayed: a valid proof whose (key, jti) pair was seen
	// before within its validity window.
	ReasonProofReplayed authn.Reason = "dpop_proof_replayed"
	// ReasonNonceRequired: nonces are configured and the proof carries
	// none, or one that is not (or no longer) valid. The answer carries a
	// fresh DPoP-Nonce header (RFC 9449 section 8).
	ReasonNonceRequired authn.Reason = "dpop_nonce_required"
	// ReasonTokenBindingMismatch: the access token's cnf.jkt is not the
	// thumbprint of the proof's key (or the token is not bound at all).
	ReasonTokenBindingMismatch authn.Reason = "token_binding_mismatch"
	// ReasonBoundTokenAsBearer: a DPoP-bound token (cnf.jkt) was presented
	// with the Bearer scheme (RFC 9449 section 7.1).
	ReasonBoundTokenAsBearer authn.Reason = "dpop_bound_token_as_bearer"
	// ReasonReplayCheckUnavailable: the replay cache could not answer
	// (store error, or the in-memory cache is full): the request is refused
	// with 503, never let through unchecked.
	ReasonReplayCheckUnavailable authn.Reason = "dpop_replay_check_unavailable"
)

// Check names the check a proof failed: the detail of ReasonProofInvalid
// (and of the other reasons), for logs and tests only, never for clients.
type Check string

// The checks of Verify, in the order they run.
const (
	CheckMissing      Check = "missing"       // no DPoP header
	CheckHeaderCount  Check = "header_count"  // several DPoP headers, or a comma list
	CheckSize         Check = "size"          // longer than MaxProofBytes
	CheckSyntax       Check = "syntax"        // not a compact JWS, header not JSON, claims not a JSON object
	CheckTyp          Check = "typ"           // typ is not dpop+jwt
	CheckAlg          Check = "alg"           // alg missing, none, symmetric or not allowed
	CheckCrit         Check = "crit"          // crit or b64: no extension is implemented
	CheckJWKMissing   Check = "jwk_missing"   // no jwk header
	CheckJWKPrivate   Check = "jwk_private"   // jwk carries private (or symmetric) key material
	CheckJWKUnfit     Check = "jwk_unfit"     // jwk is not a key of alg's type, curve or size
	CheckSignature    Check = "signature"     // the signature does not verify with jwk
	CheckJTI          Check = "jti"           // jti missing, empty or too long
	CheckHTM          Check = "htm"           // htm missing or not the request method
	CheckHTU          Check = "htu"           // htu missing, unparsable or not the request URI
	CheckNonceMissing Check = "nonce_missing" // nonces required, none in the proof
	CheckNonceInvalid Check = "nonce_invalid" // not a nonce of this server, or expired
	CheckIATMissing   Check = "iat_missing"   // iat missing or not a number
	CheckIATStale     Check = "iat_stale"     // iat older than MaxAge + ClockSkew
	CheckIATFuture    Check = "iat_future"    // iat later than now + ClockSkew
	CheckATHMissing   Check = "ath_missing"   // an access token is presented, the proof has no ath
	CheckATH          Check = "ath"           // ath is not the hash of the access token
	CheckReplay       Check = "replay"        // (key, jti) seen before
	CheckReplayStore  Check = "replay_store"  // the replay cache failed or is full
	CheckJKT          Check = "jkt"           // cnf.jkt differs from the proof key
	CheckUnbound      Check = "unbound"       // DPoP scheme with a token that has no cnf.jkt
	CheckBearerScheme Check = "bearer"        // a bound token with the Bearer scheme
	CheckRequired     Check = "required"      // the route requires DPoP, the request uses Bearer
)

// OAuth error codes for the WWW-Authenticate challenge.
const (
	// ErrorInvalidProof is RFC 9449 section 7.1's invalid_dpop_proof.
	ErrorInvalidProof = "invalid_dpop_proof"
	// ErrorUseNonce is RFC 9449 section 9's use_dpop_nonce.
	ErrorUseNonce = "use_dpop_nonce"
	// ErrorInvalidToken is RFC 6750's invalid_token: the token is not
	// usable this way (binding mismatch, bound token sent as Bearer).
	ErrorInvalidToken = "invalid_token"
)

// Error is a DPoP check that failed. The pipeline maps it to 401 with a
// DPoP challenge (Verifier.Challenge), or to 503 when Unavailable.
type Error struct {
	Reason authn.Reason
	// Check is the failed check: for logs and tests, never for clients.
	Check Check
	// Code is the OAuth error code of the challenge (ErrorInvalidProof,
	// ErrorUseNonce, ErrorInvalidToken).
	Code string
	// Description is safe to show the client: it never says which value
	// was expected.
	Description string
	// Unavailable marks a check that could not be made (the replay cache
	// failed): the answer is 503, not 401.
	Unavailable bool
	// Err is the internal cause, for debug logs only.
	Err error
}

func (e *Error) Error() string {
	msg := "authn/dpop: " + string(e.Reason) + " (" + string(e.Check) + ")"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// AuthnError turns e into the authn package's outcome for method m: an
// *authn.UnavailableError when the check could not be made, an
// *authn.Failure otherwise. Either one unwraps to e, so the pipeline finds
// the challenge with errors.As.
func (e *Error) AuthnError(m identity.Method) error {
	if e.Unavailable {
		return &authn.UnavailableError{Method: m, Reason: e.Reason, Err: e}
	}
	return &authn.Failure{Method: m, Reason: e.Reason, Description: e.Description, Err: e}
}

// Client-safe descriptions.
const (
	descMissing   = "A DPoP proof is required."
	descInvalid   = "The DPoP proof is not valid."
	descReplayed  = "The DPoP proof was used before."
	descNonce     = "A DPoP proof with the server's current nonce is required."
	descBinding   = "The access token is not bound to the DPoP proof's key."
	descBearer    = "This access token is DPoP-bound and must be sent with the DPoP scheme."
	descRequired  = "This route requires a DPoP-bound access token."
	descReplayErr = "The DPoP proof could not be checked."
)

func newError(reason authn.Reason, check Check, err error) *Error {
	e := &Error{Reason: reason, Check: check, Code: ErrorInvalidProof, Err: err}
	switch reason {
	case ReasonProofMissing:
		e.Description = descMissing
		if check == CheckRequired {
			e.Description = descRequired
		}
	case ReasonProofReplayed:
		e.Description = descReplayed
	case ReasonNonceRequired:
		e.Code, e.Description = ErrorUseNonce, descNonce
	case ReasonTokenBindingMismatch:
		e.Code, e.Description = ErrorInvalidToken, descBinding
	case ReasonBoundTokenAsBearer:
		e.Code, e.Description = ErrorInvalidToken, descBearer
	case ReasonReplayCheckUnavailable:
		e.Description, e.Unavailable = descReplayErr, true
	default:
		e.Description = descInvalid
	}
	return e
}

// Challenge builds the value of a WWW-Authenticate header for the DPoP
// scheme (RFC 9449 sections 7.1 and 12.2): `DPoP error="…",
// error_description="…", algs="ES256 …"`. An empty code or description is
// left out; so is algs when empty. Values are made quoted-string safe by
// dropping every byte RFC 6750 does not allow in them (controls, '"',
// '\\', non-ASCII), so nothing a value holds can end the quoted string or
// start a new header.
func Challenge(code, description string, algs []string) string {
	var b strings.Builder
	b.Grow(64 + len(description))
	b.WriteString("DPoP")
	sep := " "
	param := func(name, value string) {
		value = quotable(value)
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
		sep = ", "
	}
	param("error", code)
	param("error_description", description)
	param("algs", strings.Join(algs, " "))
	return b.String()
}

// quotable keeps the bytes of RFC 6750's error_description grammar:
// %x20-21 / %x23-5B / %x5D-7E.
func quotable(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !quotableByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if quotableByte(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func quotableByte(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}
