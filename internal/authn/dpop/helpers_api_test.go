package dpop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestProofFromHeader(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []string
		want   string
		reason authn.Reason
		check  Check
	}{
		{name: "one", values: []string{"a.b.c"}, want: "a.b.c"},
		{name: "surrounding spaces", values: []string{" a.b.c\t"}, want: "a.b.c"},
		{name: "none", reason: ReasonProofMissing, check: CheckMissing},
		{name: "two headers", values: []string{"a.b.c", "d.e.f"}, reason: ReasonProofInvalid, check: CheckHeaderCount},
		{name: "two identical headers", values: []string{"a.b.c", "a.b.c"}, reason: ReasonProofInvalid, check: CheckHeaderCount},
		{name: "comma list", values: []string{"a.b.c, d.e.f"}, reason: ReasonProofInvalid, check: CheckHeaderCount},
		{name: "empty", values: []string{""}, reason: ReasonProofInvalid, check: CheckHeaderCount},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range c.values {
				h.Add("DPoP", v)
			}
			got, err := ProofFromHeader(h)
			if c.reason == "" {
				if err != nil || got != c.want {
					t.Fatalf("ProofFromHeader = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != c.reason || e.Check != c.check {
				t.Fatalf("ProofFromHeader = %q, %v; want %s/%s", got, err, c.reason, c.check)
			}
		})
	}
}

func TestCheckBinding(t *testing.T) {
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	for _, c := range []struct {
		name         string
		token, proof string
		wantErr      bool
		wantCheck    Check
	}{
		{name: "equal", token: jkt, proof: jkt},
		{name: "other key", token: jkt, proof: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", wantErr: true, wantCheck: CheckJKT},
		{name: "prefix", token: jkt, proof: jkt[:20], wantErr: true, wantCheck: CheckJKT},
		{name: "unbound token", token: "", proof: jkt, wantErr: true, wantCheck: CheckUnbound},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckBinding(c.token, c.proof)
			if !c.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonTokenBindingMismatch || e.Check != c.wantCheck || e.Code != ErrorInvalidToken {
				t.Fatalf("CheckBinding: %v, want %s/%s", err, ReasonTokenBindingMismatch, c.wantCheck)
			}
		})
	}
}

func TestCheckBearer(t *testing.T) {
	bound := map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
	malformed := map[string]any{"jkt": 42}
	certBound := map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
	for _, c := range []struct {
		name   string
		mode   Mode
		cnf    map[string]any
		reason authn.Reason
	}{
		{name: "unbound, disabled", mode: ModeDisabled},
		{name: "unbound, allowed", mode: ModeAllowed},
		{name: "certificate-bound, allowed", mode: ModeAllowed, cnf: certBound},
		{name: "unbound, required", mode: ModeRequired, reason: ReasonProofMissing},
		{name: "bound, disabled", mode: ModeDisabled, cnf: bound, reason: ReasonBoundTokenAsBearer},
		{name: "bound, allowed", mode: ModeAllowed, cnf: bound, reason: ReasonBoundTokenAsBearer},
		{name: "bound, required", mode: ModeRequired, cnf: bound, reason: ReasonBoundTokenAsBearer},
		{name: "malformed jkt counts as bound", mode: ModeAllowed, cnf: malformed, reason: ReasonBoundTokenAsBearer},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckBearer(c.mode, c.cnf)
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != c.reason {
				t.Fatalf("CheckBearer: %v, want %s", err, c.reason)
			}
			f, ok := e.AuthnError(identity.MethodJWT).(*authn.Failure)
			if !ok || f.Reason != c.reason || f.Description == "" || !errors.As(f, &e) {
				t.Fatalf("AuthnError = %#v", e.AuthnError(identity.MethodJWT))
			}
		})
	}
	if jkt, ok := TokenJKT(malformed); !ok || jkt != "" {
		t.Errorf("TokenJKT(malformed) = %q, %v", jkt, ok)
	}
}

