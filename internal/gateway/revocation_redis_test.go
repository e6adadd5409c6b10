package gateway

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/testidp"
)

// TestRevocationPropagationRedis: three gateway processes on one
// PostgreSQL store whose LISTEN/NOTIFY they are told to ignore
// (revocation.feed: redis, as behind PgBouncer), and one Redis; the
// third reaches Redis through a proxy the test cuts. A revocation through
// any of them is refused by all by Redis pub/sub; with Redis cut, the
// third polls (gatehouse_revocation_polling 1) and still converges; with
// Redis back it listens again.
func TestRevocationPropagationRedis(t *testing.T) {
	raddr := redistest.Addr(t)
	dsn := pgtest.TestDSN(t)
	schema := pgtest.FreshSchema(t, dsn)
	rcfg := redistest.Config(t, raddr)
	proxy := redistest.NewProxy(t, raddr)
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	store := fmt.Sprintf("{type: postgres, dsn: %q, schema: %s}", dsn, schema)
	extra := func(addr string) string {
		return fmt.Sprintf("  feed: redis\n  poll_interval: 300ms\n  resync_interval: 1h\nredis:\n  addresses: [%q]\n  key_prefix: %q\n  breaker: {cool_down: 100ms}\n",
			addr, rcfg.KeyPrefix)
	}
	var rs []replica
	for i, addr := range []string{raddr, raddr, proxy.Addr()} {
		tg := startGateway(t, revocationConfig(idp, up.URL, store, extra(addr))).serve()
		tg.waitReady(t)
		rs = append(rs, replica{fmt.Sprintf("replica-%d", i+1), tg})
	}
	polling := func(r replica) float64 {
		v, _ := r.tg.scrape(t).value("gatehouse_revocation_polling", nil)
		return v
	}
	for _, r := range rs {
		waitFor(t, r.name+" to subscribe (gatehouse_revocation_polling 0)", 5*time.Second, func() bool { return polling(r) == 0 })
	}
	refused := func(r replica, tok string) bool {
		res, _ := bearer(t, r.tg.url+"/api/x", tok, nil)
		return res.StatusCode == 401
	}
	// measure revokes a fresh token through rs[via] and returns the time
	// until every replica refuses it.
	measure := func(t *testing.T, via int) time.Duration {
		t.Helper()
		jti := fmt.Sprintf("jti-%d", time.Now().UnixNano())
		tok := idp.Mint(t, map[string]any{"sub": "alice", "jti": jti})
		for _, r := range rs {
			if refused(r, tok) {
				t.Fatalf("%s refuses the token before its revocation", r.name)
			}
		}
		start := time.Now()
		revoke(t, rs[via].tg.adminURL, map[string]any{"kind": "jti", "issuer": idp.Issuer, "values": []string{jti}})
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				for !refused(r, tok) {
					if time.Since(start) > 10*time.Second {
						t.Errorf("%s still accepts the token after 10s", r.name)
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	stats := func(ds []time.Duration) string {
		slices.Sort(ds)
		return fmt.Sprintf("min %v, median %v, max %v (%d trials)", ds[0].Round(time.Millisecond),
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	}

	var pubsub []time.Duration
	for i := range 10 {
		pubsub = append(pubsub, measure(t, i%3))
	}
	t.Logf("propagation to 3 replicas by Redis pub/sub (LISTEN ignored, polling every 300ms only while Redis is down): %s", stats(pubsub))

	known := idp.Mint(t, map[string]any{"sub": "zed", "jti": "jti-known"})
	revoke(t, rs[0].tg.adminURL, map[string]any{"kind": "jti", "values": []string{"jti-known"}})
	waitFor(t, "replica-3 to refuse the known token", 5*time.Second, func() bool { return refused(rs[2], known) })

	proxy.Stop()
	waitFor(t, "replica-3 to poll (gatehouse_revocation_polling 1)", 5*time.Second, func() bool { return polling(rs[2]) == 1 })
	for _, r := range rs[:2] {
		if polling(r) != 0 {
			t.Errorf("%s, whose Redis is up, polls", r.name)
		}
	}
	if !refused(rs[2], known) {
		t.Fatal("replica-3 forgot a revocation when its Redis went away")
	}
	var polled []time.Duration
	for range 3 {
		polled = append(polled, measure(t, 0))
	}
	t.Logf("propagation with replica-3 polling (Redis cut): %s", stats(polled))

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica-3 to listen again (gatehouse_revocation_polling 0)", 5*time.Second, func() bool { return polling(rs[2]) == 0 })
	var back []time.Duration
	for i := range 3 {
		back = append(back, measure(t, i%3))
	}
	t.Logf("propagation with Redis back: %s", stats(back))
}

// TestRevocationFeedChoice: what revocation.feed makes of the channels,
// as gatehouse_revocation_polling shows it, before and after one of them
// (Redis, or the LISTEN connection) is cut.
func TestRevocationFeedChoice(t *testing.T) {
	raddr := redistest.Addr(t)
	dsn := pgtest.TestDSN(t)
	idp := testidp.Start(t)
	up := newUpstream(t, "api")
	for _, tc := range []struct {
		name                        string
		feed                        string
		cutPostgres                 bool // cut the LISTEN connection instead of Redis
		pollingBefore, pollingAfter float64
	}{
		{name: "auto: Redis carries on without LISTEN", feed: "auto", cutPostgres: true, pollingBefore: 0, pollingAfter: 0},
		{name: "postgres: polls without LISTEN", feed: "postgres", cutPostgres: true, pollingBefore: 0, pollingAfter: 1},
		{name: "auto: LISTEN carries on without Redis", feed: "auto", pollingBefore: 0, pollingAfter: 0},
		{name: "redis: polls without Redis", feed: "redis", pollingBefore: 0, pollingAfter: 1},
		{name: "postgres: Redis is not its concern", feed: "postgres", pollingBefore: 0, pollingAfter: 0},
		{name: "none: always polls", feed: "none", pollingBefore: 1, pollingAfter: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcfg := redistest.Config(t, raddr)
			proxy := redistest.NewProxy(t, raddr)
			pgProxy, viaProxy := pgtest.NewProxy(t, dsn)
			store := fmt.Sprintf("{type: postgres, dsn: %q, listen_dsn: %q, schema: %s}", dsn, viaProxy, pgtest.FreshSchema(t, dsn))
			extra := fmt.Sprintf("  feed: %s\nredis:\n  addresses: [%q]\n  key_prefix: %q\n", tc.feed, proxy.Addr(), rcfg.KeyPrefix)
			tg := startGateway(t, revocationConfig(idp, up.URL, store, extra)).serve()
			tg.waitReady(t)
			polling := func() float64 {
				v, _ := tg.scrape(t).value("gatehouse_revocation_polling", nil)
				return v
			}
			waitFor(t, fmt.Sprintf("gatehouse_revocation_polling %v", tc.pollingBefore), 5*time.Second, func() bool { return polling() == tc.pollingBefore })
			if tc.cutPostgres {
				pgProxy.Close()
			} else {
				proxy.Stop()
			}
			if tc.pollingAfter == 1 {
				waitFor(t, "gatehouse_revocation_polling 1 with the channel cut", 5*time.Second, func() bool { return polling() == 1 })
			} else {
				time.Sleep(300 * time.Millisecond) // let the feed notice the cut
				if v := polling(); v != tc.pollingAfter {
					t.Errorf("gatehouse_revocation_polling %v with the channel cut, want %v", v, tc.pollingAfter)
				}
			}
		})
	}
}
