package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// TestHostileTokens feeds attacks and near misses to the verifier, each with
// the exact reason it must be refused for.
func TestHostileTokens(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	valid := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))
	vh, vp, _ := strings.Cut(valid, ".")
	vp, _, _ = strings.Cut(vp, ".")

	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsaA.PublicKey))})
	derPub := must(x509.MarshalPKIXPublicKey(&k.rsaA.PublicKey))
	pkcs1Pub := x509.MarshalPKCS1PublicKey(&k.rsaA.PublicKey)
	pemMix := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsaMix.PublicKey))})
	derMix := must(x509.MarshalPKIXPublicKey(&k.rsaMix.PublicKey))

	jwe := func() string {
		enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &k.rsaA.PublicKey}, nil)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := enc.Encrypt([]byte(`{"iss":"` + issA + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		return must(obj.CompactSerialize())
	}()

	// ES256 header, but an ECDSA P-384 signature over SHA-256.
	es256WithP384 := func(kid string) string {
		h := map[string]any{"alg": "ES256", "kid": kid}
		input := b64(h) + "." + b64(claims(issA, nil))
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k.ec384, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 96)
		r.FillBytes(sig[:48])
		s.FillBytes(sig[48:])
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}

	// RS256 header and a genuine RS256 signature, made with key.
	rs256Raw := func(h map[string]any, key *rsa.PrivateKey) string {
		input := b64(h) + "." + b64(claims(issA, nil))
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	attackerJWK := jose.JSONWebKey{Key: &k.attacker.PublicKey, KeyID: "evil"}
	attackerPrivJWK := jose.JSONWebKey{Key: k.attacker, KeyID: "evil"}

	// A valid signature whose last base64url character carries non-zero
	// unused bits: the same bytes, spelled differently.
	noncanonical := func() string {
		sig := valid[strings.LastIndexByte(valid, '.')+1:]
		last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
		if len(sig)%4 == 0 {
			t.Skip("signature length has no unused bits")
		}
		alt := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1]
		return valid[:len(valid)-1] + string(alt)
	}()

	for _, tc := range []struct {
		name  string
		token string
		want  authn.Reason
	}{
		{"alg none", rawToken(map[string]any{"alg": "none", "kid": "rsa"}, claims(issA, nil), nil), authn.ReasonAlgorithm},
		{"alg None mixed case", rawToken(map[string]any{"alg": "None"}, claims(issA, nil), nil), authn.ReasonAlgorithm},
		{"alg missing", rawToken(map[string]any{"kid": "rsa"}, claims(issA, nil), []byte("sig")), authn.ReasonAlgorithm},
		{"alg unknown", rawToken(map[string]any{"alg": "ES256K", "kid": "rsa"}, claims(issA, nil), []byte("sig")), authn.ReasonAlgorithm},
		{"HS256 keyed with RSA public key PEM", sign(t, jose.HS256, pemPub, "rsa", claims(issA, nil)), authn.ReasonAlgorithm},
		{"HS256 keyed with RSA public key DER", sign(t, jose.HS256, derPub, "rsa", claims(issA, nil)), authn.ReasonAlgorithm},
		{"HS256 keyed with RSA public key PKCS1", sign(t, jose.HS256, pkcs1Pub, "rsa", claims(issA, nil)), authn.ReasonAlgorithm},
		{"HS256 keyed with RSA public key PEM, HS256 allowed", sign(t, jose.HS256, pemMix, "rsa-mix", claims(issMix, nil)), authn.ReasonBadSignature},
		{"HS256 keyed with RSA public key DER, HS256 allowed", sign(t, jose.HS256, derMix, "rsa-mix", claims(issMix, nil)), authn.ReasonBadSignature},
		{"HS256 keyed with RSA public key, HS256 allowed, no kid", sign(t, jose.HS256, derMix, "", claims(issMix, nil)), authn.ReasonBadSignature},
		{"RS256 token for HMAC-only provider", sign(t, jose.RS256, k.rsaA, "hs", claims(issH, nil)), authn.ReasonAlgorithm},
		{"tampered payload", vh + "." + b64(claims(issA, map[string]any{"sub": "admin"})) + "." + valid[strings.LastIndexByte(valid, '.')+1:], authn.ReasonBadSignature},
		{"stripped signature", vh + "." + vp + ".", authn.ReasonBadSignature},
		{"signature of another token", vh + "." + vp + "." + b64("x"), authn.ReasonBadSignature},
		{"unknown kid", sign(t, jose.RS256, k.rsaA, "nope", claims(issA, nil)), authn.ReasonUnknownKID},
		{"kid path traversal", sign(t, jose.RS256, k.rsaA, "../../etc/passwd", claims(issA, nil)), authn.ReasonUnknownKID},
		{"kid SQL injection", sign(t, jose.RS256, k.rsaA, "' OR 1=1 --", claims(issA, nil)), authn.ReasonUnknownKID},
		{"jku to attacker", sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil), header("jku", "https://evil.example/jwks.json")), authn.ReasonKeyHeader},
		{"x5u to attacker", sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil), header("x5u", "https://evil.example/cert.pem")), authn.ReasonKeyHeader},
		{"jwk of attacker", sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil), func(so *jose.SignerOptions) { so.EmbedJWK = true }), authn.ReasonKeyHeader},
		{"jwk of attacker, no kid", rs256Raw(map[string]any{"alg": "RS256", "jwk": attackerJWK}, k.attacker), authn.ReasonKeyHeader},
		{"jwk with private key", rs256Raw(map[string]any{"alg": "RS256", "kid": "rsa", "jwk": attackerPrivJWK}, k.attacker), authn.ReasonKeyHeader},
		{"jwk invalid", rs256Raw(map[string]any{"alg": "RS256", "kid": "rsa", "jwk": "x"}, k.attacker), authn.ReasonKeyHeader},
		{"expired", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": testNow.Add(-31 * time.Second).Unix()})), authn.ReasonExpired},
		{"not yet valid", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"nbf": testNow.Add(31 * time.Second).Unix()})), authn.ReasonNotYetValid},
		{"issued in the future", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"iat": testNow.Add(31 * time.Second).Unix(), "nbf": nil})), authn.ReasonIssuedInFuture},
		{"lifetime over maximum", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": testNow.Add(2 * time.Hour).Unix()})), authn.ReasonLifetime},
		{"iat missing with maximum lifetime", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"iat": nil})), authn.ReasonMissingClaim},
		{"exp missing", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": nil})), authn.ReasonMissingClaim},
		{"exp null", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": json.RawMessage("null")})), authn.ReasonMissingClaim},
		{"exp a string", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": "1900000000"})), authn.ReasonMalformed},
		{"nbf a string", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"nbf": "0"})), authn.ReasonMalformed},
		{"wrong audience", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": "https://other.example.com"})), authn.ReasonAudience},
		{"wrong audience array", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": []string{"x", "y"}})), authn.ReasonAudience},
		{"audience a number", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": 1})), authn.ReasonAudience},
		{"audience missing", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": nil})), authn.ReasonMissingClaim},
		{"audience prefix", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": aud + "/"})), authn.ReasonAudience},
		{"wrong issuer", sign(t, jose.RS256, k.rsaA, "rsa", claims("https://evil.example.com", nil)), authn.ReasonUnknownIssuer},
		{"issuer with trailing slash", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA+"/", nil)), authn.ReasonUnknownIssuer},
		{"issuer missing", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"iss": nil})), authn.ReasonMissingClaim},
		{"issuer not a string", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"iss": []string{issA}})), authn.ReasonMalformed},
		{"A's iss signed with B's key and A's kid", sign(t, jose.RS256, k.rsaB, "rsa", claims(issA, nil)), authn.ReasonBadSignature},
		{"A's iss signed with B's key, no kid", sign(t, jose.RS256, k.rsaB, "", claims(issA, nil)), authn.ReasonBadSignature},
		{"A's iss signed with B's key and B's kid", sign(t, jose.RS256, k.rsaB, "rsa-b", claims(issA, nil)), authn.ReasonUnknownKID},
		{"crit unknown", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil), func(so *jose.SignerOptions) { so.WithCritical("exp") }), authn.ReasonCrit},
		{"crit empty", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil), header("crit", []string{})), authn.ReasonCrit},
		{"crit b64", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil), func(so *jose.SignerOptions) { so.WithBase64(false).WithCritical("b64") }), authn.ReasonCrit},
		{"b64 without crit", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil), header("b64", true)), authn.ReasonCrit},
		{"nested JWT", sign(t, jose.RS256, k.rsaA, "rsa", valid, func(so *jose.SignerOptions) { so.WithContentType("JWT") }), authn.ReasonNested},
		{"nested jwt lower case", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil), func(so *jose.SignerOptions) { so.WithContentType("application/jwt") }), authn.ReasonNested},
		{"JWE compact", jwe, authn.ReasonEncrypted},
		{"five empty parts", "....", authn.ReasonEncrypted},
		{"oversized", strings.Repeat("a", DefaultMaxTokenBytes+1), authn.ReasonTooLarge},
		{"malformed base64", "eyJ!!!.eyJ.abc", authn.ReasonMalformed},
		{"padded base64", vh + "=." + vp + ".abc", authn.ReasonMalformed},
		{"newline inside", vh + "\n." + vp + ".abc", authn.ReasonMalformed},
		{"whitespace around", " " + valid, authn.ReasonMalformed},
		{"non-canonical base64", noncanonical, authn.ReasonMalformed},
		// Not a JWS at all: an opaque token, described as such.
		{"one part", vh, authn.ReasonUnsupported},
		{"two parts", vh + "." + vp, authn.ReasonUnsupported},
		{"four parts", valid + ".x", authn.ReasonUnsupported},
		{"opaque Hydra-style token", "ory_at_Yn8Lh0QpFzqk3JQ1aXc.ZlR0d3Z1X2R6bVhJ", authn.ReasonUnsupported},
		{"opaque token with b64token characters", "tok~en+with/slash==", authn.ReasonUnsupported},
		{"one part, not a bearer token", "not a token", authn.ReasonMalformed},
		{"padding only", "==", authn.ReasonMalformed},
		{"empty", "", authn.ReasonMalformed},
		{"header not JSON", b64("hello") + "." + vp + ".abc", authn.ReasonMalformed},
		{"header a JSON array", b64("[]") + "." + vp + ".abc", authn.ReasonMalformed},
		{"payload not JSON", sign(t, jose.RS256, k.rsaA, "rsa", "not json"), authn.ReasonMalformed},
		{"payload a JSON array", sign(t, jose.RS256, k.rsaA, "rsa", []string{issA}), authn.ReasonMalformed},
		{"payload null", sign(t, jose.RS256, k.rsaA, "rsa", nil), authn.ReasonMalformed},
		{"payload with trailing data", rawToken(map[string]any{"alg": "RS256", "kid": "rsa"}, `{"iss":"`+issA+`"} {}`, []byte("sig")), authn.ReasonMalformed},
		{"ES256 signed with a P-384 key", es256WithP384("ec384"), authn.ReasonBadSignature},
		{"ES256 signed with a P-384 key, no kid", es256WithP384(""), authn.ReasonBadSignature},
		{"ES384 token verified with P-256 key only", sign(t, jose.ES384, k.ec384, "ec", claims(issA, nil)), authn.ReasonBadSignature},
		{"EdDSA signature claimed as RS256", rawToken(map[string]any{"alg": "RS256", "kid": "ed"}, claims(issA, nil), make([]byte, 64)), authn.ReasonBadSignature},
		{"RSA key under 2048 bits", sign(t, jose.RS256, k.rsa1024, "weak", claims(issWk, nil)), authn.ReasonBadSignature},
		{"subject missing", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": nil})), authn.ReasonMissingClaim},
		{"subject empty", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": ""})), authn.ReasonMissingClaim},
		{"subject an object", sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": map[string]any{"id": 1}})), authn.ReasonMissingClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.v.Verify(context.Background(), tc.token)
			if id != nil {
				t.Fatalf("accepted: %+v", id)
			}
			var fail *authn.Failure
			if !errors.As(err, &fail) {
				t.Fatalf("err = %v (%T), want *authn.Failure", err, err)
			}
			if fail.Reason != tc.want {
				t.Fatalf("reason = %q, want %q (%v)", fail.Reason, tc.want, fail.Err)
			}
			if fail.Method != identity.MethodJWT || fail.Description == "" {
				t.Errorf("failure = %+v", fail)
			}
			if tc.token != "" && strings.Contains(err.Error()+fail.Description, tc.token) {
				t.Errorf("error repeats the token: %v", err)
			}
		})
	}
}

