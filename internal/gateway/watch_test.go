package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

type discardLog struct{}

func (discardLog) Debug(string, ...any) {}

// busyNeighbour appends to a file next to the config until the test ends,
// as an access log under traffic does.
func busyNeighbour(t *testing.T, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			_, _ = f.WriteString(`{"msg":"request"}` + "\n")
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait(); f.Close() })
}

func startWatch(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	ch, stop, err := watchFile(path, discardLog{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch
}

// A file written continuously next to the config must not delay the
// notification of a change to the config (before: the debounce restarted
// on every event in the directory, so no reload happened under traffic).
func TestWatchIgnoresBusyNeighbour(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, path)
	busyNeighbour(t, dir)
	time.Sleep(500 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("a neighbour's writes were reported as a config change")
	default:
	}

	start := time.Now()
	if err := os.WriteFile(path, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		if d := time.Since(start); d > watchDebounce+time.Second {
			t.Fatalf("notified after %v; the neighbour delayed it", d)
		}
	case <-time.After(watchMaxDelay + 3*time.Second):
		t.Fatal("no notification while a neighbour file is being written")
	}
}

// Events on the config itself that never stop (a slow copy, a generator in
// a loop) still give a notification within watchMaxDelay of the first.
func TestWatchDebounceIsBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, path)
	done := make(chan struct{})
	defer close(done)
	start := time.Now()
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			_ = os.WriteFile(path, []byte(strings.Repeat("x", i%7+1)), 0o600)
			time.Sleep(watchDebounce / 5)
		}
	}()
	select {
	case <-ch:
		if d := time.Since(start); d > watchMaxDelay+time.Second {
			t.Fatalf("first notification after %v, bound is %v", d, watchMaxDelay)
		}
	case <-time.After(watchMaxDelay + 3*time.Second):
		t.Fatal("continuous events postponed the notification past the bound")
	}
}