func TestChallenge(t *testing.T) {
	for _, c := range []struct {
		name, code, desc string
		algs             []string
		want             string
	}{
		{"bare", "", "", []string{"ES256", "EdDSA"}, `DPoP algs="ES256 EdDSA"`},
		{"error", ErrorInvalidProof, "The DPoP proof is not valid.", []string{"ES256"},
			`DPoP error="invalid_dpop_proof", error_description="The DPoP proof is not valid.", algs="ES256"`},
		{"quotes and controls dropped", ErrorInvalidProof, "a\"b\\c\r\nWWW-Authenticate: x\x7fé", nil,
			`DPoP error="invalid_dpop_proof", error_description="abcWWW-Authenticate: x"`},
		{"nothing", "", "", nil, "DPoP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Challenge(c.code, c.desc, c.algs); got != c.want {
				t.Errorf("Challenge = %q, want %q", got, c.want)
			}
		})
	}
}

func TestVerifierChallenge(t *testing.T) {
	nonces, err := NewNonces(NonceConfig{Secrets: [][]byte{testSecret}, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Config{Algorithms: []string{"ES256", "PS256"}, Nonces: nonces})
	for _, c := range []struct {
		name      string
		err       error
		want      string
		wantNonce bool
	}{
		{"no error", nil, `DPoP algs="ES256 PS256"`, false},
		{"other error", errors.New("x"), `DPoP algs="ES256 PS256"`, false},
		{"missing", newError(ReasonProofMissing, CheckMissing, nil), `DPoP error="invalid_dpop_proof", error_description="` + descMissing + `", algs="ES256 PS256"`, false},
		{"required", newError(ReasonProofMissing, CheckRequired, nil), `DPoP error="invalid_dpop_proof", error_description="` + descRequired + `", algs="ES256 PS256"`, false},
		{"invalid", newError(ReasonProofInvalid, CheckHTU, nil), `DPoP error="invalid_dpop_proof", error_description="` + descInvalid + `", algs="ES256 PS256"`, false},
		{"nonce", newError(ReasonNonceRequired, CheckNonceMissing, nil), `DPoP error="use_dpop_nonce", error_description="` + descNonce + `", algs="ES256 PS256"`, true},
		{"binding, wrapped in a Failure", newError(ReasonTokenBindingMismatch, CheckJKT, nil).AuthnError(identity.MethodJWT), `DPoP error="invalid_token", error_description="` + descBinding + `", algs="ES256 PS256"`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, nonce := v.Challenge(c.err)
			if got != c.want {
				t.Errorf("Challenge = %q, want %q", got, c.want)
			}
			if (nonce != "") != c.wantNonce || nonce != "" && !nonces.Valid(nonce) {
				t.Errorf("nonce = %q, want one: %v", nonce, c.wantNonce)
			}
			if strings.ContainsAny(got, "\r\n") {
				t.Error("challenge has a line break")
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	keys(t)
	bound := map[string]any{"jkt": thumbprint(t, &ecKey.PublicKey)}
	otherKey := map[string]any{"jkt": thumbprint(t, &ec384Key.PublicKey)}
	for _, c := range []struct {
		name    string
		headers []string
		cnf     map[string]any
		reason  authn.Reason
		check   Check
	}{
		{name: "bound token, valid proof", headers: []string{es256(t, with("jti", "r1"))}, cnf: bound},
		{name: "no DPoP header", cnf: bound, reason: ReasonProofMissing, check: CheckMissing},
		{name: "two DPoP headers", headers: []string{es256(t, with("jti", "r2")), es256(t, with("jti", "r3"))}, cnf: bound, reason: ReasonProofInvalid, check: CheckHeaderCount},
		{name: "token bound to another key", headers: []string{es256(t, with("jti", "r4"))}, cnf: otherKey, reason: ReasonTokenBindingMismatch, check: CheckJKT},
		{name: "unbound token", headers: []string{es256(t, with("jti", "r5"))}, reason: ReasonTokenBindingMismatch, check: CheckUnbound},
		{name: "invalid proof before binding", headers: []string{es256(t, with("jti", "r6", "htm", "GET"))}, cnf: otherKey, reason: ReasonProofInvalid, check: CheckHTM},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, Config{})
			r := httptest.NewRequest(testMethod, "http://10.0.0.7:8080/v1/things?page=2", nil)
			for _, h := range c.headers {
				r.Header.Add("DPoP", h)
			}
			p, err := v.VerifyRequest(context.Background(), r, RequestURL(r, "https", "api.example.com"), testToken, c.cnf)
			if c.reason == "" {
				if err != nil || p.JKT != bound["jkt"] {
					t.Fatalf("VerifyRequest = %+v, %v", p, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != c.reason || e.Check != c.check {
				t.Fatalf("VerifyRequest: %v, want %s/%s", err, c.reason, c.check)
			}
		})
	}
}