// TestFailureAuditFields checks what a Failure records: the selected
// provider always, the subject and jti only from a token whose signature
// verified.
func TestFailureAuditFields(t *testing.T) {
	k := keys()
	f := newFixture(t, nil)
	ctx := context.Background()

	_, err := f.v.Verify(ctx, sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": testNow.Add(-time.Hour).Unix(), "iat": testNow.Add(-2 * time.Hour).Unix()})))
	var fail *authn.Failure
	if !errors.As(err, &fail) || fail.Reason != authn.ReasonExpired {
		t.Fatalf("err = %v", err)
	}
	if fail.Issuer != issA || fail.Provider != "a" || fail.Subject != "user-1" || fail.CredentialID != "jti-1" || fail.Description != "The access token is expired." {
		t.Errorf("expired: %+v", fail)
	}

	_, err = f.v.Verify(ctx, sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil)))
	if !errors.As(err, &fail) || fail.Reason != authn.ReasonBadSignature {
		t.Fatalf("err = %v", err)
	}
	if fail.Issuer != issA || fail.Provider != "a" || fail.Subject != "" || fail.CredentialID != "" {
		t.Errorf("forged token: unverified subject or jti recorded: %+v", fail)
	}
	if fail.Description != "The access token is not valid." {
		t.Errorf("description = %q", fail.Description)
	}

	_, err = f.v.Verify(ctx, sign(t, jose.RS256, k.rsaA, "rsa", claims(strings.Repeat("x", 1000), nil)))
	if !errors.As(err, &fail) || fail.Reason != authn.ReasonUnknownIssuer || len(fail.Issuer) != maxAuditIssuer || fail.Provider != "" {
		t.Errorf("unknown issuer: %+v", fail)
	}
}

// TestUnavailable checks that keys the provider cannot supply fail closed
// with an *authn.UnavailableError, not a Failure, and that the key set's
// error stays inspectable.
func TestUnavailable(t *testing.T) {
	k := keys()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"keyset unavailable", errUnavailableForTest},
		{"unexpected error", errors.New("boom")},
		{"context cancelled", context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.srcA.err = tc.err
			id, err := f.v.Verify(context.Background(), sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil)))
			var u *authn.UnavailableError
			if id != nil || !errors.As(err, &u) {
				t.Fatalf("id = %v, err = %v", id, err)
			}
			if u.Reason != authn.ReasonKeysUnavailable || u.Provider != "a" || u.Method != identity.MethodJWT || !errors.Is(err, tc.err) {
				t.Errorf("unavailable = %+v", u)
			}
		})
	}
}
