package config

import (
	"strings"
	"testing"
)

func TestSignalsSettings(t *testing.T) {
	const route = "routes:\n  - name: r\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n"
	const store = "api_keys: {store: {type: embedded, path: /tmp/k.db}}\n"
	tx := func(extra string) string {
		return "shared_signals:\n  path: /ssf\n  transmitters:\n    - name: t\n      issuer: https://t.example\n      audience: [a]\n      push_token: " + strings.Repeat("p", 16) + "\n" + extra
	}
	for _, tc := range []struct {
		name, src, wantErr string
	}{
		{"valid transmitter", "revocation: {enabled: true}\n" + store + tx("      jwks_uri: https://t.example/jwks\n"), ""},
		{"valid metadata", "revocation: {enabled: true}\n" + store + tx("      metadata: https://t.example/.well-known/ssf-configuration\n      subjects: {formats: [email, opaque]}\n"), ""},
		{"needs the revocation list", store + tx("      jwks_uri: https://t.example/jwks\n"), "revocation.enabled"},
		{"keys required", "revocation: {enabled: true}\n" + store + tx(""), "exactly one of jwks_uri and metadata"},
		{"not both key sources", "revocation: {enabled: true}\n" + store + tx("      jwks_uri: https://t.example/jwks\n      metadata: https://t.example/m\n"), "exactly one of"},
		{"http keys refused", "revocation: {enabled: true}\n" + store + tx("      jwks_uri: http://t.example/jwks\n"), "jwks_uri"},
		{"unknown subject format", "revocation: {enabled: true}\n" + store + tx("      jwks_uri: https://t.example/jwks\n      subjects: {formats: [phone_number]}\n"), "subjects.formats[0]"},
		{"short push token", "revocation: {enabled: true}\n" + store + strings.Replace(tx("      jwks_uri: https://t.example/jwks\n"), strings.Repeat("p", 16), "short", 1), "push_token"},
		{"leak reports", store + "leak_reports: {path: /leaks, bearer_token: " + strings.Repeat("b", 32) + "}\n", ""},
		{"leak reports need a secret", store + "leak_reports: {path: /leaks}\n", "bearer_token or hmac_secret"},
		{"leak report secret too short", store + "leak_reports: {path: /leaks, hmac_secret: short}\n", "leak_reports.hmac_secret"},
		{"leak reports need a store", "api_keys: {store: {type: static}}\nleak_reports: {path: /leaks, hmac_secret: " + strings.Repeat("h", 32) + "}\n", "leak_reports.path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("c.yaml", []byte(tc.src+route), env(nil))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one about %s", err, tc.wantErr)
			}
		})
	}
}
