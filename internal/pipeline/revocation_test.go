package pipeline

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

func TestCheckRevoked(t *testing.T) {
	now := time.Now()
	entry := func(kind revocation.Kind, value string) *revocation.Entry {
		e := &revocation.Entry{ID: revocation.NewID(), Kind: kind, Issuer: "https://idp", Value: value, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if kind == revocation.KindSubject {
			b := now
			e.Before = &b
		}
		return e
	}
	loaded := &revocation.List{}
	loaded.Replace([]*revocation.Entry{entry(revocation.KindJTI, "j1"), entry(revocation.KindSubject, "alice")})
	id := func(sub, jti string) *identity.Identity {
		return &identity.Identity{Method: identity.MethodJWT, Issuer: "https://idp", Subject: sub, CredentialID: jti, IssuedAt: now.Add(-time.Minute)}
	}
	for _, tc := range []struct {
		name        string
		list        *revocation.List
		id          *identity.Identity
		wantReason  authn.Reason // "": no error
		unavailable bool
	}{
		{"never loaded: 503, fail closed", &revocation.List{}, id("bob", "j9"), reasonRevocationUnavailable, true},
		{"never loaded, anonymous: passes", &revocation.List{}, identity.Anonymous, "", false},
		{"clean", loaded, id("bob", "j9"), "", false},
		{"jti", loaded, id("bob", "j1"), reasonTokenRevoked, false},
		{"subject", loaded, id("alice", "j9"), reasonSubjectRevoked, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRevoked(tc.list, tc.id)
			var (
				fail  *authn.Failure
				unavl *authn.UnavailableError
			)
			switch {
			case tc.wantReason == "":
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case tc.unavailable:
				if !errors.As(err, &unavl) || unavl.Reason != tc.wantReason {
					t.Fatalf("err = %v, want unavailable %s", err, tc.wantReason)
				}
			default:
				if !errors.As(err, &fail) || fail.Reason != tc.wantReason || fail.Description != revokedDescription || fail.Subject != tc.id.Subject {
					t.Fatalf("err = %#v, want failure %s", err, tc.wantReason)
				}
			}
		})
	}
}
