//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// The scale-out harness: three gateway processes sharing PostgreSQL (the
// key store and the revocation list) and Redis (the rate limits), as in
// production, on loopback. Each promise of docs/rate-limits.md about
// replicas is one check function below, run in order on one cluster;
// scripts/scaleout.sh runs it. A new promise (a quota count that survives
// a kill) is one more check in TestScaleOut's list, or one more
// killProbe in killProbes.

const (
	scaleReplicas = 3
	scaleRate     = 50 // the shared limit, per second
	// scaleTolerance is the admitted rate's allowed deviation from the
	// limit while Redis is up (the N ± 5 %).
	scaleTolerance = 0.05
	// scaleFallbackTolerance is the allowed deviation of a replica's
	// local fallback (rate ÷ replicas) during an outage: its count is a
	// third as large, so one request more or less weighs three times more.
	scaleFallbackTolerance = 0.10
)

// scaleCluster is the three replicas and what they share.
type scaleCluster struct {
	replicas []*scaleReplica
	redis    *redistest.Proxy // the replicas' only way to Redis
	token    string           // admin token
	client   *http.Client
	apiKey   string // a valid key of consumer "load"
}

// scaleReplica is one gateway process.
type scaleReplica struct {
	name     string
	proc     *gatewayProcess
	proxyURL string
	adminURL string
}

// TestScaleOut runs the scale-out checks in order on one three-replica
// cluster. It needs PostgreSQL and Redis (skipped when unreachable, a
// failure under GATEHOUSE_REQUIRE_SERVICES=1) and takes about 20 s.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three gateway processes against PostgreSQL and Redis")
	}
	redisAddr := redistest.Addr(t)
	dsn := pgtest.TestDSN(t)
	bin := buildBinary(t)
	c := startScaleCluster(t, bin, dsn, redisAddr)
	for _, check := range []struct {
		name string
		run  func(*testing.T, *scaleCluster)
	}{
		{"shared limit across replicas", checkSharedLimit},
		{"Redis down: each limit's policy, authentication closed", checkRedisOutage},
		{"Redis back: shared limits resume", checkRedisRecovery},
		{"SIGKILL loses nothing acknowledged", checkKillLosesNothing},
	} {
		if !t.Run(check.name, func(t *testing.T) { check.run(t, c) }) {
			return // later checks assume the earlier ones' state
		}
	}
}

