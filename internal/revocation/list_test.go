package revocation_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func entry(kind revocation.Kind, iss, value string, before *time.Time, expires time.Time) *revocation.Entry {
	return &revocation.Entry{ID: revocation.NewID(), Kind: kind, Issuer: iss, Value: value, Before: before,
		CreatedAt: t0.Add(-time.Hour), ExpiresAt: expires}
}

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

const iss = "https://idp.example"

func tok(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func hexOf(h [32]byte) string { return hex.EncodeToString(h[:]) }

func jwtID(sub, jti, client string, iat time.Time, token string) *identity.Identity {
	return &identity.Identity{Method: identity.MethodJWT, Issuer: iss, Subject: sub, CredentialID: jti,
		ClientID: client, IssuedAt: iat, TokenHash: tok(token), ExpiresAt: t0.Add(time.Hour)}
}

func TestListCheck(t *testing.T) {
	later := t0.Add(24 * time.Hour)
	list := []*revocation.Entry{
		entry(revocation.KindJTI, iss, "jti-1", nil, later),
		entry(revocation.KindJTI, "", "jti-any", nil, later),
		entry(revocation.KindJTI, iss, "jti-expired", nil, t0.Add(-time.Second)),
		entry(revocation.KindToken, "", hexOf(tok("leaked-token")), nil, later),
		entry(revocation.KindSubject, iss, "alice", at(-10*time.Minute), later),
		entry(revocation.KindSubject, "", "bob", at(0), later),
		entry(revocation.KindClient, iss, "bad-client", nil, later),
		entry(revocation.KindClient, iss, "rotated-client", at(-time.Minute), later),
		entry(revocation.KindIssuerSubject, iss, "mallory", nil, later),
		// Expires before the clock: no longer applies.
		entry(revocation.KindIssuerSubject, iss, "former", nil, t0),
	}
	l := &revocation.List{Now: func() time.Time { return t0 }}
	if e, loaded := l.Check(jwtID("x", "", "", t0, "t")); loaded || e != nil {
		t.Fatalf("an unloaded list must say so: %v %v", e, loaded)
	}
	l.Replace(list)

	for _, tc := range []struct {
		name string
		id   *identity.Identity
		want revocation.Kind // "": not revoked
	}{
		{"clean token", jwtID("carol", "jti-9", "good", t0.Add(-time.Hour), "fine"), ""},
		{"jti of the issuer", jwtID("carol", "jti-1", "", t0, "a"), revocation.KindJTI},
		{"jti of another issuer", func() *identity.Identity {
			id := jwtID("carol", "jti-1", "", t0, "a")
			id.Issuer = "https://other.example"
			return id
		}(), ""},
		{"jti of any issuer", func() *identity.Identity {
			id := jwtID("carol", "jti-any", "", t0, "a")
			id.Issuer = "https://other.example"
			return id
		}(), revocation.KindJTI},
		{"expired entry", jwtID("carol", "jti-expired", "", t0, "a"), ""},
		{"token hash", jwtID("carol", "", "", t0, "leaked-token"), revocation.KindToken},
		{"subject issued before", jwtID("alice", "j", "", t0.Add(-11*time.Minute), "b"), revocation.KindSubject},
		{"subject issued at the cut-off", jwtID("alice", "j", "", t0.Add(-10*time.Minute), "b"), ""},
		{"subject issued after", jwtID("alice", "j", "", t0.Add(-9*time.Minute), "b"), ""},
		{"subject without iat", jwtID("alice", "j", "", time.Time{}, "b"), revocation.KindSubject},
		{"subject of another issuer", func() *identity.Identity {
			id := jwtID("alice", "j", "", t0.Add(-time.Hour), "b")
			id.Issuer = "https://other.example"
			return id
		}(), ""},
		{"subject of any issuer", func() *identity.Identity {
			id := jwtID("bob", "j", "", t0.Add(-time.Second), "b")
			id.Issuer = "https://other.example"
			return id
		}(), revocation.KindSubject},
		{"client, every token", jwtID("carol", "j", "bad-client", t0, "c"), revocation.KindClient},
		{"client before, older token", jwtID("carol", "j", "rotated-client", t0.Add(-2*time.Minute), "c"), revocation.KindClient},
		{"client before, newer token", jwtID("carol", "j", "rotated-client", t0, "c"), ""},
		{"blocked subject, new token", jwtID("mallory", "j", "", t0.Add(time.Minute), "d"), revocation.KindIssuerSubject},
		{"block expired", jwtID("former", "j", "", t0, "d"), ""},
		{"anonymous", identity.Anonymous, ""},
		{"AND chain: second credential revoked", &identity.Identity{Method: identity.MethodMTLS, Subject: "CN=partner", Issuer: "ca",
			Credentials: []identity.Credential{
				{Method: identity.MethodMTLS, Subject: "CN=partner", Issuer: "ca"},
				{Method: identity.MethodJWT, Subject: "carol", Issuer: iss, CredentialID: "jti-1", IssuedAt: t0},
			}}, revocation.KindJTI},
		{"AND chain: clean", &identity.Identity{Method: identity.MethodMTLS, Subject: "CN=partner", Issuer: "ca",
			Credentials: []identity.Credential{
				{Method: identity.MethodMTLS, Subject: "CN=partner", Issuer: "ca"},
				{Method: identity.MethodJWT, Subject: "carol", Issuer: iss, CredentialID: "jti-2", IssuedAt: t0},
			}}, ""},
		{"AND chain: primary's own fields are not consulted", &identity.Identity{Method: identity.MethodJWT, Subject: "mallory", Issuer: iss,
			Credentials: []identity.Credential{
				{Method: identity.MethodJWT, Subject: "carol", Issuer: iss, CredentialID: "jti-2", IssuedAt: t0},
			}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, loaded := l.Check(tc.id)
			if !loaded {
				t.Fatal("loaded list reported as not loaded")
			}
			var got revocation.Kind
			if e != nil {
				got = e.Kind
			}
			if got != tc.want {
				t.Errorf("revoked by %q, want %q", got, tc.want)
			}
		})
	}
}

// An entry that expires while a snapshot serves stops applying without a
// reload.
func TestListEntryExpiresInPlace(t *testing.T) {
	now := t0
	l := &revocation.List{Now: func() time.Time { return now }}
	l.Replace([]*revocation.Entry{entry(revocation.KindJTI, iss, "j", nil, t0.Add(time.Minute))})
	id := jwtID("s", "j", "", t0, "x")
	if e, _ := l.Check(id); e == nil {
		t.Fatal("entry not applied")
	}
	now = t0.Add(time.Minute)
	if e, _ := l.Check(id); e != nil {
		t.Fatal("expired entry still applied")
	}
	if l.Replace(nil); l.Len() != 0 || !l.Loaded() {
		t.Fatalf("empty list: len %d loaded %v", l.Len(), l.Loaded())
	}
}

func TestServiceEntries(t *testing.T) {
	svc := &revocation.Service{MaxTokenLifetime: time.Hour, Now: func() time.Time { return t0 }}
	for _, tc := range []struct {
		name        string
		req         revocation.Request
		wantErr     string // a field name
		wantExpires time.Time
		wantBefore  *time.Time
	}{
		{name: "jti", req: revocation.Request{Kind: revocation.KindJTI, Issuer: iss, Values: []string{"a", "b"}}, wantExpires: t0.Add(time.Hour)},
		{name: "subject defaults before to now", req: revocation.Request{Kind: revocation.KindSubject, Values: []string{"alice"}},
			wantExpires: t0.Add(time.Hour), wantBefore: at(0)},
		{name: "subject with a later cut-off", req: revocation.Request{Kind: revocation.KindSubject, Values: []string{"alice"}, Before: at(time.Hour)},
			wantExpires: t0.Add(2 * time.Hour), wantBefore: at(time.Hour)},
		{name: "until", req: revocation.Request{Kind: revocation.KindIssuerSubject, Issuer: iss, Values: []string{"m"}, Until: at(72 * time.Hour)},
			wantExpires: t0.Add(72 * time.Hour)},
		{name: "until in the past", req: revocation.Request{Kind: revocation.KindJTI, Values: []string{"a"}, Until: at(-time.Second)}, wantErr: "until"},
		{name: "no values", req: revocation.Request{Kind: revocation.KindJTI}, wantErr: "values"},
		{name: "bad kind", req: revocation.Request{Kind: "everything", Values: []string{"a"}}, wantErr: "kind"},
		{name: "token not a hash", req: revocation.Request{Kind: revocation.KindToken, Values: []string{"eyJhbGciOi"}}, wantErr: "values"},
		{name: "issuer_subject needs issuer", req: revocation.Request{Kind: revocation.KindIssuerSubject, Values: []string{"m"}}, wantErr: "issuer"},
		{name: "jti takes no before", req: revocation.Request{Kind: revocation.KindJTI, Values: []string{"a"}, Before: at(0)}, wantErr: "before"},
		{name: "control characters", req: revocation.Request{Kind: revocation.KindJTI, Values: []string{"a\nb"}}, wantErr: "values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := svc.Entries(tc.req)
			if tc.wantErr != "" {
				ve, ok := err.(*revocation.ValidationError)
				if !ok {
					t.Fatalf("err = %v, want a validation error on %s", err, tc.wantErr)
				}
				for _, f := range ve.Fields {
					if f.Field == tc.wantErr {
						return
					}
				}
				t.Fatalf("fields %v do not name %s", ve.Fields, tc.wantErr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != len(tc.req.Values) {
				t.Fatalf("%d entries for %d values", len(es), len(tc.req.Values))
			}
			for _, e := range es {
				if !e.ExpiresAt.Equal(tc.wantExpires) {
					t.Errorf("expires %s, want %s", e.ExpiresAt, tc.wantExpires)
				}
				if (e.Before == nil) != (tc.wantBefore == nil) || (e.Before != nil && !e.Before.Equal(*tc.wantBefore)) {
					t.Errorf("before %v, want %v", e.Before, tc.wantBefore)
				}
				if !revocation.ValidID(e.ID) {
					t.Errorf("id %q", e.ID)
				}
			}
		})
	}
}

// BenchmarkCheck is the hot path: a request whose token matches nothing,
// against a list of a few thousand entries of every kind.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{0, 5000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var es []*revocation.Entry
			for i := range n {
				later := t0.Add(24 * time.Hour)
				v := fmt.Sprintf("v%d", i)
				switch i % 5 {
				case 0:
					es = append(es, entry(revocation.KindJTI, iss, v, nil, later))
				case 1:
					es = append(es, entry(revocation.KindToken, "", hexOf(tok(v)), nil, later))
				case 2:
					es = append(es, entry(revocation.KindSubject, "", v, at(0), later))
				case 3:
					es = append(es, entry(revocation.KindClient, "", v, nil, later))
				case 4:
					es = append(es, entry(revocation.KindIssuerSubject, iss, v, nil, later))
				}
			}
			l := &revocation.List{}
			l.Replace(es)
			id := jwtID("user-1234567890", "0b0e6bd2-8f8a-4c1e-9d5a-3a2f1c0e9b7d", "web-app", t0, "eyJhbGciOiJSUzI1NiJ9.payload.sig")
			b.ReportAllocs()
			for b.Loop() {
				if e, _ := l.Check(id); e != nil {
					b.Fatal("revoked")
				}
			}
		})
	}
}
