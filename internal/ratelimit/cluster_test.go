package ratelimit_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
)

// startCluster runs a Redis Cluster of three masters of its own on
// loopback and returns their addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server and redis-cli are needed (GATEHOUSE_REQUIRE_SERVICES=1)")
		}
		t.Skip("redis-server or redis-cli not installed, skipping the cluster test")
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		if p, _ := strconv.Atoi(port); p > 55535 {
			// The cluster bus listens on port+10000.
			i--
			continue
		}
		dir := t.TempDir()
		cmd := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, addr)
	}
	for _, addr := range addrs {
		waitPing(t, redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1}))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
	defer cc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := cc.ClusterInfo(context.Background()).Result()
		if err == nil && len(info) > 0 && containsLine(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addrs
}

func containsLine(s, line string) bool {
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		l := s[:i]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if l == line {
			return true
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return false
}

func waitPing(t *testing.T, c *redis.Client) {
	t.Helper()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// In a Redis Cluster the GCRA semantics hold, and several limits whose
// keys live in different slots stay all or nothing.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := startCluster(t)
	cfg := config.DefaultRedis()
	cfg.Mode = "cluster"
	cfg.Addresses = addrs
	cfg.KeyPrefix = "gatehouse-test:"
	c := redistest.ClientFor(t, cfg)
	t.Run("semantics", func(t *testing.T) {
		n := 0
		runGCRACases(t, func(t *testing.T) ratelimit.Limiter {
			n++
			l, err := ratelimit.NewRedis(c, []ratelimit.Limit{gcraLimit}, ratelimit.RedisOptions{Namespace: "case" + strconv.Itoa(n)})
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})
	t.Run("all or nothing across slots", func(t *testing.T) {
		l, err := ratelimit.NewRedis(c, multiLimits, ratelimit.RedisOptions{Namespace: "multi"})
		if err != nil {
			t.Fatal(err)
		}
		// The two limits' keys are in different slots: the test checks
		// the cross-slot path.
		s0, err0 := c.Redis().ClusterKeySlot(context.Background(), l.Key(0, "k")).Result()
		s1, err1 := c.Redis().ClusterKeySlot(context.Background(), l.Key(1, "b1")).Result()
		if err0 != nil || err1 != nil || s0 == s1 {
			t.Fatalf("slots %d and %d (%v, %v): pick keys in different slots", s0, s1, err0, err1)
		}
		runMulti(t, l, true)
	})
	t.Run("a node that lost its scripts counts once", func(t *testing.T) {
		l, err := ratelimit.NewRedis(c, multiLimits, ratelimit.RedisOptions{Namespace: "flushed"})
		if err != nil {
			t.Fatal(err)
		}
		cc := c.Redis().(*redis.ClusterClient)
		ctx := context.Background()
		// Run once so every node involved knows the scripts.
		out := make([]ratelimit.Decision, 2)
		if _, err := l.Allow(ctx, []string{"warm", "warm"}, time.Now(), 1, out); err != nil {
			t.Fatal(err)
		}
		// The node holding the second limit's key forgets them (a
		// restart, a failover to a replica that never saw them).
		node, err := cc.MasterForKey(ctx, l.Key(1, "b1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := node.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		runMulti(t, l, true)
	})
}
