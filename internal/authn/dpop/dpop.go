// Package dpop verifies DPoP proofs (RFC 9449): the per-request JWS with
// which a client proves that it holds the private key an access token is
// bound to, so that a stolen token is useless without that key.
//
// A Verifier is built once from a Config and is safe for concurrent use.
// Per request the caller (the JWT method, later introspection):
//
//  1. reads the Authorization scheme; for Bearer, once the token is
//     verified, calls CheckBearer with the route's Mode and the token's cnf
//     claim: a token bound to a key is refused (RFC 9449 section 7.1), and
//     under ModeRequired every Bearer token;
//  2. for the DPoP scheme, verifies the access token as usual, then calls
//     VerifyRequest with the request, its externally visible URL
//     (RequestURL), the token and its cnf claim: the one DPoP header
//     (ProofFromHeader), the proof (Verify) and the binding of cnf.jkt to
//     the proof key (CheckBinding).
//
// The proof is checked on every request; a cache of verified tokens may
// skip the token's signature, never the proof. Errors are *Error values
// with a stable reason (an authn.Reason) and the OAuth error code of the
// challenge; Error.AuthnError makes them the authn package's outcomes, and
// Verifier.Challenge builds the WWW-Authenticate value and, for
// use_dpop_nonce, the DPoP-Nonce to send.
package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Scheme is the Authorization scheme of DPoP-bound tokens.
const Scheme = "DPoP"

// HeaderNonce is the response header that carries a server nonce.
const HeaderNonce = "DPoP-Nonce"

// Defaults of Config.
const (
	DefaultMaxAge        = 60 * time.Second
	DefaultClockSkew     = 30 * time.Second
	DefaultMaxProofBytes = 8 << 10
	// MaxJTIBytes bounds jti. Proofs use UUIDs or 96+ random bits; the
	// replay cache hashes it in any case.
	MaxJTIBytes = 256
)

// DefaultAlgorithms are the algorithms accepted when Config.Algorithms is
// empty: the asymmetric ones clients use, strongest-used first.
var DefaultAlgorithms = []string{"ES256", "ES384", "PS256", "RS256", "EdDSA"}

// supported are the algorithms a proof may use at all: asymmetric only.
// none and the HMAC algorithms are never accepted, whatever the config:
// a proof's key is public, so a MAC keyed with it proves nothing.
var supported = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.EdDSA,
}

// Config configures a Verifier. The zero value (with a Replay cache or
// none, see Replay) is a secure default.
type Config struct {
	// Algorithms a proof may be signed with. Default DefaultAlgorithms.
	// Only asymmetric algorithms (ES*, RS*, PS*, EdDSA) may be listed:
	// none and HS* are refused by New.
	Algorithms []string
	// MaxAge is how old a proof's iat may be. Default 60s. Together with
	// ClockSkew it is the window in which a captured proof could be
	// replayed, and how long the replay cache remembers it.
	MaxAge time.Duration
	// ClockSkew is the leeway for iat in both directions. Default 30s.
	ClockSkew time.Duration
	// MaxProofBytes bounds the DPoP header, checked before any parsing.
	// Default 8 KiB (an RSA-4096 proof has about 1.5 KiB).
	MaxProofBytes int
	// Nonces, when set, makes server nonces required: a proof must carry
	// a nonce Nonces issued (RFC 9449 section 8).
	Nonces *Nonces
	// Replay remembers accepted proofs. nil: a MemoryReplayCache of
	// DefaultReplayEntries owned by this Verifier (one replica only).
	Replay ReplayCache
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs. Build it with New; it is immutable and safe
// for concurrent use.
type Verifier struct {
	algs      []jose.SignatureAlgorithm
	algNames  []string
	maxAge    time.Duration
	skew      time.Duration
	maxBytes  int
	nonces    *Nonces
	replay    ReplayCache
	now       func() time.Time
	challenge string // the challenge without error, for a missing proof
}

// Proof is what a verified proof tells the caller.
type Proof struct {
	// JKT is the proof key's RFC 7638 JWK SHA-256 thumbprint, base64url
	// without padding: compare it with the token's cnf.jkt.
	JKT string
	// JTI is the proof's jti (for debug logs; the audit credential id
	// remains the token's).
	JTI string
	// Algorithm is the proof's alg.
	Algorithm string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
}

// New compiles cfg into a Verifier.
func New(cfg Config) (*Verifier, error) {
	names := cfg.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	v := &Verifier{
		maxAge:   cfg.MaxAge,
		skew:     cfg.ClockSkew,
		maxBytes: cfg.MaxProofBytes,
		nonces:   cfg.Nonces,
		replay:   cfg.Replay,
		now:      cfg.Now,
	}
	for _, n := range names {
		a := jose.SignatureAlgorithm(n)
		if !slices.Contains(supported, a) {
			return nil, fmt.Errorf("authn/dpop: algorithm %q is not allowed for DPoP proofs (asymmetric algorithms only: %s)", n, algList(supported))
		}
		if !slices.Contains(v.algs, a) {
			v.algs = append(v.algs, a)
			v.algNames = append(v.algNames, n)
		}
	}
	switch {
	case v.maxAge == 0:
		v.maxAge = DefaultMaxAge
	case v.maxAge < 0:
		return nil, errors.New("authn/dpop: negative max age")
	}
	switch {
	case cfg.ClockSkew == 0:
		v.skew = DefaultClockSkew
	case cfg.ClockSkew < 0:
		return nil, errors.New("authn/dpop: negative clock skew")
	}
	switch {
	case v.maxBytes == 0:
		v.maxBytes = DefaultMaxProofBytes
	case v.maxBytes < 512:
		return nil, fmt.Errorf("authn/dpop: max proof size %d is too small for any proof", v.maxBytes)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.replay == nil {
		v.replay = NewMemoryReplayCache(DefaultReplayEntries, v.now)
	}
	v.challenge = Challenge("", "", v.algNames)
	return v, nil
}

func algList(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, " ")
}

// Algorithms returns the accepted algorithms, for the challenge's algs.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algNames) }

// NoncesRequired reports whether proofs must carry a server nonce.
func (v *Verifier) NoncesRequired() bool { return v.nonces != nil }

// NextNonce returns a fresh nonce for the DPoP-Nonce header, or "" when
// nonces are not configured. Sending one on successful responses too
// (RFC 9449 section 8.2) saves clients a round trip when a slot ends.
func (v *Verifier) NextNonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.Next()
}

