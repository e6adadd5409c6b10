package pipeline

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestEncodeCredentials(t *testing.T) {
	exp := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name string
		in   []identity.Credential
		want string
		safe bool
	}{
		{"one token", []identity.Credential{{Method: "jwt", CredentialID: "t-1", Subject: "alice", Issuer: "https://idp", Provider: "corp", ExpiresAt: exp}},
			`jwt;id="t-1";sub="alice";iss="https://idp";prov="corp";exp=1700000000`, true},
		{"certificate and bound token", []identity.Credential{
			{Method: "mtls", Subject: "CN=svc", CertThumbprint: "abc_-"},
			{Method: "jwt", Subject: "alice", KeyBinding: identity.KeyBinding{Kind: "x5t#S256", Value: "abc_-"}},
			{Method: "dpop", KeyBinding: identity.KeyBinding{Kind: "jkt", Value: "k"}},
		}, `mtls;sub="CN=svc";x5t="abc_-", jwt;sub="alice";cnf-x5t="abc_-", dpop;cnf-jkt="k"`, true},
		{"quotes and backslashes escaped", []identity.Credential{{Method: "api_key", Subject: `a"b\c`}}, `api_key;sub="a\"b\\c"`, true},
		{"non-ASCII as a display string", []identity.Credential{{Method: "jwt", Subject: "Zoë 100%\n"}}, `jwt;sub=%"Zo%c3%ab 100%25%0a"`, true},
		{"empty fields and a pre-1970 expiry left out", []identity.Credential{{Method: "api_key", ExpiresAt: time.Unix(-5, 0)}}, `api_key`, true},
		{"invalid UTF-8 is not representable", []identity.Credential{{Method: "jwt", Subject: "\xff"}}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := credentialsSafe(tc.in); got != tc.safe {
				t.Fatalf("credentialsSafe = %v", got)
			}
			if !tc.safe {
				return
			}
			if got := encodeCredentials(tc.in); got != tc.want {
				t.Fatalf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMethodList(t *testing.T) {
	single := &identity.Identity{Method: "jwt"}
	comp := identity.Compose([]*identity.Identity{{Method: "mtls"}, {Method: "jwt"}}, 1)
	for _, tc := range []struct {
		id   *identity.Identity
		want string
	}{{single, "jwt"}, {identity.Anonymous, "anonymous"}, {comp, "mtls,jwt"}} {
		if got := methodList(tc.id); got != tc.want {
			t.Errorf("methodList = %q, want %q", got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = methodList(single) }); n != 0 {
		t.Errorf("single method allocates %v", n)
	}
}
