package jwt

import (
	"context"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify measures a full verification of a typical access token
// (about 700 bytes of claims) per algorithm (-cold), the same token served
// from the verified-token cache (-warm), and two cheap refusals.
func BenchmarkVerify(b *testing.B) {
	k := keys()
	f := newFixture(b, func(p *Provider) {
		p.Mapping = Mapping{Roles: "realm_access.roles", Groups: "groups", Claims: map[string]string{"email": "email", "tenant": "tid"}}
	})
	c := claims(issA, map[string]any{
		"azp": "web-app", "scope": "openid profile email orders:read orders:write",
		"realm_access": map[string]any{"roles": []string{"offline_access", "uma_authorization", "admin"}},
		"groups":       []string{"/staff", "/staff/ops"}, "email": "alice@example.com", "tid": "tenant-1",
		"name": "Alice Example", "preferred_username": "alice", "sid": "5d2c6f3e-6c1f-4a57-9b4f-0c8e2d7a1b9c",
	})
	ctx := context.Background()
	// cold is the same verifier without its token cache: every call
	// parses and verifies in full. -warm runs hit the cache.
	cold := *f.v
	cold.cached = false
	for _, bc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256", sign(b, jose.RS256, k.rsaA, "rsa", c), true},
		{"ES256", sign(b, jose.ES256, k.ec256, "ec", c), true},
		{"EdDSA", sign(b, jose.EdDSA, k.ed, "ed", c), true},
		{"HS256", sign(b, jose.HS256, k.hmac, "hs", claims(issH, nil)), true},
		{"refused/alg_none", rawToken(map[string]any{"alg": "none"}, c, nil), false},
		{"refused/unknown_issuer", sign(b, jose.RS256, k.rsaA, "rsa", claims("https://x.example.com", nil)), false},
	} {
		for _, run := range []struct {
			suffix string
			v      *Verifier
		}{{"-cold", &cold}, {"-warm", f.v}} {
			if !bc.ok && run.suffix == "-warm" {
				continue // failures are never cached
			}
			b.Run(bc.name+run.suffix, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(bc.token)))
				defer reportCPU(b)()
				for b.Loop() {
					id, err := run.v.Verify(ctx, bc.token)
					if (err == nil) != bc.ok || (id != nil) != bc.ok {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAuthenticateWarm measures the authenticator on a cached token:
// header parsing, the dispatch by form (a count of the dots) and the
// verified-token cache.
func BenchmarkAuthenticateWarm(b *testing.B) {
	k := keys()
	f := newFixture(b, nil)
	a, err := NewAuthenticator(f.v, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok := sign(b, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{
		"scope": "openid profile email orders:read orders:write", "groups": []string{"/staff", "/staff/ops"},
		"email": "alice@example.com", "name": "Alice Example",
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyColdParts splits a cold RS256 verification (the token of
// BenchmarkVerify) into its steps, to show what a cache miss pays for:
// the shape and text checks on the raw token, go-jose's parse (header
// JSON, base64 of payload and signature), the claims decode (all of it,
// and only what the providers read, as Verify does), the RSA
// signature check, and the claim checks and identity.
func BenchmarkVerifyColdParts(b *testing.B) {
	k := keys()
	f := newFixture(b, func(p *Provider) {
		p.Mapping = Mapping{Roles: "realm_access.roles", Groups: "groups", Claims: map[string]string{"email": "email", "tenant": "tid"}}
	})
	raw := sign(b, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{
		"azp": "web-app", "scope": "openid profile email orders:read orders:write",
		"realm_access": map[string]any{"roles": []string{"offline_access", "uma_authorization", "admin"}},
		"groups":       []string{"/staff", "/staff/ops"}, "email": "alice@example.com", "tid": "tenant-1",
		"name": "Alice Example", "preferred_username": "alice", "sid": "5d2c6f3e-6c1f-4a57-9b4f-0c8e2d7a1b9c",
	}))
	jws, err := jose.ParseSignedCompact(raw, f.v.algs)
	if err != nil {
		b.Fatal(err)
	}
	payload := jws.UnsafePayloadWithoutVerification()
	c, err := decodeClaims(payload)
	if err != nil {
		b.Fatal(err)
	}
	// A Keycloak access token carries many members nobody maps.
	keycloak := []byte(`{"exp":1764460000,"iat":1764459700,"auth_time":1764459600,"jti":"onrtac:5d2c6f3e-6c1f-4a57-9b4f-0c8e2d7a1b9c",` +
		`"iss":"https://idp.example.com/realms/acme","aud":["orders","account"],"sub":"8f14e45f-ceea-467f-a0e6-1234567890ab","typ":"Bearer",` +
		`"azp":"web-app","sid":"0b7a9c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b","acr":"1","allowed-origins":["https://app.example.com","https://admin.example.com"],` +
		`"realm_access":{"roles":["offline_access","uma_authorization","default-roles-acme","admin"]},` +
		`"resource_access":{"account":{"roles":["manage-account","manage-account-links","view-profile"]},"orders":{"roles":["reader","writer"]}},` +
		`"scope":"openid profile email orders:read orders:write","email_verified":true,"name":"Alice Example","groups":["/staff","/staff/ops"],` +
		`"preferred_username":"alice","given_name":"Alice","family_name":"Example","email":"alice@example.com","tid":"tenant-1","locale":"en"}`)
	p := f.v.providers[0]
	for _, part := range []struct {
		name string
		run  func() bool
	}{
		{"text-checks", func() bool {
			parts, clean := shape(raw)
			return parts == 3 && clean && canonical(raw) && headerIsText(raw)
		}},
		{"parse", func() bool { _, err := jose.ParseSignedCompact(raw, f.v.algs); return err == nil }},
		{"payload-checks", func() bool { return validJSONText(payload) && !hasDuplicateKeys(payload) }},
		{"claims-decode-all", func() bool { _, err := decodeClaims(payload); return err == nil }},
		{"claims-decode-needed", func() bool { _, err := decodeNeededClaims(payload, f.v.needed); return err == nil }},
		{"claims-decode-keycloak-all", func() bool { _, err := decodeClaims(keycloak); return err == nil }},
		{"claims-decode-keycloak-needed", func() bool { _, err := decodeNeededClaims(keycloak, f.v.needed); return err == nil }},
		{"rsa-verify", func() bool { _, err := jws.Verify(&k.rsaA.PublicKey); return err == nil }},
		{"identity", func() bool { _, err := p.identity(c, testNow); return err == nil }},
		{"token-sha256", func() bool { return tokenSHA256(raw) != [32]byte{} }},
	} {
		b.Run(part.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if !part.run() {
					b.Fatal("failed")
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time (user + system, all threads:
// the garbage collector's too) per iteration as cpu-µs/op, when the
// returned function runs after the loop. On a shared machine it is steadier
// than ns/op, which counts the time other processes held the core.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N)/1e3, "cpu-µs/op")
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
