package login

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"

	jose "github.com/go-jose/go-jose/v4"
)

// idTokenAlgorithms are the signature algorithms an ID token may carry
// for its header to be read here. The verifier has already checked the
// token against the provider's own list; this only reads alg back.
var idTokenAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// checkATHash compares the at_hash claim of a verified ID token with the
// access token that came with it (OIDC Core 3.1.3.8 and 3.3.2.11): the
// left half of the access token's hash with the hash function of the ID
// token's alg, base64url. A mismatch means the access token was swapped
// in the token response; at_hash is optional for the code flow, so only
// a present claim is checked.
func checkATHash(rawIDToken, accessToken string, claim any) error {
	want, ok := claim.(string)
	if !ok || want == "" {
		return errors.New("authn/login: at_hash is not a string")
	}
	jws, err := jose.ParseSignedCompact(rawIDToken, idTokenAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return fmt.Errorf("authn/login: ID token header: %v", err)
	}
	var h hash.Hash
	switch alg := jose.SignatureAlgorithm(jws.Signatures[0].Protected.Algorithm); alg {
	case jose.RS256, jose.PS256, jose.ES256:
		h = sha256.New()
	case jose.RS384, jose.PS384, jose.ES384:
		h = sha512.New384()
	case jose.RS512, jose.PS512, jose.ES512, jose.EdDSA:
		// EdDSA: SHA-512 for Ed25519 (OpenID Connect Core errata 2).
		h = sha512.New()
	default:
		return fmt.Errorf("authn/login: no at_hash function for alg %q", alg)
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	got := base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("authn/login: at_hash does not match the access token")
	}
	return nil
}
