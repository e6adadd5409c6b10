package main

// Pinned mode (issue 16): the proxy under test — Gatehouse, the bare
// proxy, nginx — runs alone on one core with GOMAXPROCS=1, and the load
// generator and the upstream on the other cores. Its CPU time per request
// is then the primary figure: on a machine shared with other work, the
// throughput a proxy reaches says as much about its neighbours as about
// itself, but the CPU time it spends on each request is its own.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tasksetPath is where the harness looks for taskset (util-linux) first.
const tasksetPath = "/usr/bin/taskset"

// findTaskset returns the taskset binary, or "" when there is none.
func findTaskset() string {
	if _, err := os.Stat(tasksetPath); err == nil {
		return tasksetPath
	}
	if p, err := exec.LookPath("taskset"); err == nil {
		return p
	}
	return ""
}

// pinnable reports whether pinned mode can run here: taskset exists and
// the harness may use at least two cores (one for the proxy under test,
// the rest for the load generator and the upstream).
func pinnable() bool { return findTaskset() != "" && runtime.NumCPU() >= 2 }

// pinning is where each process of a pinned run runs.
type pinning struct {
	taskset string
	// proxyCPU is the core of the proxies under test; others is the
	// taskset list of every other core the harness may use.
	proxyCPU int
	others   string
	// restore is the harness's own affinity list before the run.
	restore string
}

// newPinning chooses the cores: the proxy on core (or, when core < 0, the
// last core the harness may use), everything else on the others.
func newPinning(core int) (*pinning, error) {
	ts := findTaskset()
	if ts == "" {
		return nil, errors.New("-pinned: taskset not found (util-linux)")
	}
	own, err := affinity(ts, os.Getpid())
	if err != nil {
		return nil, err
	}
	if len(own) < 2 {
		return nil, fmt.Errorf("-pinned: the harness may use %d core(s), it needs 2", len(own))
	}
	if core < 0 {
		core = own[len(own)-1]
	}
	p := &pinning{taskset: ts, proxyCPU: core}
	var others []string
	for _, c := range own {
		if c != core {
			others = append(others, strconv.Itoa(c))
		}
	}
	if len(others) == len(own) {
		return nil, fmt.Errorf("-pin-core %d: not among the cores the harness may use (%v)", core, own)
	}
	p.others = strings.Join(others, ",")
	p.restore = joinInts(own)
	return p, nil
}

// pinSelf moves every thread of the harness (the load generator) to the
// other cores; unpin moves them back.
func (p *pinning) pinSelf() error { return p.setSelf(p.others) }
func (p *pinning) unpin() error   { return p.setSelf(p.restore) }

func (p *pinning) setSelf(list string) error {
	out, err := exec.Command(p.taskset, "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s: %v: %s", list, err, bytes.TrimSpace(out))
	}
	return nil
}

// command returns the command line that runs argv on the proxy core
// (proxy) or on the other cores.
func (p *pinning) command(proxy bool, argv []string) []string {
	cpus := p.others
	if proxy {
		cpus = strconv.Itoa(p.proxyCPU)
	}
	return append([]string{p.taskset, "-c", cpus}, argv...)
}

// affinity returns the cores pid may run on (taskset -c -p).
func affinity(taskset string, pid int) ([]int, error) {
	out, err := exec.Command(taskset, "-c", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return nil, fmt.Errorf("taskset -c -p: %w", err)
	}
	_, list, ok := strings.Cut(strings.TrimSpace(string(out)), ": ")
	if !ok {
		return nil, fmt.Errorf("taskset -c -p: unexpected output %q", out)
	}
	return parseCPUList(list)
}

// parseCPUList parses a taskset/cpuset list ("0,2-3").
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(strings.TrimSpace(list), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", list, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), 100 on every Linux architecture Go supports
// except a few configurations; getconf tells).
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// procCPU is the user + system CPU time of process pid so far, from
// /proc/<pid>/stat (resolution: one clock tick, 10 ms; a slice of a second
// or more keeps the error to about 1 %).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration((ut + st) * int64(time.Second) / clockTicks), nil
}

// nginxPath is where the harness looks for nginx first.
const nginxPath = "/usr/sbin/nginx"

// findNginx returns the nginx binary, or "" when there is none.
func findNginx() string {
	if _, err := os.Stat(nginxPath); err == nil {
		return nginxPath
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return ""
}

// nginxConfig is the C reference floor: one process (no master, one
// worker's work), no access log, keep-alive connections to the upstream,
// and the X-Forwarded-* headers the bare proxy sets too.
const nginxConfig = `# Written by the benchmark harness (bench/).
daemon off;
master_process off;
worker_processes 1;
error_log {{dir}}/error.log warn;
pid {{dir}}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{dir}}/body;
  proxy_temp_path {{dir}}/proxy;
  fastcgi_temp_path {{dir}}/fastcgi;
  uwsgi_temp_path {{dir}}/uwsgi;
  scgi_temp_path {{dir}}/scgi;
  upstream up {
    server {{upstream}};
    keepalive 256;
  }
  server {
    listen {{addr}};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering on;
    }
  }
}
`

// startNginx runs nginx as a child (its own process, killed by PID when
// the harness stops it) with a configuration in dir, proxying to
// upstream (host:port), pinned like the other proxies when p is set.
func startNginx(ctx context.Context, bin, dir, upstream string, p *pinning) (*child, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{upstream}}", upstream, "{{addr}}", addr).Replace(nginxConfig)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	argv := []string{bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}
	if p != nil {
		argv = p.command(true, argv)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c := &child{name: "nginx", cmd: cmd, stderr: &lockedBuffer{}, signal: syscall.SIGQUIT}
	cmd.Stdout, cmd.Stderr = c.stderr, c.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.Addr = addr
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c.waited = exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case err := <-exited:
			exited <- err // for stop
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited: %v\n%s%s", err, c.stderr.tail(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("nginx did not listen within 10 s")
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago
// (nginx cannot be told to pick one and report it).
func freeAddr() (string, error) {
	ln, err := listen()
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// check proves that c runs where it should: a proxy on the proxy core
// alone (and, for a Go child, with GOMAXPROCS=1), anything else off it.
func (p *pinning) check(c *child, proxy bool) error {
	cpus, err := affinity(p.taskset, c.cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if proxy {
		if len(cpus) != 1 || cpus[0] != p.proxyCPU {
			return fmt.Errorf("%s runs on cores %v, want %d alone", c.name, cpus, p.proxyCPU)
		}
		if c.Control != "" {
			st, err := c.stats(false)
			if err != nil {
				return err
			}
			if st.GOMAXPROCS != 1 {
				return fmt.Errorf("%s runs with GOMAXPROCS=%d, want 1", c.name, st.GOMAXPROCS)
			}
		}
		return nil
	}
	if slices.Contains(cpus, p.proxyCPU) {
		return fmt.Errorf("%s may run on the proxy core %d (%v)", c.name, p.proxyCPU, cpus)
	}
	return nil
}