// Challenge returns the WWW-Authenticate value for a refusal caused by err
// (nil or a non-DPoP error: the bare `DPoP algs="…"` challenge, for a
// request with no credential at all; a DPoP error always names its error
// code, dpop_proof_missing too: a token was presented) and the
// DPoP-Nonce header value to send with it ("" for none): a fresh nonce
// for ReasonNonceRequired.
func (v *Verifier) Challenge(err error) (wwwAuthenticate, nonce string) {
	var e *Error
	if !errors.As(err, &e) {
		return v.challenge, ""
	}
	if e.Reason == ReasonNonceRequired {
		nonce = v.NextNonce()
	}
	return Challenge(e.Code, e.Description, v.algNames), nonce
}

// claims are the proof's claims. Pointers tell absent from empty.
type claims struct {
	JTI   *string         `json:"jti"`
	HTM   *string         `json:"htm"`
	HTU   *string         `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// rawHeader is the protected header, read before go-jose parses it, to
// tell the client's mistakes apart and to refuse private keys by their
// members rather than by an error message.
type rawHeader struct {
	Typ  *string         `json:"typ"`
	Alg  *string         `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// privateMembers are the JWK members of private and symmetric keys
// (RFC 7518 section 6; "priv" of ML-DSA keys).
type privateMembers struct {
	D    json.RawMessage `json:"d"`
	P    json.RawMessage `json:"p"`
	Q    json.RawMessage `json:"q"`
	DP   json.RawMessage `json:"dp"`
	DQ   json.RawMessage `json:"dq"`
	QI   json.RawMessage `json:"qi"`
	Oth  json.RawMessage `json:"oth"`
	K    json.RawMessage `json:"k"`
	Priv json.RawMessage `json:"priv"`
}

func (m *privateMembers) any() bool {
	return m.D != nil || m.P != nil || m.Q != nil || m.DP != nil || m.DQ != nil ||
		m.QI != nil || m.Oth != nil || m.K != nil || m.Priv != nil
}

// Verify checks proof, the value of the request's one DPoP header, against
// the request: its method, its externally visible URL (RequestURL) and the
// access token presented with it ("" when there is none: ath is then not
// checked). It returns the proof's key thumbprint, or an *Error.
//
// The checks of RFC 9449 section 4.3 run in this order, each with its
// Check: size; compact JWS syntax and a JSON header; typ dpop+jwt; alg
// among Algorithms; no crit/b64; a jwk that is a public key (private or
// symmetric members refused), fit for alg; the signature with that jwk;
// claims a JSON object; jti; htm; htu; nonce (when required:
// ReasonNonceRequired); iat within [now-MaxAge-ClockSkew, now+ClockSkew];
// ath; and last, the replay cache (ReasonProofReplayed), so that only
// proofs that passed everything else take room in it.
func (v *Verifier) Verify(ctx context.Context, proof, method string, requestURL *url.URL, accessToken string) (Proof, error) {
	// Size and shape, before any decoding.
	switch {
	case proof == "":
		return Proof{}, newError(ReasonProofMissing, CheckMissing, nil)
	case len(proof) > v.maxBytes:
		return Proof{}, newError(ReasonProofInvalid, CheckSize, fmt.Errorf("authn/dpop: proof of %d bytes exceeds %d", len(proof), v.maxBytes))
	case !compactShape(proof):
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, errShape)
	}

	// The protected header, read once before go-jose, for typ, alg and the
	// key's private members.
	var rh rawHeader
	if err := decodeHeader(proof, &rh); err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, err)
	}
	if rh.Typ == nil || !strings.EqualFold(*rh.Typ, "dpop+jwt") {
		return Proof{}, newError(ReasonProofInvalid, CheckTyp, errTyp)
	}
	if rh.Alg == nil || !slices.Contains(v.algs, jose.SignatureAlgorithm(*rh.Alg)) {
		return Proof{}, newError(ReasonProofInvalid, CheckAlg, errAlg)
	}
	alg := jose.SignatureAlgorithm(*rh.Alg)
	if rh.Crit != nil || rh.B64 != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckCrit, errCrit)
	}
	if rh.JWK == nil || string(rh.JWK) == "null" {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKMissing, errJWKMissing)
	}
	var pm privateMembers
	if err := json.Unmarshal(rh.JWK, &pm); err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, fmt.Errorf("authn/dpop: jwk: %w", err))
	}
	if pm.any() {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKPrivate, errJWKPrivate)
	}

	jws, err := jose.ParseSignedCompact(proof, v.algs)
	if err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, fmt.Errorf("authn/dpop: %w", err))
	}
	if len(jws.Signatures) != 1 {
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, errShape)
	}
	h := &jws.Signatures[0].Header
	jwk := h.JSONWebKey
	if jwk == nil {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKMissing, errJWKMissing)
	}
	if !jwk.Valid() || !jwk.IsPublic() {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKPrivate, errJWKPrivate)
	}
	if !keyFits(alg, jwk) {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKUnfit, fmt.Errorf("authn/dpop: jwk is not a %s key", alg))
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckSignature, fmt.Errorf("authn/dpop: %w", err))
	}

	// Claims, now authentic.
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckSyntax, fmt.Errorf("authn/dpop: claims: %w", err))
	}
	if c.JTI == nil || *c.JTI == "" || len(*c.JTI) > MaxJTIBytes {
		return Proof{}, newError(ReasonProofInvalid, CheckJTI, errJTI)
	}
	if c.HTM == nil || *c.HTM != method {
		return Proof{}, newError(ReasonProofInvalid, CheckHTM, errHTM)
	}
	if c.HTU == nil {
		return Proof{}, newError(ReasonProofInvalid, CheckHTU, errHTUMissing)
	}
	if err := matchHTU(*c.HTU, requestURL); err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckHTU, err)
	}
	if v.nonces != nil {
		switch {
		case c.Nonce == nil:
			return Proof{}, newError(ReasonNonceRequired, CheckNonceMissing, errNonceMissing)
		case !v.nonces.Valid(*c.Nonce):
			return Proof{}, newError(ReasonNonceRequired, CheckNonceInvalid, errNonceInvalid)
		}
	}
	iat, ok := numericDate(c.IAT)
	if !ok {
		return Proof{}, newError(ReasonProofInvalid, CheckIATMissing, errIAT)
	}
	now := v.now()
	if iat.After(now.Add(v.skew)) {
		return Proof{}, newError(ReasonProofInvalid, CheckIATFuture, fmt.Errorf("authn/dpop: iat is %s ahead", iat.Sub(now).Round(time.Second)))
	}
	until := iat.Add(v.maxAge + v.skew)
	if !now.Before(until) {
		return Proof{}, newError(ReasonProofInvalid, CheckIATStale, fmt.Errorf("authn/dpop: iat is %s old", now.Sub(iat).Round(time.Second)))
	}
	if accessToken != "" {
		if c.ATH == nil {
			return Proof{}, newError(ReasonProofInvalid, CheckATHMissing, errATHMissing)
		}
		want := AccessTokenHash(accessToken)
		if subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return Proof{}, newError(ReasonProofInvalid, CheckATH, errATH)
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, newError(ReasonProofInvalid, CheckJWKUnfit, fmt.Errorf("authn/dpop: thumbprint: %w", err))
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)

	// Replay, last.
	seen, err := v.replay.SeenBefore(ctx, replayKey(jkt, *c.JTI), until)
	switch {
	case err != nil:
		return Proof{}, newError(ReasonReplayCheckUnavailable, CheckReplayStore, fmt.Errorf("authn/dpop: replay cache: %w", err))
	case seen:
		return Proof{}, newError(ReasonProofReplayed, CheckReplay, errReplay)
	}
	return Proof{JKT: jkt, JTI: *c.JTI, Algorithm: string(alg), IssuedAt: iat}, nil
}

