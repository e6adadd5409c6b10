package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// TestConsumersUsage: consumers and keys made with the CLI, requests
// through a real gateway with a daily quota, and "consumers usage" shows
// the counts the gateway kept (table and --json).
func TestConsumersUsage(t *testing.T) {
	dir := isolate(t)
	token, hash := newAdminToken()
	t.Setenv(adminTokenEnv, token)
	cfgText := `
listeners:
  - name: main
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token_hash: "` + hash + `"
api_keys:
  store: {type: embedded, path: ` + filepath.Join(dir, "keys.db") + `}
rate_limits:
  policies:
    metered:
      quotas: [{name: daily, limit: 2, period: day}]
routes:
  - name: hello
    match: {path_prefix: /}
    authenticate: {methods: [api_key]}
    rate_limit: metered
    upstream: {targets: ["builtin:echo"]}
`
	cfg, file, err := config.Parse(filepath.Join(dir, "gatehouse.yaml"), []byte(cfgText), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, file, gateway.Options{Pipeline: pipeline.Options{Stdout: io.Discard, Stderr: io.Discard}})
	if err != nil {
		t.Fatal(err)
	}
	g.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	admin := "http://" + g.AdminAddr().String()
	run := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := cli(t, append(args, "--admin", admin)...)
		if code != exitOK {
			t.Fatalf("gatehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	run("consumers", "create", "--name", "acme")
	secret := secretRE.FindString(run("keys", "create", "--consumer", "acme"))
	if secret == "" {
		t.Fatal("no secret")
	}
	var statuses []int
	for range 3 {
		req, _ := http.NewRequest("GET", "http://"+g.Addr("main").String()+"/x", nil)
		req.Header.Set("X-API-Key", secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429", statuses)
	}
	out := run("consumers", "usage", "acme")
	if !regexp.MustCompile(`(?m)^metered\s+daily\s+day\s+2\s+2\s+\S`).MatchString(out) {
		t.Errorf("consumers usage:\n%s", out)
	}
	var u struct {
		Name   string `json:"name"`
		Quotas []struct {
			Used, Limit int64
			Reset       time.Time
		} `json:"quotas"`
	}
	if err := json.Unmarshal([]byte(run("consumers", "usage", "acme", "--json")), &u); err != nil || u.Name != "acme" || len(u.Quotas) != 1 ||
		u.Quotas[0].Used != 2 || u.Quotas[0].Limit != 2 || !u.Quotas[0].Reset.After(time.Now()) {
		t.Errorf("consumers usage --json: %+v %v", u, err)
	}
	if code, _, stderr := cli(t, "consumers", "usage", "nobody", "--admin", admin); code == exitOK || !strings.Contains(stderr, "Not found") {
		t.Errorf("unknown consumer: exit %d, %s", code, stderr)
	}
}
