package leakreport_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/apikey/boltstore"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/leakreport"
	"github.com/gatehouse/gatehouse/internal/reply"
)

var (
	bearerSecret = strings.Repeat("b", 32)
	hmacSecret   = strings.Repeat("h", 32)
)

func setup(t *testing.T, cfg leakreport.Config) (*httptest.Server, *keymgmt.Service) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	svc := &keymgmt.Service{Store: store}
	cfg.Path, cfg.Keys = "/leaks", svc
	h, err := leakreport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.Endpoints()[0].Handler.ServeEndpoint(w, r, nil)
		var refused *reply.RefusedError
		switch {
		case err == nil:
		case errors.As(err, &refused) && refused.Unauthenticated:
			http.Error(w, refused.Detail, 401)
		case errors.As(err, &refused):
			http.Error(w, refused.Detail, 400)
		default:
			http.Error(w, err.Error(), 500)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, svc
}

func newKey(t *testing.T, svc *keymgmt.Service) string {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.GetConsumer(ctx, "c"); err != nil {
		if _, err := svc.CreateConsumer(ctx, keymgmt.NewConsumer{Name: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	_, plain, err := svc.CreateKey(ctx, "c", keymgmt.NewKey{})
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func post(t *testing.T, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/leaks", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func sig(body string) string {
	m := hmac.New(sha256.New, []byte(hmacSecret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestAuthentication: with both credentials configured, a report needs
// both; each alone, or a wrong one, is refused and revokes nothing.
func TestAuthentication(t *testing.T) {
	srv, svc := setup(t, leakreport.Config{BearerToken: bearerSecret, HMACSecret: hmacSecret})
	key := newKey(t, svc)
	body := `{"keys": ["` + key + `"]}`
	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"nothing", nil, 401},
		{"bearer only", map[string]string{"Authorization": "Bearer " + bearerSecret}, 401},
		{"signature only", map[string]string{"X-Gatehouse-Signature-256": sig(body)}, 401},
		{"wrong bearer", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 32), "X-Gatehouse-Signature-256": sig(body)}, 401},
		{"signature of another body", map[string]string{"Authorization": "Bearer " + bearerSecret, "X-Gatehouse-Signature-256": sig(body + "x")}, 401},
		{"both", map[string]string{"Authorization": "Bearer " + bearerSecret, "X-Gatehouse-Signature-256": sig(body)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := post(t, srv.URL, body, tc.headers)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, out)
			}
			k, _, err := svc.LookupKey(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			if revoked := k.Status == apikey.StatusRevoked; revoked != (tc.status == 200) {
				t.Fatalf("key status %s after a %d", k.Status, code)
			}
		})
	}
}

// TestBounds: too many keys and malformed bodies are refused before any
// lookup.
func TestBounds(t *testing.T) {
	srv, svc := setup(t, leakreport.Config{BearerToken: bearerSecret, MaxKeys: 2})
	key := newKey(t, svc)
	auth := map[string]string{"Authorization": "Bearer " + bearerSecret}
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"too many keys", `{"keys": ["` + key + `", "a", "b"]}`, 400},
		{"unknown member", `{"keys": ["a"], "extra": 1}`, 400},
		{"trailing data", `{"keys": ["a"]} {}`, 400},
		{"empty", `{"keys": []}`, 400},
		{"within bounds", `{"keys": ["a", "b"]}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out := post(t, srv.URL, tc.body, auth); code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, out)
			}
		})
	}
	k, _, _ := svc.LookupKey(context.Background(), key)
	if k.Status != apikey.StatusActive {
		t.Fatal("a refused report revoked the key")
	}
	var out struct {
		Results []leakreport.Result `json:"results"`
	}
	_, body := post(t, srv.URL, `{"keys": ["`+key+`", "`+key+`"]}`, auth)
	if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Results) != 2 ||
		out.Results[0].Status != leakreport.StatusRevoked || out.Results[1].Status != leakreport.StatusNotFound {
		t.Fatalf("a key reported twice: %s", body)
	}
}

func TestNewRefusesWeakSecrets(t *testing.T) {
	for _, cfg := range []leakreport.Config{
		{Keys: &keymgmt.Service{}},
		{Keys: &keymgmt.Service{}, BearerToken: "short"},
		{Keys: &keymgmt.Service{}, HMACSecret: "short"},
		{BearerToken: bearerSecret},
	} {
		if _, err := leakreport.New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}
