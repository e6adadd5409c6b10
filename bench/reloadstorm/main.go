// Command reloadstorm measures what a storm of configuration reloads costs
// a running gatehouse process under load: it starts the given binary with a
// public, a JWT and an API-key route on one local upstream, keeps clients
// calling them, sends SIGHUP reloads (alternating between two configurations
// that differ in one harmless route), and reports failed requests, the
// process's open file descriptors and resident memory (peak and after), the
// upstream connections it opened, and its cache misses.
//
//	go build -o /tmp/gatehouse ./cmd/gatehouse
//	go run ./bench/reloadstorm -gatehouse /tmp/gatehouse -reloads 100
//
// Everything listens on 127.0.0.1; the gatehouse process is killed when the
// run ends. Linux only (it reads /proc).
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

func main() {
	bin := flag.String("gatehouse", "", "gatehouse binary to measure (required)")
	reloads := flag.Int("reloads", 100, "reloads to send")
	clients := flag.Int("clients", 4, "concurrent clients per route")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "reloadstorm: -gatehouse is required")
		os.Exit(2)
	}
	if err := run(*bin, *reloads, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "reloadstorm:", err)
		os.Exit(1)
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func run(bin string, reloads, clients int) error {
	var upConns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			upConns.Add(1)
		}
	}
	up.Start()
	defer up.Close()

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer jwks.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}}, nil)
	if err != nil {
		return err
	}
	now := time.Now()
	token, err := josejwt.Signed(signer).Claims(map[string]any{"iss": "https://idp.storm.test", "aud": "api", "sub": "alice",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		return err
	}
	key, err := apikey.Format{}.Generate()
	if err != nil {
		return err
	}
	var hasher *apikey.Hasher
	keyHash := fmt.Sprintf("sha256:%x", hasher.Hash(key))

	dir, err := os.MkdirTemp("", "reloadstorm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	listen, admin := freePort(), freePort()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	write := func(variant int) error {
		text := fmt.Sprintf(`listeners: [{name: main, address: %q}]
admin: {address: %q}
lifecycle: {watch_config: false}
audit: {disabled: true}
access_log: {disabled: true}
identity_providers:
  - name: idp
    issuer: https://idp.storm.test
    jwks_uri: %q
    insecure_allow_http: true
    audiences: [api]
api_keys:
  store: {type: embedded, path: %q}
  static: [{id: storm, consumer: storm, hash: %q}]
routes:
  - {name: open, public: true, match: {path_prefix: /open}, upstream: {targets: [%q]}}
  - {name: jwt, match: {path_prefix: /jwt}, authenticate: {methods: [jwt]}, upstream: {targets: [%q]}}
  - {name: keys, match: {path_prefix: /keys}, authenticate: {methods: [api_key]}, upstream: {targets: [%q]}}
  - {name: variant-%d, public: true, match: {path_prefix: /variant-%d}, upstream: {targets: [%q]}}
`, listen, admin, jwks.URL, filepath.Join(dir, "keys.db"), keyHash, up.URL, up.URL, up.URL, variant, variant, up.URL)
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, cfgPath)
	}
	if err := write(0); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	base := "http://" + listen
	adminURL := "http://" + admin
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(adminURL + "/readyz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gatehouse not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var ok, failed atomic.Int64
	var firstFailure atomic.Pointer[string]
	var stop atomic.Bool
	var wg sync.WaitGroup
	targets := []struct{ path, header, value string }{
		{"/open/x", "", ""}, {"/jwt/x", "Authorization", "Bearer " + token}, {"/keys/x", "X-API-Key", key},
	}
	for _, tc := range targets {
		for range clients {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					req, _ := http.NewRequest("GET", base+tc.path, nil)
					if tc.header != "" {
						req.Header.Set(tc.header, tc.value)
					}
					res, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						_ = res.Body.Close()
						if res.StatusCode != 200 {
							err = fmt.Errorf("%s: status %d", tc.path, res.StatusCode)
						}
					}
					if err != nil {
						failed.Add(1)
						msg := err.Error()
						firstFailure.CompareAndSwap(nil, &msg)
						continue
					}
					ok.Add(1)
				}
			}()
		}
	}
	time.Sleep(time.Second) // warm: connections, pools, caches
	fdsBefore, rssBefore := fds(pid), status(pid, "VmRSS")
	connsBefore, okBefore := upConns.Load(), ok.Load()
	missesBefore := misses(adminURL)
	var peakFDs, peakRSS atomic.Int64
	peakFDs.Store(int64(fdsBefore))
	peakRSS.Store(int64(rssBefore))
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := int64(fds(pid)); n > peakFDs.Load() {
				peakFDs.Store(n)
			}
			if n := int64(status(pid, "VmRSS")); n > peakRSS.Load() {
				peakRSS.Store(n)
			}
		}
	}()
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		if err := write(i % 2); err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return err
		}
		// Wait for this reload to apply before sending the next.
		for reloadsDone(adminURL) < i {
			if time.Since(start) > 5*time.Minute {
				return fmt.Errorf("reload %d did not apply", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(sampling)
	<-sampled
	stop.Store(true)
	wg.Wait()
	missesAfter := misses(adminURL)
	fmt.Printf("binary: %s\n", bin)
	fmt.Printf("%d reloads in %v under load (%d clients per route, 3 routes)\n", reloads, took.Round(time.Millisecond), clients)
	fmt.Printf("requests during the storm: %d ok, %d failed", ok.Load()-okBefore, failed.Load())
	if f := firstFailure.Load(); f != nil {
		fmt.Printf(" (first: %s)", *f)
	}
	fmt.Println()
	fmt.Printf("open fds: %d before, peak %d, %d after\n", fdsBefore, peakFDs.Load(), fds(pid))
	fmt.Printf("RSS: %d KiB before, peak %d KiB, %d KiB after (VmHWM %d KiB)\n", rssBefore, peakRSS.Load(), status(pid, "VmRSS"), status(pid, "VmHWM"))
	fmt.Printf("new upstream connections during the storm: %d\n", upConns.Load()-connsBefore)
	fmt.Printf("cache misses during the storm: jwt %v, api key %v\n", missesAfter[0]-missesBefore[0], missesAfter[1]-missesBefore[1])
	return nil
}

func fds(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// status reads a kB field of /proc/PID/status.
func status(pid int, field string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// scrape returns the sum of the samples of a metric whose line contains
// every one of match.
func scrape(adminURL, metric string, match ...string) float64 {
	res, err := http.Get(adminURL + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue next
			}
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

func reloadsDone(adminURL string) int {
	return int(scrape(adminURL, "gatehouse_config_reloads_total", `result="success"`))
}

func misses(adminURL string) [2]float64 {
	return [2]float64{
		scrape(adminURL, "gatehouse_jwt_cache_lookups_total", `result="miss"`),
		scrape(adminURL, "gatehouse_apikey_cache_lookups_total", `result="miss"`),
	}
}
