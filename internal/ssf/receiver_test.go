package ssf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/ssf"
	"github.com/gatehouse/gatehouse/internal/ssf/ssftest"
)

const (
	aud       = "https://gw.example/ssf"
	pushToken = "push-token-0123456789abcdef"
)

type call struct {
	kind, issuer, subject string
	before                time.Time
}

// actions records what the receiver asks for; fail makes revocations
// fail as a store outage would.
type actions struct {
	mu    sync.Mutex
	calls []call
	fail  error
}

func (a *actions) RevokeSubject(_ context.Context, issuer, subject string, before time.Time, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.calls = append(a.calls, call{"revoke", issuer, subject, before})
	return nil
}

func (a *actions) InvalidateSubject(issuer, subject string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, call{"invalidate", issuer, subject, time.Time{}})
}

func (a *actions) take() []call {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.calls
	a.calls = nil
	return c
}

type events struct {
	mu sync.Mutex
	ev []audit.Event
}

func (e *events) Log(ev *audit.Event) { e.mu.Lock(); e.ev = append(e.ev, *ev); e.mu.Unlock() }
func (e *events) last() audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ev) == 0 {
		return audit.Event{}
	}
	return e.ev[len(e.ev)-1]
}

func start(t *testing.T, tr *ssftest.Transmitter, metadata bool) (string, *actions, *events) {
	t.Helper()
	kc := keyset.Config{Name: "t", Issuer: tr.Issuer, JWKSURI: tr.JWKSURI}
	if metadata {
		kc.JWKSURI, kc.Discovery, kc.DiscoveryURL = "", true, tr.MetadataURL
	}
	set, err := keyset.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	set.Start()
	t.Cleanup(set.Close)
	act, ev := &actions{}, &events{}
	r, err := ssf.New(ssf.Config{Path: "/ssf", Actions: act, Audit: ev, Transmitters: []*ssf.Transmitter{{
		Name: "tx", Issuer: tr.Issuer, Keys: set, Audience: []string{aud}, PushToken: pushToken,
		Subjects: ssf.Subjects{Formats: []string{"iss_sub", "email"}, Issuers: []string{"https://idp.example"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.Endpoints()[0].Handler.ServeEndpoint(w, req, nil); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/ssf", act, ev
}

func TestReceiver(t *testing.T) {
	tr := ssftest.Start(t)
	url, act, ev := start(t, tr, true)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	valid := func(typ string) map[string]any { return tr.Claims(aud, typ, "https://idp.example", "alice", at) }
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	replayed := tr.Sign(t, valid(ssf.EventSessionRevoked), nil)
	if code, body := ssftest.Push(t, url, pushToken, replayed); code != 202 {
		t.Fatalf("first push: %d %s", code, body)
	}
	act.take()

	for _, tc := range []struct {
		name     string
		set      func() string
		token    string
		ctype    string
		status   int
		err      string
		reason   ssf.Reason
		want     []call
		actsFail bool
	}{
		{name: "session revoked", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), nil) },
			status: 202, reason: ssf.ReasonSubjectRevoked, want: []call{{"revoke", "https://idp.example", "alice", at}}},
		{name: "credential change", set: func() string { return tr.Sign(t, valid(ssf.EventCredentialChange), nil) },
			status: 202, reason: ssf.ReasonSubjectRevoked, want: []call{{"revoke", "https://idp.example", "alice", at}}},
		{name: "token claims change", set: func() string { return tr.Sign(t, valid(ssf.EventTokenClaimsChange), nil) },
			status: 202, reason: ssf.ReasonCacheInvalidated, want: []call{{"invalidate", "https://idp.example", "alice", time.Time{}}}},
		{name: "unknown event accepted and ignored", set: func() string {
			return tr.Sign(t, valid("https://schemas.openid.net/secevent/caep/event-type/assurance-level-change"), nil)
		}, status: 202, reason: ssf.ReasonEventIgnored},
		{name: "email subject, CAEP style", set: func() string {
			c := valid(ssf.EventSessionRevoked)
			delete(c, "sub_id")
			c["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{"subject": map[string]any{"format": "email", "email": "a@example.com"}, "event_timestamp": at.Unix()}}
			return tr.Sign(t, c, nil)
		}, status: 202, reason: ssf.ReasonSubjectRevoked, want: []call{{"revoke", "", "a@example.com", at}}},
		{name: "subject of another issuer is not acted on", set: func() string {
			return tr.Sign(t, tr.Claims(aud, ssf.EventSessionRevoked, "https://other.example", "alice", at), nil)
		}, status: 202, reason: ssf.ReasonSubjectUnmapped},
		{name: "event timestamp in the future is clamped to now", set: func() string {
			return tr.Sign(t, tr.Claims(aud, ssf.EventSessionRevoked, "https://idp.example", "bob", time.Now().Add(time.Hour)), nil)
		}, status: 202, reason: ssf.ReasonSubjectRevoked},
		{name: "forged signature", set: func() string {
			return ssftest.SignWith(t, jose.SigningKey{Algorithm: jose.ES256, Key: forger}, "ssf-test-1", valid(ssf.EventSessionRevoked), nil)
		}, status: 400, err: ssf.ErrCodeInvalidKey, reason: ssf.ReasonInvalidKey},
		{name: "HMAC signature", set: func() string {
			return ssftest.SignWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, "ssf-test-1", valid(ssf.EventSessionRevoked), nil)
		}, status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "replayed jti", set: func() string { return replayed }, status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonReplayed},
		{name: "wrong audience", set: func() string {
			return tr.Sign(t, tr.Claims("https://other.example", ssf.EventSessionRevoked, "https://idp.example", "alice", at), nil)
		}, status: 400, err: ssf.ErrCodeInvalidAudience, reason: ssf.ReasonInvalidAudience},
		{name: "wrong issuer", set: func() string {
			c := valid(ssf.EventSessionRevoked)
			c["iss"] = "https://evil.example"
			return tr.Sign(t, c, nil)
		}, status: 400, err: ssf.ErrCodeInvalidIssuer, reason: ssf.ReasonInvalidIssuer},
		{name: "bad push token", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), nil) },
			token: "wrong-token-0123456789", status: 401, err: ssf.ErrCodeAuthenticationFailed, reason: ssf.ReasonAuthenticationFailed},
		{name: "no push token", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), nil) },
			token: "-", status: 401, err: ssf.ErrCodeAuthenticationFailed, reason: ssf.ReasonAuthenticationFailed},
		{name: "wrong typ", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), map[string]any{"typ": "JWT"}) },
			status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "too old", set: func() string {
			c := valid(ssf.EventSessionRevoked)
			c["iat"] = time.Now().Add(-48 * time.Hour).Unix()
			return tr.Sign(t, c, nil)
		}, status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "two events", set: func() string {
			c := valid(ssf.EventSessionRevoked)
			c["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{}, ssf.EventCredentialChange: map[string]any{}}
			return tr.Sign(t, c, nil)
		}, status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "wrong content type", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), nil) },
			ctype: "application/jwt", status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "not a JWS", set: func() string { return "not.a.set" }, status: 400, err: ssf.ErrCodeInvalidRequest, reason: ssf.ReasonInvalidRequest},
		{name: "store down: 503, retried later", set: func() string { return tr.Sign(t, valid(ssf.EventSessionRevoked), nil) },
			actsFail: true, status: 503, reason: ssf.ReasonUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.actsFail {
				act.mu.Lock()
				act.fail = errors.New("store down")
				act.mu.Unlock()
				defer func() { act.mu.Lock(); act.fail = nil; act.mu.Unlock() }()
			}
			token := pushToken
			switch tc.token {
			case "":
			case "-":
				token = ""
			default:
				token = tc.token
			}
			set := tc.set()
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(set))
			req.Header.Set("Content-Type", "application/secevent+jwt")
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.err != "" {
				var body struct{ Err, Description string }
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Err != tc.err || body.Description == "" {
					t.Fatalf("body %+v (%v), want err %s", body, err, tc.err)
				}
				if res.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
				}
			}
			if got := ev.last(); got.Type != audit.TypeSharedSignal || got.Reason != string(tc.reason) {
				t.Errorf("audit event %s/%s, want %s/%s", got.Type, got.Reason, audit.TypeSharedSignal, tc.reason)
			} else if strings.Contains(got.Subject+got.Issuer+got.CredentialID+got.SignalEvent, set) {
				t.Errorf("the audit event carries the SET")
			}
			got := act.take()
			if tc.name == "event timestamp in the future is clamped to now" {
				if len(got) != 1 || got[0].before.After(time.Now()) {
					t.Fatalf("calls %+v: the cut-off is not clamped", got)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("calls %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].kind != tc.want[i].kind || got[i].issuer != tc.want[i].issuer || got[i].subject != tc.want[i].subject || !got[i].before.Equal(tc.want[i].before) {
					t.Errorf("call %+v, want %+v", got[i], tc.want[i])
				}
			}
		})
	}

	t.Run("a SET refused for a store outage is accepted on retry", func(t *testing.T) {
		set := tr.Sign(t, valid(ssf.EventSessionRevoked), nil)
		act.mu.Lock()
		act.fail = errors.New("store down")
		act.mu.Unlock()
		if code, _ := ssftest.Push(t, url, pushToken, set); code != 503 {
			t.Fatalf("during the outage: %d", code)
		}
		act.mu.Lock()
		act.fail = nil
		act.mu.Unlock()
		if code, body := ssftest.Push(t, url, pushToken, set); code != 202 {
			t.Fatalf("retry: %d %s", code, body)
		}
		if len(act.take()) != 1 {
			t.Fatal("the retry was not acted on")
		}
	})
}

