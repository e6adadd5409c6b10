package main

// The servers under test each run in a process of their own (this binary,
// started again with roleEnv set), so that the allocations and heap of each
// are measured apart from the load generator's, and so that a Go scheduler
// shared with the client cannot flatter or penalise one scenario.

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// roleEnv selects a server role when this binary is started as a child.
const roleEnv = "GATEHOUSE_BENCH_ROLE"

// childLifetime bounds how long any child lives, whatever happens to the
// harness: a load test must stop by itself.
const childLifetime = 30 * time.Minute

// ready is the one JSON line a child prints once it serves.
type ready struct {
	Addr    string `json:"addr"`    // the server under test
	Admin   string `json:"admin"`   // Gatehouse's admin listener, if any
	Control string `json:"control"` // /stats and /debug/pprof of the child
	// TLS is Gatehouse's HTTPS listener asking for client certificates
	// (named mtls in the configuration), if any.
	TLS string `json:"tls,omitempty"`
}

// runChild serves the role named by roleEnv until its standard input
// closes (the harness exited or closed it) or childLifetime passes.
func runChild(role string, args []string) error {
	var (
		rd       ready
		shutdown func()
		err      error
	)
	switch role {
	case "upstream":
		if len(args) != 1 {
			return errors.New("upstream: want the active opaque token")
		}
		rd.Addr, shutdown, err = serveUpstream(args[0])
	case "bare":
		if len(args) != 4 {
			return errors.New("bare: want the upstream URL, and the TLS listener's certificate, key and client CA files")
		}
		rd.Addr, rd.TLS, shutdown, err = serveBareProxy(args[0], args[1], args[2], args[3])
	case "gatehouse":
		if len(args) != 1 {
			return errors.New("gatehouse: want the configuration file")
		}
		rd.Addr, rd.Admin, rd.TLS, shutdown, err = serveGatehouse(args[0])
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return err
	}
	defer shutdown()
	ctl, err := listen()
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ctl, controlHandler()) }()
	rd.Control = ctl.Addr().String()
	if err := json.NewEncoder(os.Stdout).Encode(rd); err != nil {
		return err
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-time.After(childLifetime):
	}
	return nil
}

// accepted counts the connections this child's server listener accepted.
var accepted atomic.Int64

// introspections counts the introspection calls the upstream answered.
var introspections atomic.Int64

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// countingListener counts accepted connections: a server under test that
// made its clients reconnect would pay for it in every figure.
type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		accepted.Add(1)
	}
	return c, err
}

