package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// aliasBomb is a "billion laughs" configuration: k routes, each an alias
// of one route whose policy has k method rules, each an alias of one rule
// listing an alias of k scopes seven times. It is about 17·k bytes long
// and expands to 7·k³ values (k=100: 1.7 KB, seven million values; before
// the alias budget it took 14 s and 1.1 GiB to validate).
func aliasBomb(k int) []byte {
	var b strings.Builder
	list := "[" + strings.Repeat("a,", k-1) + "a]"
	rule := "{methods: [GET], scopes: {all_of: *s, any_of: *s}, roles: {all_of: *s, any_of: *s}, groups: {all_of: *s, any_of: *s, deny: *s}}"
	b.WriteString("routes:\n  - name: seed\n    public: true\n    match: {path: /}\n    upstream: {targets: [\"builtin:echo\"]}\n")
	b.WriteString("    tags: &s " + list + "\n")
	b.WriteString("    authorize:\n      methods: &m [&mr " + rule + strings.Repeat(",*mr", k-1) + "]\n")
	b.WriteString("  - &r {name: r, public: true, match: {path: /r}, upstream: {targets: [\"builtin:echo\"]}, authorize: {methods: *m}}\n")
	b.WriteString(strings.Repeat("  - *r\n", k-1))
	return []byte(b.String())
}

// parseBudget is what Parse may cost for an input of n bytes, whatever the
// input: the YAML library needs about 120 bytes per input byte for its
// node tree, the rest is the decoded configuration and its checks (CEL
// compilation included). Time is generous for a loaded CI machine under
// -race; an unbounded input blows through both at once.
func parseBudget(n int) (allocBytes uint64, d time.Duration) {
	return 64<<20 + 2048*uint64(n), 3*time.Second + time.Duration(n)*time.Microsecond
}

// measureParse runs Parse on data and returns its cost.
func measureParse(data []byte) (err error, alloc uint64, d time.Duration) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, err = Parse("budget.yaml", data, env(nil))
	d = time.Since(start)
	runtime.ReadMemStats(&after)
	return err, after.TotalAlloc - before.TotalAlloc, d
}

func checkBudget(t *testing.T, data []byte) error {
	t.Helper()
	err, alloc, d := measureParse(data)
	maxAlloc, maxTime := parseBudget(len(data))
	if alloc > maxAlloc || d > maxTime {
		t.Fatalf("Parse of %d bytes cost %d MiB in %v; the budget is %d MiB and %v",
			len(data), alloc>>20, d, maxAlloc>>20, maxTime)
	}
	return err
}

func TestAliasBombIsRefusedWithinBudget(t *testing.T) {
	for _, k := range []int{60, 100, 3000} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			data := aliasBomb(k)
			err := checkBudget(t, data)
			if err == nil || !strings.Contains(err.Error(), "aliases") {
				t.Fatalf("%d-byte alias bomb: want an alias error, got %v", len(data), err)
			}
		})
	}
}

// Aliases used as YAML intends (one policy shared by many routes) stay
// well inside the budget and decode as if the values were repeated.
func TestSharedAliasesStillWork(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n")
	for i := range 300 {
		anchor := "*up"
		if i == 0 {
			anchor = `&up {targets: ["builtin:echo"], timeouts: {dial: 2s}}`
		}
		fmt.Fprintf(&b, "  - {name: r%d, public: true, match: {path: /r%d}, upstream: %s}\n", i, i, anchor)
	}
	cfg, _, err := Parse("shared.yaml", []byte(b.String()), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 300 || cfg.Routes[299].Upstream.Timeouts.Dial.Std() != 2*time.Second {
		t.Fatalf("aliased upstream not decoded: %+v", cfg.Routes[299].Upstream)
	}
}

// A huge scalar reached through many aliases is charged by its length.
func TestLongScalarAliasIsCharged(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	data := "routes:\n  - name: a\n    tags: [&t \"" + long + "\"" + strings.Repeat(", *t", 200) + "]\n"
	err := checkBudget(t, []byte(data))
	if err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("want an alias error, got %v", err)
	}
}

func TestErrorsAreCapped(t *testing.T) {
	data := "routes:\n" + strings.Repeat("  - nonsense\n", 5000)
	err := checkBudget(t, []byte(data))
	es, ok := AsErrors(err)
	if !ok || len(es) != MaxErrors+1 || !strings.Contains(es[len(es)-1].Msg, "more than") {
		t.Fatalf("want %d errors and a stop note, got %d: %v", 100+1, len(es), err)
	}
}

func TestFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := append([]byte(minimal), bytes.Repeat([]byte("#"), MaxFileSize-len(minimal)-1)...)
	ok = append(ok, '\n')
	atLimit := write("at-limit.yaml", ok)
	over := write("over.yaml", append(ok, '\n'))
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(atLimit, link); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, wantErr string
	}{
		{"exactly the limit", atLimit, ""},
		{"symlink to a regular file", link, ""},
		{"one byte over", over, "larger than"},
		{"endless device", "/dev/zero", "not a regular file"},
		{"FIFO (would block)", fifo, "not a regular file (a FIFO)"},
		{"directory", dir, "not a regular file (a directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, _, err := Load(tc.path); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Load did not return: it reads without a bound or blocks")
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load: want %q, got %v", tc.wantErr, err)
			}
			if tc.wantErr == "larger than" && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("want ErrTooLarge, got %v", err)
			}
		})
	}

	// Parse refuses oversized text itself, for callers that read it elsewhere.
	if _, _, err := Parse("big.yaml", append(ok, '\n'), env(nil)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Parse of an oversized text: %v", err)
	}
}
