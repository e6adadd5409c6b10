package audit

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestAppendEventMatchesMarshal(t *testing.T) {
	full := Event{
		SchemaVersion: SchemaVersion, Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), Type: TypeAuthorization,
		RequestID: "rid", Route: "r", ClientIP: "2001:db8::1", HTTPMethod: "GET", Path: "/a<b>&c\"d\\e\n\x00\u2028\xff",
		AuthMethod: "jwt", Outcome: OutcomeDeny, Reason: "scope_missing", Subject: "alice", Issuer: "https://idp",
		Provider: "idp", ClientID: "cli", CredentialID: "jti-1", Policy: "route:r", Rule: "scopes.all_of",
		Credentials: []Credential{
			{Method: "mtls", CertThumbprint: "3q2-7w", Subject: "CN=svc \"a\"\u2028"},
			{Method: "jwt", CredentialID: "jti-1", Subject: "alice", Issuer: "https://idp", Provider: "idp", ExpiresAt: 1700000000,
				KeyBindingKind: "x5t#S256", KeyBinding: "3q2-7w"},
			{Method: "api_key", ExpiresAt: -5},
		},
	}
	for i, e := range []Event{
		{},
		full,
		{SchemaVersion: SchemaVersion, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", -5*3600-30*60)),
			Type: TypeAuthentication, Outcome: OutcomeAllow, Reason: "ok", Subject: "\b\f\t"},
		{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		{Time: time.Now()},
	} {
		want, err := json.Marshal(&e)
		got, ok := appendEvent(nil, &e)
		if (err == nil) != ok {
			t.Fatalf("case %d: Marshal error %v, appendEvent ok %v", i, err, ok)
		}
		if ok && string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestAppendEventClientAddr: an address given as ClientAddr (ClientIP
// empty) is written exactly as the same address given as text in
// ClientIP; ClientIP wins when both are set; and the whole encoding of a
// pipeline's event allocates nothing.
func TestAppendEventClientAddr(t *testing.T) {
	for _, a := range []string{"192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", "fe80::1%eth0", "fe80::1%\"quoted\""} {
		addr := netip.MustParseAddr(a)
		base := Event{SchemaVersion: SchemaVersion, Time: time.Unix(1, 0).UTC(), Type: TypeAuthentication, Outcome: OutcomeAllow, Reason: "ok"}
		byText, byAddr, both := base, base, base
		byText.ClientIP = addr.String()
		byAddr.ClientAddr = addr
		both.ClientIP, both.ClientAddr = "203.0.113.9", addr
		want, _ := json.Marshal(&byText)
		if got, ok := appendEvent(nil, &byAddr); !ok || string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", a, got, want)
		}
		wantBoth, _ := json.Marshal(&Event{SchemaVersion: SchemaVersion, Time: base.Time, Type: base.Type, Outcome: base.Outcome, Reason: "ok", ClientIP: "203.0.113.9"})
		if got, _ := appendEvent(nil, &both); string(got) != string(wantBoth) {
			t.Errorf("%s: ClientIP must win:\n got %s\nwant %s", a, got, wantBoth)
		}
	}
	e := &Event{SchemaVersion: SchemaVersion, Time: time.Unix(1, 0).UTC(), Type: TypeAuthentication, RequestID: "rid", Route: "r",
		ClientAddr: netip.MustParseAddr("2001:db8::1"), HTTPMethod: "GET", Path: "/a", AuthMethod: "jwt",
		Outcome: OutcomeAllow, Reason: "ok", Subject: "alice", Issuer: "https://idp", Provider: "idp", CredentialID: "jti"}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = appendEvent(buf[:0], e) }); n != 0 {
		t.Fatalf("encoding an event allocates %.0f times", n)
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("rid", "/a", "alice", "<script>", int64(0), int64(0))
	f.Add("\x00\xff", "\u2028", "", "&", int64(-1<<62), int64(3600))
	f.Fuzz(func(t *testing.T, rid, path, subject, rule string, unixNano, offset int64) {
		e := Event{
			SchemaVersion: SchemaVersion, Time: time.Unix(0, unixNano).In(time.FixedZone("", int(offset%(48*3600)))),
			Type: TypeAuthentication, RequestID: rid, Path: path, Outcome: OutcomeAllow, Reason: subject,
			Subject: subject, Issuer: path, Rule: rule, ClientIP: rid,
		}
		want, err := json.Marshal(&e)
		got, ok := appendEvent(nil, &e)
		if (err == nil) != ok {
			t.Fatalf("Marshal error %v, appendEvent ok %v", err, ok)
		}
		if ok && string(got) != string(want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