// matchHTU compares the htu claim with the request URL, both normalized.
func matchHTU(htu string, requestURL *url.URL) error {
	if requestURL == nil {
		return errors.New("authn/dpop: no request URL")
	}
	got, err := NormalizeHTU(htu)
	if err != nil {
		return err
	}
	want, err := normalizeURL(requestURL)
	if err != nil {
		return fmt.Errorf("authn/dpop: request URL: %w", err)
	}
	if got != want {
		return errHTU
	}
	return nil
}

// numericDate reads iat: a JSON number of seconds (fractions allowed;
// not a string), within a sane range.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// AccessTokenHash is the ath of a token: base64url(SHA-256(token)).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// compactShape: three dot-separated parts of base64url characters only.
// It also refuses what Go's decoder would skip (CR, LF) or accept
// (padding).
func compactShape(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// decodeHeader decodes the protected header of a compact JWS into h.
func decodeHeader(proof string, h *rawHeader) error {
	enc, _, _ := strings.Cut(proof, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return fmt.Errorf("authn/dpop: header: %w", err)
	}
	if err := json.Unmarshal(b, h); err != nil {
		return fmt.Errorf("authn/dpop: header: %w", err)
	}
	return nil
}

// minRSABits and maxRSABits bound an RSA proof key: RFC 7518 section 3.3's
// minimum, and a maximum that keeps verification cheap.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// keyFits reports whether the proof key suits alg: type, curve and size,
// and, when the jwk says so, its use and alg.
func keyFits(alg jose.SignatureAlgorithm, k *jose.JSONWebKey) bool {
	if k.Use != "" && k.Use != "sig" || k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		pk, ok := k.Key.(*rsa.PublicKey)
		return ok && pk.N != nil && pk.N.BitLen() >= minRSABits && pk.N.BitLen() <= maxRSABits
	case jose.ES256:
		return onCurve(k.Key, elliptic.P256())
	case jose.ES384:
		return onCurve(k.Key, elliptic.P384())
	case jose.ES512:
		return onCurve(k.Key, elliptic.P521())
	case jose.EdDSA:
		pk, ok := k.Key.(ed25519.PublicKey)
		return ok && len(pk) == ed25519.PublicKeySize
	}
	return false
}