func TestResolveChain(t *testing.T) {
	dir := t.TempDir()
	mustMkdir(t, filepath.Join(dir, "..2026_a"))
	mustWrite(t, filepath.Join(dir, "..2026_a", "gatehouse.yaml"), "x")
	mustSymlink(t, "..2026_a", filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/gatehouse.yaml", filepath.Join(dir, "gatehouse.yaml"))
	got := resolveChain(filepath.Join(dir, "gatehouse.yaml"))
	for _, want := range []string{"gatehouse.yaml", "..data", "..2026_a/gatehouse.yaml"} {
		if !got[filepath.Join(dir, want)] {
			t.Errorf("chain %v lacks %s", got, want)
		}
	}
	if got[filepath.Join(dir, "..2026_a")] || len(got) != 3 {
		t.Errorf("chain has more than the links and the file: %v", got)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// runGatewayAt runs a gateway (Run, so the watch is on) on the config at
// path, logging at debug level to a file in the config's own directory (a
// watch that saw its own log lines would feed itself), and returns a
// function that tells what the route "r" answers and one that counts
// successful reloads.
func runGatewayAt(t *testing.T, path string) (body func() string, reloads func() int) {
	t.Helper()
	cfg, file, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.OpenFile(filepath.Join(filepath.Dir(path), "gatehouse.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	oplog := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(oplog, logFile), &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(cfg, file, Options{
		ConfigPath: path, Log: logger, RetireDelay: 100 * time.Millisecond,
		Pipeline: pipeline.Options{Log: logger, Stdout: io.Discard, Stderr: io.Discard},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	url := "http://" + g.Addr("main").String() + "/"
	body = func() string {
		res, err := http.Get(url)
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	reloads = func() int { return strings.Count(oplog.String(), "gateway: configuration reloaded") }
	return body, reloads
}

func watchConfig(target string) string {
	return header + "lifecycle: {drain_timeout: 1s}\nroutes:\n" + routeYAML("r", "{path_prefix: /}", `{targets: ["`+target+`"]}`)
}

// An editor's rename-swap and a Kubernetes ConfigMap's symlink swap each
// give exactly one reload, with a busy log file in the same directory.
func TestWatchReloadsOnceOnSwaps(t *testing.T) {
	one, two := namedUpstream(t, "one"), namedUpstream(t, "two")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the config path
		swap  func(t *testing.T, dir string)
	}{
		{
			name: "editor rename-swap",
			setup: func(t *testing.T, dir string) string {
				mustWrite(t, filepath.Join(dir, "gatehouse.yaml"), watchConfig(one))
				return filepath.Join(dir, "gatehouse.yaml")
			},
			swap: func(t *testing.T, dir string) {
				// vim without backupcopy: keep the old file as a backup,
				// write a new one, delete the backup; plus a swap file.
				p := filepath.Join(dir, "gatehouse.yaml")
				mustWrite(t, filepath.Join(dir, ".gatehouse.yaml.swp"), "swap")
				if err := os.Rename(p, p+"~"); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, p, watchConfig(two))
				_ = os.Remove(p + "~")
				_ = os.Remove(filepath.Join(dir, ".gatehouse.yaml.swp"))
			},
		},
		{
			name: "ConfigMap symlink swap",
			setup: func(t *testing.T, dir string) string {
				mustMkdir(t, filepath.Join(dir, "..2026_11_29_a"))
				mustWrite(t, filepath.Join(dir, "..2026_11_29_a", "gatehouse.yaml"), watchConfig(one))
				mustSymlink(t, "..2026_11_29_a", filepath.Join(dir, "..data"))
				mustSymlink(t, "..data/gatehouse.yaml", filepath.Join(dir, "gatehouse.yaml"))
				return filepath.Join(dir, "gatehouse.yaml")
			},
			swap: func(t *testing.T, dir string) {
				// What the kubelet's atomic writer does.
				mustMkdir(t, filepath.Join(dir, "..2026_11_29_b"))
				mustWrite(t, filepath.Join(dir, "..2026_11_29_b", "gatehouse.yaml"), watchConfig(two))
				mustSymlink(t, "..2026_11_29_b", filepath.Join(dir, "..data_tmp"))
				if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(filepath.Join(dir, "..2026_11_29_a")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "symlink to a file elsewhere, target replaced",
			setup: func(t *testing.T, dir string) string {
				mustMkdir(t, filepath.Join(dir, "conf"))
				mustMkdir(t, filepath.Join(dir, "real"))
				mustWrite(t, filepath.Join(dir, "real", "gatehouse.yaml"), watchConfig(one))
				mustSymlink(t, "../real/gatehouse.yaml", filepath.Join(dir, "conf", "gatehouse.yaml"))
				return filepath.Join(dir, "conf", "gatehouse.yaml")
			},
			swap: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "real", "gatehouse.yaml")
				mustWrite(t, p+".new", watchConfig(two))
				if err := os.Rename(p+".new", p); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			body, reloads := runGatewayAt(t, path)
			waitFor(t, "serving", 5*time.Second, func() bool { return body() == "one" })
			busyNeighbour(t, filepath.Dir(path))
			time.Sleep(watchDebounce + 200*time.Millisecond)
			if n := reloads(); n != 0 {
				t.Fatalf("%d reloads before any change", n)
			}
			tc.swap(t, dir)
			waitFor(t, "reload after the swap", watchMaxDelay+3*time.Second, func() bool { return body() == "two" })
			time.Sleep(watchMaxDelay)
			if n := reloads(); n != 1 {
				t.Fatalf("%d reloads, want exactly 1", n)
			}
		})
	}
}

// A reload of an alias bomb is refused at once, and the running
// configuration keeps serving (before the alias budget, a 2 KB file held
// the reload for minutes and gigabytes).
func TestReloadRefusesAliasBomb(t *testing.T) {
	tg := startGateway(t, watchConfig(namedUpstream(t, "one"))).serve()
	k := 150
	bomb := header + "routes:\n  - &r {name: r, public: true, match: {path: /r}, upstream: {targets: [\"builtin:echo\"]}, authorize: {methods: &m [&mr {methods: [GET], scopes: {all_of: &s [" +
		strings.Repeat("a,", k-1) + "a]}}" + strings.Repeat(",*mr", k-1) + "]}}\n" + strings.Repeat("  - {name: x, public: true, match: {path: /x}, upstream: {targets: [\"builtin:echo\"]}, authorize: {methods: *m}}\n", k)
	mustWrite(t, tg.path, bomb)
	start := time.Now()
	err := tg.Reload()
	if err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("reload of an alias bomb: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("refusing took %v", d)
	}
	if _, body := get(t, tg.url+"/"); string(body) != "one" {
		t.Fatalf("previous configuration not serving: %s", body)
	}
}
