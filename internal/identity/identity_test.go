package identity

import "testing"

func TestIdentityHelpers(t *testing.T) {
	id := &Identity{Subject: "u1", Method: MethodJWT, Scopes: []string{"read", "write"}, Roles: []string{"admin"}, Groups: []string{"ops"}}
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"has scope", id.HasScope("read"), true},
		{"lacks scope", id.HasScope("delete"), false},
		{"scope is exact", id.HasScope("rea"), false},
		{"has role", id.HasRole("admin"), true},
		{"lacks role", id.HasRole("user"), false},
		{"in group", id.InGroup("ops"), true},
		{"not in group", id.InGroup("dev"), false},
		{"not anonymous", id.IsAnonymous(), false},
		{"anonymous", Anonymous.IsAnonymous(), true},
		{"nil is anonymous", (*Identity)(nil).IsAnonymous(), true},
		{"nil has no scope", (*Identity)(nil).HasScope("read"), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
