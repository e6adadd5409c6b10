package dpop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// neverSeen is a replay cache that remembers nothing, so that a fuzzed
// input is judged on its own, not on what ran before it.
type neverSeen struct{}

func (neverSeen) SeenBefore(context.Context, ReplayKey, time.Time) (bool, error) { return false, nil }

// knownReasons are the reasons Verify may return.
var knownReasons = map[string]bool{
	string(ReasonProofMissing): true, string(ReasonProofInvalid): true, string(ReasonProofReplayed): true,
	string(ReasonNonceRequired): true, string(ReasonReplayCheckUnavailable): true,
}

// FuzzVerifyProof feeds arbitrary strings to Verify as the DPoP header. It
// must never panic, must return a typed *Error with a known reason and
// check, and must accept nothing but the valid proofs it was seeded with
// (up to the signature: ECDSA signatures are randomized, and a proof is
// self-contained, so the seeds' keys are fixed for every fuzz worker to
// agree on them). Its budget: nothing longer than MaxProofBytes is parsed.
func FuzzVerifyProof(f *testing.F) {
	ecFixed, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	edFixed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	v := newVerifier(f, Config{Replay: neverSeen{}})
	u := mustURL(f, testURL)
	ecJWK := jwkJSON(f, &ecFixed.PublicKey)
	seeds := []string{
		sign(f, proofSpec{alg: jose.ES256, key: ecFixed}),
		sign(f, proofSpec{alg: jose.EdDSA, key: edFixed}),
		sign(f, proofSpec{alg: jose.ES256, key: ecFixed, header: map[string]any{"jwk": jose.JSONWebKey{Key: ecFixed}}}),
		sign(f, proofSpec{alg: jose.HS256, key: testSecret, header: map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}),
		sign(f, proofSpec{alg: jose.ES256, key: ecFixed, claims: with("htu", "https://API.example.com:443/v1/./things?x#y")}),
		sign(f, proofSpec{alg: jose.EdDSA, key: edFixed, claims: with("iat", "1800000000", "jti", 1)}),
		rawProof(`{"typ":"dpop+jwt","alg":"none","jwk":`+ecJWK+`}`, `{"jti":"x","htm":"POST","htu":"`+testURL+`","iat":1800000000}`, nil),
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat(".", 100), "e30.e30.e30",
	}
	// The signing inputs (header and claims) of the valid seeds.
	valid := map[string]bool{}
	for _, s := range seeds {
		if _, err := v.Verify(context.Background(), s, testMethod, u, testToken); err == nil {
			valid[signingInput(s)] = true
		}
		f.Add(s)
	}
	if len(valid) < 3 {
		f.Fatalf("only %d valid seeds", len(valid))
	}
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := v.Verify(context.Background(), proof, testMethod, u, testToken)
		if err == nil {
			if !valid[signingInput(proof)] {
				t.Fatalf("accepted a proof that was never signed: %q", proof)
			}
			if p.JKT == "" {
				t.Fatal("accepted without a thumbprint")
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if !knownReasons[string(e.Reason)] || e.Check == "" || e.Code == "" || e.Description == "" {
			t.Fatalf("incomplete error: %+v", e)
		}
		if p != (Proof{}) {
			t.Fatalf("a proof with an error: %+v", p)
		}
		if len(proof) > DefaultMaxProofBytes && e.Check != CheckSize {
			t.Fatalf("a proof of %d bytes was parsed (%s)", len(proof), e.Check)
		}
	})
}

func signingInput(proof string) string {
	return proof[:strings.LastIndexByte(proof, '.')]
}

// FuzzNormalizeHTU checks htu normalization: idempotent, never longer than
// three times its input plus the scheme's, and its output has no query,
// fragment, dot segment, lower-case escape or byte a path may not hold.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		"https://api.example.com/v1/things", "HTTP://A.B:80/%7e/%2f/./../x?y#z", "https://[::1]:443",
		"https://h/a%", "https://h:0099999/", "http://h/%C3%A9 /", "https://h/..", "https:opaque", "//h/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeHTU(in)
		if err != nil {
			return
		}
		if len(out) > 3*len(in)+len("https://")+1 {
			t.Fatalf("%q grew to %d bytes", in, len(out))
		}
		if !strings.HasPrefix(out, "http://") && !strings.HasPrefix(out, "https://") {
			t.Fatalf("%q → %q: not http(s)", in, out)
		}
		again, err := NormalizeHTU(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("%q → %q: unparsable: %v", in, out, err)
		}
		path := u.EscapedPath()
		if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(out, "?# \x00\r\n") {
			t.Fatalf("%q → %q: query, fragment or bad bytes", in, out)
		}
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q → %q: a dot segment", in, out)
			}
		}
		for i := 0; i < len(path); i++ {
			c := path[i]
			if c == '%' {
				if i+2 >= len(path) || strings.ContainsAny(path[i+1:i+3], "abcdef") {
					t.Fatalf("%q → %q: escape not normalized", in, out)
				}
				continue
			}
			if !pathByte(c) {
				t.Fatalf("%q → %q: byte %q unescaped", in, out, c)
			}
		}
	})
}
