package identity

import (
	"strings"
	"testing"
	"time"
)

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

func TestEvidenceAndCompose(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Identity{Method: MethodAPIKey, Subject: "c1", CredentialID: "k1"}
	b := &Identity{Method: MethodJWT, Subject: "alice", ExpiresAt: t0, KeyBinding: KeyBinding{Kind: "jkt", Value: "v"}}
	c := Compose([]*Identity{a, b}, 0)
	nested := Compose([]*Identity{c, &Identity{Method: MethodMTLS, Subject: "CN=x", ExpiresAt: t0.Add(-time.Hour)}}, 1)
	for _, tc := range []struct {
		name      string
		id        *Identity
		methods   string
		subject   string
		expires   time.Time
		composite bool
	}{
		{"single", b, "jwt", "alice", t0, false},
		{"anonymous has no evidence", Anonymous, "", "", time.Time{}, false},
		{"pair, first primary", c, "api_key,jwt", "c1", t0, true},
		{"a composite inside a chain is flattened", nested, "api_key,jwt,mtls", "CN=x", t0.Add(-time.Hour), true},
		{"one identity is returned as it is", Compose([]*Identity{a}, 0), "api_key", "c1", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms []string
			for _, e := range tc.id.Evidence() {
				ms = append(ms, string(e.Method))
			}
			if got := strings.Join(ms, ","); got != tc.methods || tc.id.Subject != tc.subject || !tc.id.ExpiresAt.Equal(tc.expires) || tc.id.Composite() != tc.composite {
				t.Fatalf("methods %q subject %q expires %v composite %v", got, tc.id.Subject, tc.id.ExpiresAt, tc.id.Composite())
			}
		})
	}
	if a.Credentials != nil || b.Credentials != nil || c.Credentials[1].KeyBinding.Value != "v" {
		t.Fatal("Compose changed its inputs or lost the key binding")
	}
}
