package jwt

import (
	"reflect"
	"testing"
)

// claimSetCases are claims sets (valid or not) that the filtered decode
// must agree on with the whole decode.
var claimSetCases = []string{
	`{}`,
	`{"\u0073":"0","s":""}`,
	`{"iss":"a","\u0069ss":"b"}`,
	` { } `,
	`{"iss":"a","sub":"alice","name":"Alice"}`,
	`{"name":"x","iss":"a"}`,
	`{"iss":"a","realm_access":{"roles":["admin"]},"resource_access":{"iss":"nested, not top-level"}}`,
	`{"x":"a \"quoted\" } ] , string","iss":"a","y":["}","]",{"z":"{"}],"sub":"s"}`,
	`{"\u0073ub":"escaped name","iss":"a","n\u0061me":"kept: escaped"}`,
	`{"exp":1700000000,"nbf":1.5e9,"iat":-1,"big":123456789012345678901234567890,"t":true,"f":false,"n":null}`,
	"{\n\t\"iss\" :\r\n \"a\" ,\n \"other\" : [ 1 , 2 ] ,\"sub\":\"b\"\n}\n",
	`{"scope":"read write","scp":["a"],"groups":["/g"],"tid":"t","email":"e@x"}`,
	`{"a.b":"dotted name","a":{"b":"nested"},"c":{"d":{"e":"deep"}}}`,
	`{"iss":"a"`,            // unterminated
	`{"iss":"a"} trailing`,  // trailing data
	`["iss"]`,               // not an object
	`null`,                  // not an object
	`{"iss":"a",}`,          // trailing comma
	`{"iss":"a","iss":"b"}`, // duplicate (refused earlier; still decoded alike)
	``,
}

func testClaimNames() claimNames {
	n := claimNames{}
	p := &provider{subject: "sub", audClaim: "aud", roles: "realm_access.roles", groups: "groups",
		clientID: []string{"client_id", "azp"}, scopes: []string{"scope", "scp"},
		claims: []claimCopy{{name: "email", path: "email"}, {name: "deep", path: "c.d.e"}, {name: "dotted", path: "a.b"}}}
	n.addProvider(p)
	return n
}

// TestDecodeNeededClaims: for every claim name a provider reads, the
// filtered decode yields exactly what the whole decode yields; errors
// agree; members nobody reads are left out (unless a member name has an
// escape: then the whole payload is decoded).
func TestDecodeNeededClaims(t *testing.T) {
	needed := testClaimNames()
	for _, name := range []string{"iss", "sub", "realm_access", "realm_access.roles", "c", "c.d", "c.d.e", "a", "a.b", "azp", "scp", "cnf"} {
		if _, ok := needed[name]; !ok {
			t.Errorf("%q is not among the needed names", name)
		}
	}
	for _, payload := range claimSetCases {
		checkNeededClaims(t, []byte(payload), needed)
	}
	got, err := decodeNeededClaims([]byte(`{"iss":"a","name":"Alice","sid":"x"}`), needed)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["name"]; ok || len(got) != 1 {
		t.Fatalf("unread members decoded: %v", got)
	}
	// An escaped member name: the whole payload is decoded, so that the
	// later of "\u0073id" and "sid" wins as it does in decodeClaims.
	got, err = decodeNeededClaims([]byte(`{"iss":"a","name":"Alice","\u0073id":"x","sid":"y"}`), needed)
	if err != nil {
		t.Fatal(err)
	}
	if got["name"] != "Alice" || got["sid"] != "y" || len(got) != 3 {
		t.Fatalf("escaped names: %v, want the whole decode", got)
	}
}

func checkNeededClaims(t *testing.T, payload []byte, needed claimNames) {
	t.Helper()
	full, fullErr := decodeClaims(payload)
	got, err := decodeNeededClaims(payload, needed)
	if (fullErr == nil) != (err == nil) {
		t.Fatalf("%q: whole decode error %v, filtered %v", payload, fullErr, err)
	}
	if err != nil {
		if err.Error() != fullErr.Error() {
			t.Fatalf("%q: errors differ: %v vs %v", payload, fullErr, err)
		}
		return
	}
	for name := range needed {
		if !reflect.DeepEqual(full[name], got[name]) {
			t.Fatalf("%q: claim %q decodes to %#v, whole decode %#v", payload, name, got[name], full[name])
		}
	}
	for name, v := range got {
		if !reflect.DeepEqual(full[name], v) {
			t.Fatalf("%q: claim %q decodes to %#v, whole decode %#v", payload, name, v, full[name])
		}
	}
}

func FuzzDecodeNeededClaims(f *testing.F) {
	for _, c := range claimSetCases {
		f.Add(c)
	}
	needed := testClaimNames()
	f.Fuzz(func(t *testing.T, payload string) {
		checkNeededClaims(t, []byte(payload), needed)
	})
}