func onCurve(key any, c elliptic.Curve) bool {
	pk, ok := key.(*ecdsa.PublicKey)
	return ok && pk.Curve == c
}

var (
	errShape        = errors.New("authn/dpop: not a compact JWS of three base64url parts")
	errTyp          = errors.New("authn/dpop: typ is not dpop+jwt")
	errAlg          = errors.New("authn/dpop: alg is missing or not allowed")
	errCrit         = errors.New("authn/dpop: crit or b64 header: no extension is supported")
	errJWKMissing   = errors.New("authn/dpop: no jwk header")
	errJWKPrivate   = errors.New("authn/dpop: jwk is not a public key")
	errJTI          = errors.New("authn/dpop: jti is missing, empty or too long")
	errHTM          = errors.New("authn/dpop: htm is missing or not the request method")
	errHTUMissing   = errors.New("authn/dpop: htu is missing")
	errHTU          = errors.New("authn/dpop: htu is not the request URI")
	errNonceMissing = errors.New("authn/dpop: no nonce")
	errNonceInvalid = errors.New("authn/dpop: nonce is not valid")
	errIAT          = errors.New("authn/dpop: iat is missing or not a number")
	errATHMissing   = errors.New("authn/dpop: no ath with an access token")
	errATH          = errors.New("authn/dpop: ath is not the access token's hash")
	errReplay       = errors.New("authn/dpop: proof replayed")
	errHeaderCount  = errors.New("authn/dpop: not exactly one DPoP header value")
	errUnbound      = errors.New("authn/dpop: access token has no cnf.jkt")
	errBinding      = errors.New("authn/dpop: cnf.jkt is not the proof key's thumbprint")
	errBearer       = errors.New("authn/dpop: DPoP-bound token presented as Bearer")
	errRequired     = errors.New("authn/dpop: the route requires DPoP")
)