func startScaleCluster(t *testing.T, bin, dsn, redisAddr string) *scaleCluster {
	t.Helper()
	schema := pgtest.FreshSchema(t, dsn) // dropped after the processes are killed
	redisCfg := redistest.Config(t, redisAddr)
	proxy := redistest.NewProxy(t, redisAddr)
	token, hash := newAdminToken()
	c := &scaleCluster{
		redis:  proxy,
		token:  token,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	for i := range scaleReplicas {
		dir := t.TempDir()
		proxyPort, adminPort := freePort(t), freePort(t)
		cfg := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:%d"
admin:
  address: "127.0.0.1:%d"
  token_hash: %q
api_keys:
  store: {type: postgres, dsn: %q, schema: %q}
revocation:
  enabled: true
redis:
  addresses: [%q]
  key_prefix: %q
  timeouts: {dial: 200ms, read: 200ms, write: 200ms, pool: 200ms}
  breaker: {failures: 3, cool_down: 500ms}
rate_limits:
  store: redis
  expected_replicas: %d
  policies:
    shared:
      limits:
        - {name: shared, rate: %d, per: 1s, key: route, on_redis_error: local}
    strict:
      limits:
        - {name: strict, rate: %d, per: 1s, key: route, on_redis_error: deny}
    metered:
      quotas:
        - {name: daily, limit: 1000, period: day, key: consumer}
lifecycle:
  drain_timeout: 1s
routes:
  - name: shared
    match: {path_prefix: /shared}
    authenticate: {methods: [api_key]}
    rate_limit: shared
    upstream: {targets: ["builtin:echo"]}
  - name: strict
    match: {path_prefix: /strict}
    authenticate: {methods: [api_key]}
    rate_limit: strict
    upstream: {targets: ["builtin:echo"]}
  - name: metered
    match: {path_prefix: /metered}
    authenticate: {methods: [api_key]}
    rate_limit: metered
    upstream: {targets: ["builtin:echo"]}
  - name: plain
    match: {path_prefix: /plain}
    authenticate: {methods: [api_key]}
    upstream: {targets: ["builtin:echo"]}
`, proxyPort, adminPort, hash, dsn, schema, proxy.Addr(), redisCfg.KeyPrefix,
			scaleReplicas, scaleRate, scaleRate)
		cfgPath := filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &scaleReplica{
			name:     fmt.Sprintf("replica-%d", i),
			proxyURL: fmt.Sprintf("http://127.0.0.1:%d", proxyPort),
			adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		}
		r.proc = startGateway(t, bin, cfgPath, dir, r.adminURL)
		c.replicas = append(c.replicas, r)
	}
	consumer := c.createConsumer(t, c.replicas[0], "load")
	_, c.apiKey = c.createKey(t, c.replicas[0], consumer, "load")
	return c
}

// checkSharedLimit: clients spread over the three replicas are admitted
// the shared rate between them, not three times it.
func checkSharedLimit(t *testing.T, c *scaleCluster) {
	rate := c.measure(t, c.replicas, "/shared/x", 3*time.Second)
	t.Logf("shared limit %d/s over %d replicas: admitted %.1f/s (%+.1f %%)", scaleRate, len(c.replicas), rate, 100*(rate/scaleRate-1))
	expectRate(t, "shared limit, three replicas", rate, scaleRate, scaleTolerance)
}

// checkRedisOutage stops Redis (the proxy every replica reaches it
// through): a limit with on_redis_error: local admits rate ÷ replicas in
// each replica, one with deny refuses everything with 429, and
// authentication stays what it was.
func checkRedisOutage(t *testing.T, c *scaleCluster) {
	c.redis.Stop()
	// Every replica notices (connections cut, new ones refused) at its
	// next call; give the breakers time to open.
	c.spray(t, c.replicas, "/shared/warm", 300*time.Millisecond)

	for _, r := range c.replicas {
		// Authentication is never opened: bad and missing keys are 401
		// on every route, limited or not.
		for _, path := range []string{"/shared/a", "/strict/a", "/plain/a"} {
			for _, key := range []string{"", "gh_" + strings.Repeat("A", 40), c.apiKey[:len(c.apiKey)-1] + flipLast(c.apiKey)} {
				if got := c.status(t, r, path, key); got != http.StatusUnauthorized {
					t.Errorf("%s, Redis down: %s with key %q answered %d, want 401", r.name, path, redact(key), got)
				}
			}
		}
		// deny: every request with a good key is refused, with Retry-After.
		for range 5 {
			res := c.get(t, r, "/strict/a", c.apiKey)
			if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s, Redis down: on_redis_error: deny answered %d (Retry-After %q), want 429 with Retry-After",
					r.name, res.StatusCode, res.Header.Get("Retry-After"))
			}
		}
		// Unlimited routes still work: the outage only changes counting.
		if got := c.status(t, r, "/plain/a", c.apiKey); got != http.StatusOK {
			t.Errorf("%s, Redis down: unlimited route answered %d, want 200", r.name, got)
		}
	}
	// local: one replica alone admits its share, rate ÷ expected_replicas
	// rounded down (a shared limit would give it the whole rate).
	share := float64(scaleRate / scaleReplicas)
	for _, r := range c.replicas {
		rate := c.measure(t, []*scaleReplica{r}, "/shared/x", 2*time.Second)
		t.Logf("%s, Redis down: local fallback admitted %.1f/s (want %.1f/s, %+.1f %%)", r.name, rate, share, 100*(rate/share-1))
		expectRate(t, r.name+" local fallback", rate, share, scaleFallbackTolerance)
	}
}

// checkRedisRecovery starts Redis again: without a restart, one replica
// alone is admitted the whole shared rate again (its local share was a
// third of it), and deny limits admit again.
func checkRedisRecovery(t *testing.T, c *scaleCluster) {
	if err := c.redis.Start(); err != nil {
		t.Fatalf("restart the Redis proxy: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range c.replicas {
		for c.status(t, r, "/strict/resume", c.apiKey) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the deny limit still refuses 10 s after Redis came back", r.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rate := c.measure(t, c.replicas[:1], "/shared/x", 2*time.Second)
	t.Logf("Redis back: %s alone admitted %.1f/s of the shared %d/s (%+.1f %%)", c.replicas[0].name, rate, scaleRate, 100*(rate/scaleRate-1))
	expectRate(t, "shared limit after the outage, one replica", rate, scaleRate, scaleTolerance)
	rate = c.measure(t, c.replicas, "/shared/x", 2*time.Second)
	t.Logf("Redis back: three replicas admitted %.1f/s of the shared %d/s (%+.1f %%)", rate, scaleRate, 100*(rate/scaleRate-1))
	expectRate(t, "shared limit after the outage, three replicas", rate, scaleRate, scaleTolerance)
}

// A killProbe is one acknowledged change made through the replica about
// to be killed: record makes it and returns the check that the survivors
// still honour it.
type killProbe struct {
	name   string
	record func(t *testing.T, c *scaleCluster, victim *scaleReplica) (verify func(t *testing.T, survivor *scaleReplica) error)
}

// killProbes are the acknowledged changes a SIGKILL must not lose.
var killProbes = []killProbe{
	{"key created", recordKeyCreated},
	{"key revoked", recordKeyRevoked},
	{"caller on the revocation list", recordCallerRevoked},
	{"quota count", recordQuotaCount},
}

// checkKillLosesNothing makes every killProbe's change through one
// replica, kills it with SIGKILL the moment the admin API answered, and
// checks that the survivors honour each change.
func checkKillLosesNothing(t *testing.T, c *scaleCluster) {
	victim, survivors := c.replicas[0], c.replicas[1:]
	verifies := make([]func(*testing.T, *scaleReplica) error, len(killProbes))
	for i, p := range killProbes {
		verifies[i] = p.record(t, c, victim)
	}
	victim.proc.kill(t)
	c.replicas = survivors
	c.client.CloseIdleConnections()
	for i, p := range killProbes {
		for _, s := range survivors {
			// Changes reach other replicas through PostgreSQL
			// notifications within about a second; allow a few.
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := verifies[i](t, s)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s after SIGKILL of %s: %s lost: %v", s.name, victim.name, p.name, err)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// recordKeyCreated: a key created on the victim is in the survivors'
// admin API and authenticates there.
func recordKeyCreated(t *testing.T, c *scaleCluster, victim *scaleReplica) func(*testing.T, *scaleReplica) error {
	consumer := c.createConsumer(t, victim, "created-before-kill")
	id, secret := c.createKey(t, victim, consumer, "k")
	return func(t *testing.T, s *scaleReplica) error {
		var got struct{ ID, Status string }
		if err := json.Unmarshal(c.admin(t, s, http.MethodGet, "/v1/keys/"+id, nil, http.StatusOK), &got); err != nil || got.ID != id || got.Status != "active" {
			return fmt.Errorf("key %s in the admin API: %+v, %v; want it active", id, got, err)
		}
		if got := c.status(t, s, "/plain/a", secret); got != http.StatusOK {
			return fmt.Errorf("key %s answered %d, want 200", id, got)
		}
		return nil
	}
}

// recordKeyRevoked: a key in use on every replica (so cached there),
// then revoked on the victim, is refused by the survivors.
func recordKeyRevoked(t *testing.T, c *scaleCluster, victim *scaleReplica) func(*testing.T, *scaleReplica) error {
	consumer := c.createConsumer(t, victim, "key-revoked-before-kill")
	id, secret := c.createKey(t, victim, consumer, "k")
	for _, r := range c.replicas {
		if got := c.status(t, r, "/plain/a", secret); got != http.StatusOK {
			t.Fatalf("%s: fresh key answered %d", r.name, got)
		}
	}
	c.admin(t, victim, http.MethodPost, "/v1/keys/"+id+"/revoke", map[string]any{}, http.StatusOK)
	return func(t *testing.T, s *scaleReplica) error {
		if got := c.status(t, s, "/plain/a", secret); got != http.StatusUnauthorized {
			return fmt.Errorf("revoked key %s answered %d, want 401", id, got)
		}
		return nil
	}
}

// recordCallerRevoked: a caller blocked through the revocation list
// (issuer_subject: every credential of the consumer) on the victim is
// refused by the survivors.
func recordCallerRevoked(t *testing.T, c *scaleCluster, victim *scaleReplica) func(*testing.T, *scaleReplica) error {
	consumer := c.createConsumer(t, victim, "blocked-before-kill")
	_, secret := c.createKey(t, victim, consumer, "k")
	for _, r := range c.replicas {
		if got := c.status(t, r, "/plain/a", secret); got != http.StatusOK {
			t.Fatalf("%s: fresh key answered %d", r.name, got)
		}
	}
	var created struct{ Revocations []struct{ ID string } }
	data := c.admin(t, victim, http.MethodPost, "/v1/revocations", map[string]any{
		"kind": "issuer_subject", "issuer": "gatehouse", "values": []string{consumer}, "reason": "scale-out test",
	}, http.StatusCreated)
	if err := json.Unmarshal(data, &created); err != nil || len(created.Revocations) != 1 || created.Revocations[0].ID == "" {
		t.Fatalf("revocation answer: %v: %s", err, data)
	}
	entry := created.Revocations[0].ID
	return func(t *testing.T, s *scaleReplica) error {
		if list := c.admin(t, s, http.MethodGet, "/v1/revocations", nil, http.StatusOK); !bytes.Contains(list, []byte(`"`+entry+`"`)) {
			return fmt.Errorf("revocation %s missing from the admin API's list", entry)
		}
		if got := c.status(t, s, "/plain/a", secret); got != http.StatusUnauthorized {
			return fmt.Errorf("key of blocked consumer %s answered %d, want 401", consumer, got)
		}
		return nil
	}
}

// measure sends load to the replicas (round robin, well above the
// limit) until the first refusal says the burst is drained, then for d,
// and returns the rate admitted during d: only requests sent after that
// refusal count. A fixed warm-up would not do: on a loaded machine fewer
// requests fit in it, the burst outlives it and shows as extra rate.
func (c *scaleCluster) measure(t *testing.T, replicas []*scaleReplica, path string, d time.Duration) float64 {
	t.Helper()
	const maxWarmUp = 5 * time.Second
	giveUp := time.Now().Add(maxWarmUp)
	var drainedAt, admitted, other atomic.Int64 // drainedAt: UnixNano of the first 429, 0 before
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				sent := time.Now()
				from := drainedAt.Load()
				if from == 0 && sent.After(giveUp) || from != 0 && sent.UnixNano() >= from+int64(d) {
					return
				}
				r := replicas[(w+i)%len(replicas)]
				got := 0
				if res, err := c.do(r, path, c.apiKey); err == nil {
					got = res.StatusCode
				}
				switch {
				case got == http.StatusOK && from != 0:
					admitted.Add(1)
				case got == http.StatusTooManyRequests:
					drainedAt.CompareAndSwap(0, time.Now().UnixNano())
				case got == http.StatusOK:
				default:
					other.Add(1)
				}
				time.Sleep(5 * time.Millisecond) // ~1,000 requests/s offered at most
			}
		}()
	}
	wg.Wait()
	if n := other.Load(); n > 0 {
		t.Errorf("%d answers other than 200 and 429 under load", n)
	}
	if drainedAt.Load() == 0 {
		t.Errorf("%s: no request refused in %v at ~1,000 requests/s: the limit is not applied", path, maxWarmUp)
		return 0
	}
	return float64(admitted.Load()) / d.Seconds()
}

// spray sends requests to the replicas for d, answers ignored.
func (c *scaleCluster) spray(t *testing.T, replicas []*scaleReplica, path string, d time.Duration) {
	t.Helper()
	for until := time.Now().Add(d); time.Now().Before(until); {
		for _, r := range replicas {
			_, _ = c.do(r, path, c.apiKey)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func expectRate(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if math.Abs(got-want) > tolerance*want {
		t.Errorf("%s: admitted %.1f/s, want %.1f/s ± %.0f %%", what, got, want, 100*tolerance)
	}
}

func (c *scaleCluster) get(t *testing.T, r *scaleReplica, path, key string) *http.Response {
	t.Helper()
	res, err := c.do(r, path, key)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// do sends a GET with the API key (none if empty) to r's proxy; the
// answer's body is read and closed. Safe from any goroutine.
func (c *scaleCluster) do(r *scaleReplica, path, key string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, r.proxyURL+path, nil)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s: %w", r.name, path, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, nil
}

func (c *scaleCluster) status(t *testing.T, r *scaleReplica, path, key string) int {
	t.Helper()
	return c.get(t, r, path, key).StatusCode
}

// admin calls the admin API of r with body as JSON (none if nil) and
// returns the answer's body, failing the test unless the status is want.
func (c *scaleCluster) admin(t *testing.T, r *scaleReplica, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.adminURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", r.name, method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s: %s %s answered %d, want %d: %s", r.name, method, path, res.StatusCode, want, data)
	}
	return data
}

// createConsumer returns the new consumer's id.
func (c *scaleCluster) createConsumer(t *testing.T, r *scaleReplica, name string) string {
	t.Helper()
	var out struct{ ID string }
	if err := json.Unmarshal(c.admin(t, r, http.MethodPost, "/v1/consumers", map[string]any{"name": name}, http.StatusCreated), &out); err != nil || out.ID == "" {
		t.Fatalf("create consumer %s: %v (id %q)", name, err, out.ID)
	}
	return out.ID
}

// createKey returns the new key's id and secret.
func (c *scaleCluster) createKey(t *testing.T, r *scaleReplica, consumer, name string) (id, secret string) {
	t.Helper()
	var out struct {
		Key    struct{ ID string }
		Secret string
	}
	data := c.admin(t, r, http.MethodPost, "/v1/consumers/"+consumer+"/keys", map[string]any{"name": name}, http.StatusCreated)
	if err := json.Unmarshal(data, &out); err != nil || out.Key.ID == "" || out.Secret == "" {
		t.Fatalf("create key for %s: bad answer: %v", consumer, err)
	}
	return out.Key.ID, out.Secret
}

// flipLast returns a last character different from s's.
func flipLast(s string) string {
	if strings.HasSuffix(s, "x") {
		return "y"
	}
	return "x"
}

// redact shortens a key for a log line.
func redact(key string) string {
	if len(key) > 8 {
		return key[:6] + "…"
	}
	return key
}

// recordQuotaCount: requests the victim admitted under a quota (each one
// acknowledged with 200) are counted in the survivors' view of the
// consumer's usage: a SIGKILL loses no acknowledged quota count.
func recordQuotaCount(t *testing.T, c *scaleCluster, victim *scaleReplica) func(*testing.T, *scaleReplica) error {
	const admitted = 5
	consumer := c.createConsumer(t, victim, "metered-before-kill")
	_, secret := c.createKey(t, victim, consumer, "k")
	for i := 0; i < admitted; i++ {
		if got := c.status(t, victim, "/metered/a", secret); got != http.StatusOK {
			t.Fatalf("%s: metered request %d answered %d", victim.name, i, got)
		}
	}
	return func(t *testing.T, s *scaleReplica) error {
		var got struct {
			Quotas []struct {
				Name  string
				Used  int64
				Limit int64
			}
		}
		if err := json.Unmarshal(c.admin(t, s, http.MethodGet, "/v1/consumers/"+consumer+"/usage", nil, http.StatusOK), &got); err != nil {
			return err
		}
		for _, q := range got.Quotas {
			if q.Name == "daily" {
				if q.Used != admitted {
					return fmt.Errorf("daily quota used %d, want the %d acknowledged requests", q.Used, admitted)
				}
				return nil
			}
		}
		return fmt.Errorf("no daily quota in the usage: %+v", got)
	}
}
