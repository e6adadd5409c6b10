package redisconn_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/redisconn"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// A master found through a Sentinel of its own, with a password on the
// master and another on the Sentinel.
func TestSentinel(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			t.Fatal("redis-server not installed (GATEHOUSE_REQUIRE_SERVICES=1)")
		}
		t.Skip("redis-server not installed, skipping the Sentinel test")
	}
	dir := t.TempDir()
	master, sentinel := freePort(t), freePort(t)
	startProcess(t, bin, "--port", master, "--bind", "127.0.0.1", "--requirepass", "master-pw", "--save", "",
		"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "master.log"))
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte("port "+sentinel+"\nbind 127.0.0.1\nrequirepass sentinel-pw\n"+
		"sentinel monitor mymaster 127.0.0.1 "+master+" 1\nsentinel auth-pass mymaster master-pw\n"+
		"logfile "+filepath.Join(dir, "sentinel.log")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, bin, conf, "--sentinel")
	sc := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + sentinel, Password: "sentinel-pw", MaxRetries: -1})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(context.Background(), "mymaster").Result()
		if err == nil && len(addr) == 2 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Fatalf("the Sentinel does not know the master: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cfg := config.DefaultRedis()
	cfg.Mode = "sentinel"
	cfg.MasterName = "mymaster"
	cfg.Addresses = []string{"127.0.0.1:" + sentinel}
	cfg.Password = "master-pw"
	cfg.SentinelPassword = "sentinel-pw"
	cfg.Database = 3
	c, err := redisconn.New(cfg, redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Set(ctx, c.Prefix()+"k", "v", time.Minute).Err()
	}); err != nil {
		t.Fatalf("SET through the Sentinel: %v", err)
	}
	// The value landed on the master, in database 3.
	direct := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + master, Password: "master-pw", DB: 3, MaxRetries: -1})
	defer direct.Close()
	if v, err := direct.Get(ctx, "gatehouse:k").Result(); err != nil || v != "v" {
		t.Fatalf("on the master: %q, %v", v, err)
	}
}