func TestReceiverWithJWKSURI(t *testing.T) {
	tr := ssftest.Start(t)
	url, act, _ := start(t, tr, false)
	set := tr.Sign(t, tr.Claims(aud, ssf.EventSessionRevoked, "https://idp.example", "carol", time.Now()), nil)
	if code, body := ssftest.Push(t, url, pushToken, set); code != 202 {
		t.Fatalf("push: %d %s", code, body)
	}
	if got := act.take(); len(got) != 1 || got[0].subject != "carol" {
		t.Fatalf("calls %+v", got)
	}
}

func TestNewRefusesWeakConfig(t *testing.T) {
	keys := &keyset.Set{}
	for _, tc := range []struct {
		name string
		tr   ssf.Transmitter
	}{
		{"short push token", ssf.Transmitter{Name: "a", Issuer: "i", Keys: keys, Audience: []string{"a"}, PushToken: "short"}},
		{"no audience", ssf.Transmitter{Name: "a", Issuer: "i", Keys: keys, PushToken: pushToken}},
		{"no issuer", ssf.Transmitter{Name: "a", Keys: keys, Audience: []string{"a"}, PushToken: pushToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.tr
			if _, err := ssf.New(ssf.Config{Path: "/x", Actions: &actions{}, Transmitters: []*ssf.Transmitter{&tr}}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestReceiverMetadataOfAnotherIssuer: an SSF configuration document
// naming another issuer is never used for keys: pushes get 503 (retried),
// not 202.
func TestReceiverMetadataOfAnotherIssuer(t *testing.T) {
	tr := ssftest.Start(t)
	set, err := keyset.New(keyset.Config{Name: "t", Issuer: "https://someone-else.example", Discovery: true, DiscoveryURL: tr.MetadataURL,
		MinRefreshInterval: time.Second, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	set.Start()
	t.Cleanup(set.Close)
	act := &actions{}
	r, err := ssf.New(ssf.Config{Path: "/ssf", Actions: act, Transmitters: []*ssf.Transmitter{{
		Name: "tx", Issuer: tr.Issuer, Keys: set, Audience: []string{aud}, PushToken: pushToken}}})
	if err != nil {
		t.Fatal(err)
	}
	body := tr.Sign(t, tr.Claims(aud, ssf.EventSessionRevoked, tr.Issuer, "alice", time.Now()), nil)
	req := httptest.NewRequest(http.MethodPost, "/ssf", strings.NewReader(body))
	req.Header.Set("Content-Type", ssf.MediaType)
	req.Header.Set("Authorization", "Bearer "+pushToken)
	w := httptest.NewRecorder()
	err = r.ServeEndpoint(w, req, nil)
	if err == nil || len(act.take()) != 0 {
		t.Fatalf("err %v, status %d: keys from a document of another issuer were used", err, w.Code)
	}
}