// serveUpstream is the trivial backend every scenario ends at. Asked by
// the self-check, it echoes the subject Gatehouse asserted, so the harness
// can check that identity really travelled. It is also the authorization
// server of the introspection scenario: POST /introspect says active for
// the one opaque token it was given, inactive for any other.
func serveUpstream(opaque string) (string, func(), error) {
	ln, err := listen()
	if err != nil {
		return "", nil, err
	}
	body := []byte("ok\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Only the self-check asks, so that measured requests cost the
			// upstream the same whichever proxy sent them.
			if r.URL.Path == "/v1/traces" {
				// An OTLP/HTTP export from the traced variant: an empty
				// ExportTraceServiceResponse is a full success.
				w.Header()["Content-Type"] = []string{"application/x-protobuf"}
				return
			}
			if r.URL.Path == "/introspect" {
				introspect(w, r, opaque)
				return
			}
			if r.Header.Get("X-Bench-Check") != "" {
				w.Header()["X-Seen-Subject"] = []string{r.Header.Get("X-Auth-Subject")}
				w.Header()["X-Seen-Assertion"] = []string{r.Header.Get("X-Gatehouse-Assertion")}
			}
			w.Header()["Content-Type"] = []string{"text/plain"}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(countingListener{ln}) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// introspect answers an RFC 7662 introspection request: active, with the
// claims a provider sends, for the token the harness handed out; inactive
// for any other. The caller must authenticate with client_secret_basic.
func introspect(w http.ResponseWriter, r *http.Request, opaque string) {
	introspections.Add(1)
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || id != introspectionClient ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(introspectionSecret)) != 1 {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(opaque)) != 1 {
		_, _ = io.WriteString(w, `{"active":false}`)
		return
	}
	now := time.Now()
	_ = json.NewEncoder(w).Encode(map[string]any{
		"active": true, "iss": introspectionIssuer, "sub": "user-opaque", "aud": audience,
		"client_id": "bench-client", "scope": "orders:read orders:write", "token_type": "Bearer",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
}

// serveBareProxy is the reference: httputil.ReverseProxy with the same
// upstream transport settings and pooled copy buffers as Gatehouse's proxy
// (internal/proxy), and nothing else. Without the buffer pool it would
// allocate 32 KiB per request and flatter every ratio. It also serves
// HTTPS (the bare-proxy-tls reference) on a second listener, asking for a
// client certificate and verifying one if given, as Gatehouse's mtls
// listener does.
func serveBareProxy(upstream, certFile, keyFile, caFile string) (addr, tlsAddr string, shutdown func(), err error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return "", "", nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return "", "", nil, err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", "", nil, err
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(caPEM) {
		return "", "", nil, errors.New("bare: no CA certificate in " + caFile)
	}
	ln, err := listen()
	if err != nil {
		return "", "", nil, err
	}
	tln, err := listen()
	if err != nil {
		ln.Close()
		return "", "", nil, err
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
			DisableCompression:  true,
		},
		BufferPool: &bufferPool{},
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	tsrv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: cas,
		MinVersion: tls.VersionTLS12,
	}}
	go func() { _ = srv.Serve(countingListener{ln}) }()
	go func() { _ = tsrv.ServeTLS(countingListener{tln}, "", "") }()
	return ln.Addr().String(), tln.Addr().String(), func() { _ = srv.Close(); _ = tsrv.Close() }, nil
}

// serveGatehouse runs the real gateway (the code `gatehouse run` runs) on
// the harness's configuration file.
func serveGatehouse(path string) (addr, admin, tlsAddr string, shutdown func(), err error) {
	cfg, file, err := config.Load(path)
	if err != nil {
		return "", "", "", nil, err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := gateway.New(cfg, file, gateway.Options{
		Log:      logger,
		Pipeline: pipeline.Options{Log: logger, Stdout: io.Discard, Stderr: os.Stderr},
	})
	if err != nil {
		return "", "", "", nil, err
	}
	gw.Serve()
	shutdown = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	}
	a := gw.Addr("main")
	if a == nil || gw.AdminAddr() == nil {
		shutdown()
		return "", "", "", nil, errors.New("gatehouse: the configuration needs a listener named main and an admin listener")
	}
	if t := gw.Addr("mtls"); t != nil {
		tlsAddr = t.String()
	}
	return a.String(), gw.AdminAddr().String(), tlsAddr, shutdown, nil
}

// stats is what a child reports of its own memory.
type stats struct {
	Mallocs    uint64 `json:"mallocs"`     // cumulative heap objects allocated
	TotalAlloc uint64 `json:"total_alloc"` // cumulative bytes allocated
	HeapInuse  uint64 `json:"heap_inuse"`  // bytes in in-use heap spans
	HeapAlloc  uint64 `json:"heap_alloc"`  // bytes of reachable (and not yet swept) objects
	NumGC      uint32 `json:"num_gc"`
	Goroutines int    `json:"goroutines"`
	// CPU is the process's user and system CPU time so far (getrusage).
	CPU time.Duration `json:"cpu_ns"`
	// Conns counts the connections the server has accepted.
	Conns int64 `json:"conns"`
	// Introspections counts the upstream's introspection calls.
	Introspections int64 `json:"introspections,omitempty"`
	// GOMAXPROCS is the child's (1 for a pinned proxy).
	GOMAXPROCS int `json:"gomaxprocs"`
}

func readStats(gc bool) stats {
	if gc {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return stats{
		Mallocs: m.Mallocs, TotalAlloc: m.TotalAlloc, HeapInuse: m.HeapInuse,
		HeapAlloc: m.HeapAlloc, NumGC: m.NumGC, Goroutines: runtime.NumGoroutine(),
		CPU:   time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		Conns: accepted.Load(), Introspections: introspections.Load(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
}

func controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(readStats(r.URL.Query().Get("gc") == "1"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// child is a server process started by the harness.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready
	stderr *lockedBuffer
	// signal, if set, is how the child is asked to stop (nginx), instead
	// of closing its standard input; waited then delivers its exit.
	signal os.Signal
	waited chan error
}

// startChild starts this binary in role and waits for its ready line.
// With p set (pinned mode), a proxy role (anything but the upstream) runs
// on the proxy core with GOMAXPROCS=1, the upstream on the other cores.
func startChild(ctx context.Context, p *pinning, role string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := append([]string{exe}, args...)
	env := append(os.Environ(), roleEnv+"="+role)
	if p != nil {
		proxy := role != "upstream"
		argv = p.command(proxy, argv)
		if proxy {
			env = append(env, "GOMAXPROCS=1")
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{name: role, cmd: cmd, stdin: stdin, stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &c.ready)
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("%s did not start: %v\n%s", role, err, c.stderr.tail())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return c, nil
}

// stop closes the child's standard input, which makes it exit, and waits;
// a child that does not exit within 10 s is killed.
func (c *child) stop() {
	done := make(chan struct{})
	if c.signal != nil {
		_ = c.cmd.Process.Signal(c.signal)
		go func() { <-c.waited; close(done) }()
	} else {
		_ = c.stdin.Close()
		go func() { _ = c.cmd.Wait(); close(done) }()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// stats asks the child for its memory statistics, after a full GC when gc.
// A child that is not this binary (nginx) has no control endpoint: its
// CPU time is read from /proc, and nothing else is known.
func (c *child) stats(gc bool) (stats, error) {
	if c.Control == "" {
		cpu, err := procCPU(c.cmd.Process.Pid)
		return stats{CPU: cpu}, err
	}
	u := "http://" + c.Control + "/stats"
	if gc {
		u += "?gc=1"
	}
	res, err := http.Get(u)
	if err != nil {
		return stats{}, err
	}
	defer res.Body.Close()
	var s stats
	err = json.NewDecoder(res.Body).Decode(&s)
	return s, err
}

// lockedBuffer keeps the last 64 KiB a child wrote to standard error.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 64<<10; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

// bufferPool recycles the ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }
