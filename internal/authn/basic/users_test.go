package basic

import (
	"slices"
	"strings"
	"testing"
)

func TestParseUsersFile(t *testing.T) {
	h := testHash()
	for _, tc := range []struct {
		name  string
		file  string
		users []string // names
		err   string   // substring of the error; "" ok
	}{
		{"one", "alice:" + h + "\n", []string{"alice"}, ""},
		{"comments and blanks", "# users\n\nalice:" + h + "\r\n  # x\nbob:" + testBcrypt() + "\n", []string{"alice", "bob"}, ""},
		{"attributes", "alice:" + h + " roles=admin,ops\tgroups=eng scopes=orders:read,orders:write\n", []string{"alice"}, ""},
		{"plaintext", "alice:s3cret\n", nil, "line 1: user \"alice\": basic: not an argon2id or bcrypt hash"},
		{"plaintext second line", "alice:" + h + "\nbob:hunter2\n", nil, "line 2:"},
		{"md5", "alice:$apr1$x$y\n", nil, "not an argon2id or bcrypt"},
		{"no hash", "alice:\n", nil, "no password hash"},
		{"no colon", "alice\n", nil, "want name:hash"},
		{"duplicate", "alice:" + h + "\nalice:" + h + "\n", nil, "appears twice"},
		{"unknown attribute", "alice:" + h + " admin=yes\n", nil, "unknown attribute"},
		{"attribute twice", "alice:" + h + " roles=a roles=b\n", nil, "given twice"},
		{"comma only", "alice:" + h + " roles=a,,b\n", nil, "invalid value"},
		{"bad name", "al\x01ice:" + h + "\n", nil, "control"},
		{"hostile params", "alice:$argon2id$v=19$m=4194304,t=10,p=16$c2FsdHNhbHQ$" + strings.Repeat("A", 43) + "\n", nil, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := ParseUsersFile([]byte(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				// The error never echoes a plaintext password.
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error echoes the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range users {
				names = append(names, u.Name)
			}
			if !slices.Equal(names, tc.users) {
				t.Fatalf("users %v, want %v", names, tc.users)
			}
		})
	}
}

func TestUserLineRoundTrip(t *testing.T) {
	h, _ := ParseHash(testHash())
	u := &User{Name: "jürgen", Hash: h, Roles: []string{"admin", "ops"}, Scopes: []string{"orders:read"}}
	back, err := ParseUserLine(u.Line())
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != u.Name || back.Hash.String() != h.String() || !slices.Equal(back.Roles, u.Roles) || back.Groups != nil || !slices.Equal(back.Scopes, u.Scopes) {
		t.Fatalf("round trip: %+v", back)
	}
}
