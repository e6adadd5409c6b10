package pipeline

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/dpop"
)

// BenchmarkDPoP is the per-request cost of a warm JWT (from the verified
// token cache) with a fresh ES256 DPoP proof, through the whole pipeline,
// next to the same token kind sent as Bearer. Proofs are signed outside
// the timer: the client's work is not the gateway's.
func BenchmarkDPoP(b *testing.B) {
	secret := strings.Repeat("bench-dpop-", 4)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tp, _ := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	proofSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	tokenSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	mint := func(cnf any) string {
		c := map[string]any{"iss": "https://idp.bench.test", "aud": "api", "sub": "u1", "scope": "read",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": rand.Text()}
		if cnf != nil {
			c["cnf"] = cnf
		}
		payload, _ := json.Marshal(c)
		jws, err := tokenSigner.Sign(payload)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	p := buildPlanWith(b, benchLogs+fmt.Sprintf(`
identity_providers:
  - name: idp
    issuer: https://idp.bench.test
    audiences: [api]
    algorithms: [HS256]
    static_keys: {hmac_secret: %q}
    dpop: {mode: allowed}
routes:
  - name: r
    match: {path: "/api/users/{id}"}
    authenticate: {methods: [jwt]}
    upstream: {targets: ["http://upstream.bench"]}
`, secret), Options{})
	useTrivialUpstream(b, p)
	const target = "http://gw.test/api/users/u1"

	b.Run("bearer_warm", func(b *testing.B) {
		runServe(b, p, newBenchRequest(target, map[string]string{"Authorization": "Bearer " + mint(nil)}), 200)
	})

	b.Run("dpop_warm", func(b *testing.B) {
		token := mint(map[string]any{"jkt": jkt})
		ath := dpop.AccessTokenHash(token)
		br := newBenchRequest(target, map[string]string{"Authorization": "DPoP " + token})
		w := &benchResponse{header: make(http.Header)}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			claims, _ := json.Marshal(map[string]any{"jti": rand.Text(), "htm": "GET", "htu": target, "iat": time.Now().Unix(), "ath": ath})
			jws, err := proofSigner.Sign(claims)
			if err != nil {
				b.Fatal(err)
			}
			proof, _ := jws.CompactSerialize()
			r := br.reset()
			r.Header["Dpop"] = []string{proof}
			clear(w.header)
			w.status = 0
			b.StartTimer()
			p.ServeHTTP(w, r, "bench")
			if w.status != 200 {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}
