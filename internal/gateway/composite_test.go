package gateway

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// TestCompositeIdentityThroughGateway runs an AND chain of two methods
// (an API key and a JWT bound to a key by its cnf claim) through a real
// listener: the primary credential's subject wins (the last method by
// default, or authenticate.primary), every credential's evidence reaches
// CEL policies, the identity headers (method list, RFC 8941 credentials
// header, client copies stripped) and the audit event.
func TestCompositeIdentityThroughGateway(t *testing.T) {
	up := newUpstream(t, "api")
	plain, _ := apikey.Format{}.Generate()
	hasher, _ := apikey.NewHasher(nil)
	hash := fmt.Sprintf("sha256:%x", hasher.Hash(plain))
	secret := strings.Repeat("s3cr3t-", 6)
	// The token is bound to a DPoP key (RFC 9449), so it goes with the
	// DPoP scheme and a proof of that key: as Bearer it would be refused.
	client := newDPoPClient(t)
	jkt := client.jkt
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)

	route := func(name, path, extra string) string {
		return fmt.Sprintf(`  - name: %s
    match: {path_prefix: %s}
    authenticate: {methods: [api_key, jwt], require_all: true%s}
    authorize:
      expression: 'identity.methods == ["api_key", "jwt"] && size(identity.credentials) == 2 && identity.credentials[1].key_binding.kind == "jkt" && identity.credentials[0].provider == "api_keys"'
    upstream: {targets: [%q]}
`, name, path, extra, up.URL)
	}
	cfg := header + fmt.Sprintf(`audit: {output: stderr}
identity_headers: {credentials: X-Auth-Credentials}
identity_providers:
  - name: corp
    issuer: https://idp.example
    audiences: [api]
    algorithms: [HS256]
    static_keys: {hmac_secret: %q}
    dpop: {mode: allowed}
api_keys:
  store: {type: static}
  static:
    - {id: partner-static, consumer: partner, hash: %q, scopes: [orders:read]}
routes:
`, secret, hash) + route("default-primary", "/a", "") + route("key-primary", "/b", ", primary: api_key")
	tg := startGateway(t, cfg).serve()

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(claims string) string {
		obj, err := signer.Sign([]byte(claims))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return s
	}
	jti := rand.Text()
	bound := token(fmt.Sprintf(`{"iss":"https://idp.example","aud":"api","sub":"alice","jti":%q,"iat":%d,"exp":%d,"scope":"profile","cnf":{"jkt":%q}}`,
		jti, time.Now().Unix(), exp.Unix(), jkt))
	unbound := token(fmt.Sprintf(`{"iss":"https://idp.example","aud":"api","sub":"alice","iat":%d,"exp":%d}`, time.Now().Unix(), exp.Unix()))

	call := func(path, tok, key string) (*http.Response, []byte) {
		r, _ := http.NewRequest("GET", tg.url+path, nil)
		if tok == bound {
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", client.proof(t, "GET", tg.url+path, tok, nil))
		} else if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		r.Header.Set("X-Auth-Credentials", `jwt;sub="mallory"`) // a client's forgery
		return do(t, r)
	}

	for _, tc := range []struct {
		name, path, tok, key string
		status               int
		subject, clientID    string
		scopes               string
	}{
		{"default primary is the last method (jwt)", "/a", bound, plain, 200, "alice", "", "profile"},
		{"primary: api_key", "/b", bound, plain, 200, "", "partner", "orders:read"},
		{"token without key", "/a", bound, "", 401, "", "", ""},
		{"key without token", "/a", "", plain, 401, "", "", ""},
		{"unbound token fails the policy", "/a", unbound, plain, 403, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := call(tc.path, tc.tok, tc.key)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				if c := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, "ApiKey ") && !strings.HasPrefix(c, "Bearer ") && !strings.HasPrefix(c, "DPoP ") {
					t.Fatalf("challenge %q", c)
				}
			}
			if tc.status != 200 {
				return
			}
			h := decodeReceived(t, body).Headers
			if tc.subject != "" && h.Get("X-Auth-Subject") != tc.subject {
				t.Errorf("subject %q, want %q", h.Get("X-Auth-Subject"), tc.subject)
			}
			if tc.subject == "" && h.Get("X-Auth-Subject") == "alice" {
				t.Errorf("subject is the token's, want the key's consumer")
			}
			if h.Get("X-Auth-Client-Id") != tc.clientID {
				t.Errorf("client id %q, want %q", h.Get("X-Auth-Client-Id"), tc.clientID)
			}
			if h.Get("X-Auth-Scopes") != tc.scopes {
				t.Errorf("scopes %q, want %q (the primary's)", h.Get("X-Auth-Scopes"), tc.scopes)
			}
			if m := h.Get("X-Auth-Method"); m != "api_key,jwt" {
				t.Errorf("method header %q", m)
			}
			creds := h.Values("X-Auth-Credentials")
			if len(creds) != 1 {
				t.Fatalf("credentials header %q: want exactly the gateway's", creds)
			}
			want := fmt.Sprintf(`jwt;id=%q;sub="alice";iss="https://idp.example";prov="corp";exp=%d;cnf-jkt=%q`, jti, exp.Unix(), jkt)
			if !strings.HasPrefix(creds[0], `api_key;id="partner-static";`) || !strings.HasSuffix(creds[0], ", "+want) {
				t.Errorf("credentials header\n got %s\nwant api_key;id=\"partner-static\";…, %s", creds[0], want)
			}
			if strings.Contains(creds[0], plain) || strings.Contains(creds[0], bound) {
				t.Fatal("a credential leaked into the credentials header")
			}
		})
	}

	var found bool
	for _, ev := range tg.auditEvents(t) {
		if ev["event"] != "authn.decision" || ev["outcome"] != "allow" || ev["route"] != "default-primary" {
			continue
		}
		cs, _ := ev["credentials"].([]any)
		if len(cs) != 2 || ev["subject"] != "alice" || ev["auth_method"] != "jwt" {
			t.Fatalf("audit event %v", ev)
		}
		first, second := cs[0].(map[string]any), cs[1].(map[string]any)
		if second["credential_id"] != jti {
			continue // the unbound token's request
		}
		found = true
		if first["method"] != "api_key" || first["credential_id"] != "partner-static" ||
			second["method"] != "jwt" || second["key_binding_kind"] != "jkt" || second["key_binding"] != jkt ||
			second["expires_at"] != float64(exp.Unix()) {
			t.Fatalf("audit credentials %v", cs)
		}
	}
	if !found {
		t.Fatal("no audit event for the AND chain")
	}
}
