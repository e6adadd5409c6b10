package adminapi

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
)

// testKeyLookup: POST /v1/key-lookup names the stored key (and consumer) a
// plaintext key is, whatever its status; malformed and unknown keys are
// 404; the key appears in no log.
func testKeyLookup(t *testing.T, f *fixture) {
	ctx := t.Context()
	c, err := f.svc.CreateConsumer(ctx, keymgmt.NewConsumer{Name: "lookup-co"})
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := f.svc.CreateKey(ctx, c.ID, keymgmt.NewKey{Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Key      apikey.Key      `json:"key"`
		Consumer apikey.Consumer `json:"consumer"`
	}
	f.call("POST", "/v1/key-lookup", "/v1/key-lookup", map[string]string{"key": secret}, 200).decode(t, &got)
	if got.Key.ID != k.ID || got.Consumer.ID != c.ID || got.Key.Status != apikey.StatusActive {
		t.Fatalf("lookup: %+v", got)
	}
	if _, err := f.svc.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	f.call("POST", "/v1/key-lookup", "/v1/key-lookup", map[string]string{"key": secret}, 200).decode(t, &got)
	if got.Key.Status != apikey.StatusRevoked {
		t.Fatalf("revoked key looked up as %q", got.Key.Status)
	}
	unknown, _ := apikey.Format{}.Generate()
	for _, bad := range []string{unknown, "gate_live_nope", ""} {
		f.call("POST", "/v1/key-lookup", "/v1/key-lookup", map[string]string{"key": bad}, 404)
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Fatal("the key reached the log")
	}
}
