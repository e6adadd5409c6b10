package authn

import "testing"

func TestSplitAuthorization(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, cred string
		ok               bool
	}{
		{"Bearer abc", "Bearer", "abc", true},
		{"bearer   abc", "bearer", "abc", true},
		{"Bearer", "Bearer", "", true},
		{"Bearer ", "Bearer", "", true},
		{"Bearer a b", "Bearer", "a b", true},
		{"BearerX abc", "BearerX", "abc", true},
		{"Bearer\tabc", "Bearer", "", false},
		{"Bearer,abc", "Bearer", "", false},
		{"Bearer:abc", "Bearer", "", false},
		{"ApiKey\vabc", "ApiKey", "", false},
		{"Bearer\u00e9 abc", "", "", true},
		{"", "", "", true},
		{" abc", "", "abc", true},
	} {
		scheme, cred, ok := SplitAuthorization(tc.in)
		if scheme != tc.scheme || cred != tc.cred || ok != tc.ok {
			t.Errorf("SplitAuthorization(%q) = %q, %q, %v; want %q, %q, %v", tc.in, scheme, cred, ok, tc.scheme, tc.cred, tc.ok)
		}
	}
}
