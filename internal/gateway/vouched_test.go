package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestConnectionCannotRemoveVouchedHeaders sends, over a raw connection,
// authenticated requests whose Connection header names headers the gateway
// sets for the upstream (hop-by-hop removal deletes what Connection names).
// The upstream must receive exactly what it receives without that header:
// a client must never be able to delete its subject, its groups (a backend
// deny-list of "suspended" users), the request id or the forwarding chain.
func TestConnectionCannotRemoveVouchedHeaders(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"identity_providers:\n"+providerYAML("idp", idp, "")+
		"identity_headers: {claims: {email: X-Auth-Email}}\n"+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")).serve()
	tg.waitReady(t)
	tok := idp.Mint(t, map[string]any{"sub": "alice", "email": "alice@example.com", "scope": "read write",
		"client_id": "app-1", "groups": []string{"suspended"},
		"realm_access": map[string]any{"roles": []string{"reader"}}})

	const rid = "req-0123456789abcdef"
	vouched := []string{"X-Auth-Subject", "X-Auth-Issuer", "X-Auth-Method", "X-Auth-Client-Id", "X-Auth-Scopes",
		"X-Auth-Roles", "X-Auth-Groups", "X-Auth-Email", "X-Request-Id",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}
	send := func(t *testing.T, connection []string) http.Header {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "GET /api/x HTTP/1.1\r\nHost: shop.test\r\nAuthorization: Bearer %s\r\nX-Request-Id: %s\r\n", tok, rid)
		for _, c := range connection {
			b.WriteString("Connection: " + c + "\r\n")
		}
		b.WriteString("\r\n")
		res, body := dialRaw(t, tg.url).send(b.String())
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		return decodeReceived(t, body).Headers
	}

	want := send(t, nil)
	for _, name := range vouched {
		if want.Get(name) == "" {
			t.Fatalf("baseline: the upstream got no %s: %v", name, want)
		}
	}
	if want.Get("X-Auth-Subject") != "alice" || want.Get("X-Auth-Groups") != "suspended" ||
		want.Get("X-Auth-Email") != "alice@example.com" || want.Get("X-Request-Id") != rid {
		t.Fatalf("baseline identity headers %v", want)
	}

	type tc struct {
		name       string
		connection []string
	}
	var cases []tc
	for _, name := range vouched {
		cases = append(cases, tc{"names " + name, []string{name}})
	}
	cases = append(cases,
		tc{"lower case", []string{"x-auth-subject, x-auth-groups"}},
		tc{"upper case", []string{"X-AUTH-SUBJECT,X-AUTH-GROUPS,X-REQUEST-ID"}},
		tc{"several Connection headers", []string{"keep-alive", "X-Auth-Subject", "X-Auth-Groups, X-Auth-Roles"}},
		tc{"comma list with blanks", []string{" , X-Auth-Subject,,  x-auth-groups ,X-Forwarded-For,\tForwarded ,"}},
		tc{"every vouched header at once", []string{strings.Join(vouched, ", ")}},
		tc{"with close", []string{"close, X-Auth-Subject, X-Auth-Groups"}},
		tc{"with upgrade", []string{"Upgrade, X-Auth-Subject"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := send(t, c.connection)
			for _, name := range vouched {
				if g, w := strings.Join(got.Values(name), "|"), strings.Join(want.Values(name), "|"); g != w {
					t.Errorf("%s = %q, want %q", name, g, w)
				}
			}
		})
	}
}

// TestClientIdentityCopiesNeverReachUpstream: whatever the client sends
// under an identity header's name (in any spelling), the upstream sees
// only what the gateway set, or nothing when the gateway set nothing.
func TestClientIdentityCopiesNeverReachUpstream(t *testing.T) {
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	tg := startGateway(t, header+"identity_providers:\n"+providerYAML("idp", idp, "")+
		"identity_headers: {claims: {email: X-Auth-Email}}\n"+
		"routes:\n"+authedRoute("api", "/api", up.URL, "")+
		routeYAML("open", "{path_prefix: /open}", `{targets: ["`+up.URL+`"]}`)).serve()
	tg.waitReady(t)
	// No groups, roles or email: the gateway sets no such header.
	tok := idp.Mint(t, map[string]any{"sub": "bob"})
	spoof := "X-Auth-Subject: admin\r\nx-auth-groups: admins\r\nX_Auth_Roles: root\r\nX-AUTH-EMAIL: root@example.com\r\n" +
		"X-Auth-Groups: second\r\nConnection: X-Auth-Subject\r\n"
	for _, c := range []struct{ name, path, auth, wantSubject string }{
		{"authenticated", "/api/x", "Authorization: Bearer " + tok + "\r\n", "bob"},
		{"public", "/open/x", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := dialRaw(t, tg.url).send("GET " + c.path + " HTTP/1.1\r\nHost: gw.test\r\n" + c.auth + spoof + "\r\n")
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			h := decodeReceived(t, body).Headers
			if got := strings.Join(h.Values("X-Auth-Subject"), "|"); got != c.wantSubject {
				t.Errorf("X-Auth-Subject %q, want %q", got, c.wantSubject)
			}
			for name := range h {
				switch strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
				case "x-auth-groups", "x-auth-roles", "x-auth-email":
					t.Errorf("a client copy reached the upstream: %s: %q", name, h[name])
				}
			}
		})
	}
}

// TestClientIdentityTrailersNeverReachUpstream: a chunked request may
// declare trailers; one named like an identity header must not reach the
// upstream either (some backends merge trailers into headers).
func TestClientIdentityTrailersNeverReachUpstream(t *testing.T) {
	trailers := make(chan http.Header, 1)
	up := newHandlerUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		trailers <- r.Trailer
	})
	tg := startGateway(t, header+"routes:\n"+routeYAML("open", "{path_prefix: /}", `{targets: ["`+up+`"]}`)).serve()
	res, body := dialRaw(t, tg.url).send("POST /x HTTP/1.1\r\nHost: gw.test\r\nTrailer: X-Auth-Subject, X-Auth-Groups, X-Request-Id, X-Other\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Auth-Subject: admin\r\nX-Auth-Groups: admins\r\nX-Request-Id: forged\r\nX-Other: 1\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := <-trailers
	for _, name := range []string{"X-Auth-Subject", "X-Auth-Groups", "X-Request-Id"} {
		if v, ok := got[name]; ok {
			t.Errorf("trailer %s reached the upstream: %q", name, v)
		}
	}
}
