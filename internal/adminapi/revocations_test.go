package adminapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
)

func testRevocations(t *testing.T, f *fixture) {
	var created revocationList
	f.call(http.MethodPost, "/v1/revocations", "/v1/revocations", map[string]any{
		"kind": "client", "issuer": "https://idp.example", "values": []string{"web", "cli"},
		"before": f.clock.Now().Add(-time.Minute).Format(time.RFC3339), "reason": "secret leaked",
	}, http.StatusCreated).decode(t, &created)
	if len(created.Revocations) != 2 || created.Revocations[0].Value != "web" || created.Revocations[0].Before == nil {
		t.Fatalf("created %+v", created.Revocations)
	}
	var list revocationList
	f.call(http.MethodGet, "/v1/revocations", "/v1/revocations", nil, http.StatusOK).decode(t, &list)
	if len(list.Revocations) != 2 {
		t.Fatalf("listed %d entries, want 2", len(list.Revocations))
	}
	id := created.Revocations[0].ID
	f.call(http.MethodDelete, "/v1/revocations/{revocation}", "/v1/revocations/"+id, nil, http.StatusNoContent)
	f.call(http.MethodDelete, "/v1/revocations/{revocation}", "/v1/revocations/"+id, nil, http.StatusNotFound)
	f.call(http.MethodDelete, "/v1/revocations/{revocation}", "/v1/revocations/not-an-id", nil, http.StatusNotFound)
	f.call(http.MethodGet, "/v1/revocations", "/v1/revocations", nil, http.StatusOK).decode(t, &list)
	if len(list.Revocations) != 1 || list.Revocations[0].Value != "cli" {
		t.Fatalf("after delete: %+v", list.Revocations)
	}

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown kind", map[string]any{"kind": "all", "values": []string{"x"}}, "kind"},
		{"no values", map[string]any{"kind": "jti", "values": []string{}}, "values"},
		{"raw token instead of hash", map[string]any{"kind": "token", "values": []string{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}}, "values"},
		{"bad before", map[string]any{"kind": "subject", "values": []string{"a"}, "before": "yesterday"}, "before"},
		{"until in the past", map[string]any{"kind": "jti", "values": []string{"a"}, "until": "2001-01-01T00:00:00Z"}, "until"},
		{"unknown member", map[string]any{"kind": "jti", "values": []string{"a"}, "token": "secret"}, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.call(http.MethodPost, "/v1/revocations", "/v1/revocations", tc.body, http.StatusBadRequest).problem(t)
			found := false
			for _, fe := range p.Errors {
				found = found || fe.Field == tc.field
			}
			if !found {
				t.Errorf("errors %+v do not name %q", p.Errors, tc.field)
			}
		})
	}

	var createdEv, deletedEv int
	for _, e := range f.audit.all() {
		switch e.Type {
		case audit.TypeRevocationCreated:
			createdEv++
			if e.Reason != "revocation_created" || e.ClientID == "" || e.CredentialID == "" {
				t.Errorf("created event %+v", e)
			}
		case audit.TypeRevocationDeleted:
			deletedEv++
		}
	}
	if createdEv != 2 || deletedEv != 1 {
		t.Errorf("audit: %d created, %d deleted events; want 2 and 1", createdEv, deletedEv)
	}
}

// Without a revocation service the operations answer 503, and the key
// operations keep working (and the other way round).
func TestRevocationsOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		method string
		path   string
	}{
		{"revocations off", Config{}, http.MethodGet, "/v1/revocations"},
		{"keys off", Config{}, http.MethodGet, "/v1/keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.TokenHash = sha(testToken)
			h := New(tc.cfg)
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.Header.Set("Authorization", "Bearer "+testToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("%s %s = %d, want 503", tc.method, tc.path, w.Code)
			}
		})
	}
}
