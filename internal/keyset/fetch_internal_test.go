package keyset

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestCacheMaxAge(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    time.Duration
		ok      bool
	}{
		{nil, 0, false},
		{[]string{"public"}, 0, false},
		{[]string{"max-age=60"}, time.Minute, true},
		{[]string{"public, max-age=300, must-revalidate"}, 5 * time.Minute, true},
		{[]string{"Max-Age=\"10\""}, 10 * time.Second, true},
		{[]string{"max-age=60", "max-age=30"}, 30 * time.Second, true},
		{[]string{"max-age=abc"}, 0, false},
		{[]string{"max-age=-5"}, 0, false},
		{[]string{"max-age=0"}, 0, true},
		{[]string{"no-cache"}, 0, true},
		{[]string{"max-age=600, no-store"}, 0, true},
		{[]string{"max-age=99999999999"}, 365 * 24 * time.Hour, true},
	} {
		got, ok := cacheMaxAge(tc.headers)
		if got != tc.want || ok != tc.ok {
			t.Errorf("cacheMaxAge(%q) = %s, %v; want %s, %v", tc.headers, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	js := func(k jose.JSONWebKey) string {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good := js(jose.JSONWebKey{Key: ec.Public(), KeyID: "good", Use: "sig"})
	noUse := js(jose.JSONWebKey{Key: ec.Public(), KeyID: "nouse"})
	enc := js(jose.JSONWebKey{Key: ec.Public(), KeyID: "enc", Use: "enc"})
	private := js(jose.JSONWebKey{Key: ec, KeyID: "private"})
	oct := js(jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: "oct"})
	short := js(jose.JSONWebKey{Key: weak.Public(), KeyID: "weak"})
	unknownKty := `{"kty":"XYZ","kid":"odd"}`

	for _, tc := range []struct {
		name     string
		body     string
		wantKIDs []string
		wantErr  string
	}{
		{"good and filtered", `{"keys":[` + strings.Join([]string{good, noUse, enc, private, oct, short, unknownKty}, ",") + `]}`, []string{"good", "nouse"}, ""},
		{"only unusable", `{"keys":[` + enc + `,` + oct + `]}`, nil, "no usable"},
		{"empty", `{"keys":[]}`, nil, "no usable"},
		{"no keys member", `{}`, nil, "no usable"},
		{"not JSON", `<html>`, nil, "decoding"},
		{"too many", `{"keys":[` + strings.TrimSuffix(strings.Repeat(good+",", 3), ",") + `]}`, nil, "exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxKeys := 100
			if tc.name == "too many" {
				maxKeys = 2
			}
			res, err := parseJWKS([]byte(tc.body), maxKeys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keyIDs(res.keys); strings.Join(got, ",") != strings.Join(tc.wantKIDs, ",") {
				t.Fatalf("kids = %v, want %v", got, tc.wantKIDs)
			}
		})
	}
}
