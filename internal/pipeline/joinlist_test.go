package pipeline

import "testing"

func TestJoinList(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
		sep  byte
		want string
	}{
		{"plain groups", []string{"staff", "ops"}, ',', "staff,ops"},
		{"empty", nil, ',', ""},
		{"comma inside a group is one group", []string{"staff,admin", "ops"}, ',', "staff%2Cadmin,ops"},
		{"percent is escaped once escaping is needed", []string{"a%2Cb", "c,d"}, ',', "a%252Cb,c%2Cd"},
		{"percent alone is escaped", []string{"50%"}, ',', "50%25"},
		{"control character kept in its element", []string{"x\x01y", "suspended"}, ',', "x%01y,suspended"},
		{"space inside a scope is one scope", []string{"read admin:all", "write"}, ' ', "read%20admin:all write"},
		{"comma in a scope is left alone", []string{"a,b"}, ' ', "a,b"},
		{"outer spaces of an element", []string{" admin", "ops "}, ',', "%20admin,ops%20"},
		{"inner space kept", []string{"sales team"}, ',', "sales team"},
		{"AD distinguished name", []string{"CN=Admins,OU=Groups,DC=corp"}, ',', "CN=Admins%2COU=Groups%2CDC=corp"},
	} {
		if got := joinList(tc.list, tc.sep); got != tc.want {
			t.Errorf("%s: joinList(%q, %q) = %q, want %q", tc.name, tc.list, tc.sep, got, tc.want)
		}
	}
}

func TestClaimStringArraysEscaped(t *testing.T) {
	got := claimString([]any{"eu,us", "apac"})
	if want := "eu%2Cus,apac"; got != want {
		t.Fatalf("claimString = %q, want %q", got, want)
	}
}
