// Package gateway runs Gatehouse: it binds the listeners, serves the
// current plan through an atomic pointer, reloads the configuration on
// SIGHUP or file change, and drains in-flight requests on shutdown.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/framing"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/resource"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// Options configure a Gateway beyond its config file.
type Options struct {
	// ConfigPath is the file to reload from. Empty disables reloads.
	ConfigPath string
	// Log is the operational logger; LogLevel, if set, follows log.level on reload.
	Log      *slog.Logger
	LogLevel *slog.LevelVar
	// Pipeline options passed to every plan build (access log outputs).
	Pipeline pipeline.Options
	// RetireDelay is how long a replaced plan is kept before Close, so
	// in-flight requests on it finish. Default: the drain timeout.
	RetireDelay time.Duration
	// Version is the gateway's version, for gatehouse_build_info.
	Version string
	// Now is the clock client certificates' validity is checked against.
	// Default time.Now.
	Now func() time.Time
}

// ReloadReadyTimeout bounds how long a reload waits for the new
// configuration's identity providers to deliver their keys.
var ReloadReadyTimeout = 10 * time.Second

// Gateway is a running Gatehouse instance.
type Gateway struct {
	opts Options
	log  *slog.Logger

	plan     atomic.Pointer[pipeline.Plan]
	cfg      atomic.Pointer[config.Config]
	loadedAt atomic.Pointer[time.Time]
	hash     [sha256.Size]byte

	reloadMu  sync.Mutex
	lastError atomic.Pointer[string]
	draining  atomic.Bool

	listeners []*frontDoor
	admin     *http.Server
	adminLn   net.Listener

	// resources holds what successive plans share (key sets, token and
	// key caches, the API-key store, upstream transports); it outlives
	// every plan.
	resources *resource.Registry
	// keyAdmin serves key management over the current plan's API-key
	// runtime (adminapi.go).
	keyAdmin keyAdmin

	// metrics is the Prometheus registry and the plans' observer; nil when
	// metrics are off. It outlives every plan.
	metrics *metrics.Metrics
	// tracing is the tracer provider; nil when tracing is off. Like
	// metrics it outlives every plan, and Shutdown flushes it.
	tracing *tracing.Provider

	retire sync.WaitGroup
	done   chan struct{}
}

// frontDoor is one proxy listener and its server.
type frontDoor struct {
	name string
	ln   net.Listener
	srv  *http.Server
	cert atomic.Pointer[tls.Certificate]
	// clientCerts is the listener's mutual TLS; nil without
	// client_certificates.
	clientCerts *clientCerts
	// forwarded reads client certificates forwarded by a trusted TLS
	// terminator; nil without forwarded_client_certificates.
	forwarded *forwardedCerts
}

// New compiles cfg and binds every listener (so a port in use fails here,
// before anything is served). Call Serve to start serving.
func New(cfg *config.Config, file *config.File, opts Options) (*Gateway, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Pipeline.Log == nil {
		opts.Pipeline.Log = opts.Log
	}
	if opts.Pipeline.Resources == nil {
		opts.Pipeline.Resources = resource.New()
	}
	g := &Gateway{opts: opts, log: opts.Log, done: make(chan struct{}), resources: opts.Pipeline.Resources}
	g.keyAdmin.g = g
	if cfg.Metrics.Enabled && !cfg.Admin.Disabled {
		// Only where they can be read: /metrics is on the admin listener.
		g.metrics = metrics.New(metrics.Options{Version: opts.Version, Providers: g.providerHealth,
			Resources: g.resources.Keys, KeyStoreListening: g.keyStoreListening, Revocation: g.revocationState,
			RateLimits: g.rateLimitState})
		g.opts.Pipeline.Observer = g.metrics
		opts = g.opts
	}
	if cfg.Tracing.Enabled {
		tp, err := tracing.New(cfg.Tracing, opts.Version, opts.Log)
		if err != nil {
			return nil, file.Errorf("tracing", "%v", err)
		}
		g.tracing = tp
		g.opts.Pipeline.Tracer = tp.Tracer()
		opts = g.opts
	}
	plan, err := pipeline.Build(cfg, file, opts.Pipeline)
	if err != nil {
		g.closeTracing()
		return nil, err
	}
	g.install(cfg, plan)
	if opts.ConfigPath != "" {
		if data, err := config.ReadFile(opts.ConfigPath); err == nil {
			g.hash = sha256.Sum256(data)
		}
	}
	if g.metrics != nil {
		g.metrics.Loaded(g.hashLabel())
	}
	if err := g.bind(cfg); err != nil {
		g.closeListeners()
		g.keyAdmin.stop()
		plan.Close()
		g.closeTracing()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) install(cfg *config.Config, plan *pipeline.Plan) {
	now := time.Now()
	plan.Activate()
	g.cfg.Store(cfg)
	g.plan.Store(plan)
	g.keyAdmin.follow(plan.APIKeys(), cfg.APIKeys.RotationGrace.Std(), plan.Revocations())
	g.loadedAt.Store(&now)
	if g.opts.LogLevel != nil {
		g.opts.LogLevel.Set(parseLevel(cfg.Log.Level))
	}
}

func (g *Gateway) bind(cfg *config.Config) error {
	errLog := log.New(slogWriter{g.log}, "", 0)
	for _, lc := range cfg.Listeners {
		fd := &frontDoor{name: lc.Name}
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			return fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
		}
		fd.ln = ln
		fd.srv = &http.Server{
			Handler:           g.handler(fd, int64(lc.MaxHeaderBytes)),
			ReadHeaderTimeout: lc.Timeouts.ReadHeader.Std(),
			ReadTimeout:       lc.Timeouts.Read.Std(),
			WriteTimeout:      lc.Timeouts.Write.Std(),
			IdleTimeout:       lc.Timeouts.Idle.Std(),
			// Go reads up to MaxHeaderBytes + 4096 bytes of header on
			// HTTP/1.1 (its read buffer's slack) and allows a header list
			// of MaxHeaderBytes + 320 on HTTP/2, answering 431 in plain
			// text past that; handler enforces the configured limit itself,
			// exactly, below those.
			MaxHeaderBytes: int(lc.MaxHeaderBytes),
			ErrorLog:       errLog,
			// Every request reaches the pipeline, "OPTIONS *" included
			// (it answers 400): framing.Check counts requests per
			// connection, so net/http must not answer any itself.
			DisableGeneralOptionsHandler: true,
		}
		if lc.TLS != nil {
			if err := fd.loadCert(lc.TLS); err != nil {
				return fmt.Errorf("gateway: listener %s: %w", lc.Name, err)
			}
			fd.srv.TLSConfig = tlsConfig(lc.TLS, fd)
			if err := g.bindClientCerts(fd, lc); err != nil {
				return fmt.Errorf("gateway: listener %s: client_certificates: %w", lc.Name, err)
			}
		} else {
			// Plain HTTP/1.x: follow each connection's request framing so
			// that a request with both Content-Length and
			// Transfer-Encoding is refused and its connection closed
			// (net/http accepts it; see package framing). On TLS
			// listeners net/http must see the *tls.Conn itself.
			fd.ln = framing.Listener{Listener: ln}
			fd.srv.ConnContext = framing.ConnContext
			fd.srv.ConnState = framing.ConnState
		}
		if err := g.bindForwardedCerts(fd, lc); err != nil {
			return fmt.Errorf("gateway: listener %s: forwarded_client_certificates: %w", lc.Name, err)
		}
		g.listeners = append(g.listeners, fd)
	}
	if !cfg.Admin.Disabled {
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			return fmt.Errorf("gateway: admin listener: %w", err)
		}
		g.adminLn = ln
		adminHandler, err := g.adminHandler(cfg)
		if err != nil {
			return err
		}
		g.admin = &http.Server{
			Handler:           adminHandler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          errLog,
		}
	}
	return nil
}

// tlsConfig is TLS 1.2+ with Go's modern cipher suite and curve defaults,
// HTTP/2 and HTTP/1.1 via ALPN, and the certificate read from an atomic
// pointer so a reload can rotate it without dropping connections.
func tlsConfig(c *config.TLS, fd *frontDoor) *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if c.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion: minVersion,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return fd.cert.Load(), nil
		},
	}
}

func (fd *frontDoor) loadCert(c *config.TLS) error {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return fmt.Errorf("load certificate: %w", err)
	}
	fd.cert.Store(&cert)
	return nil
}

// handler serves every request on the plan current when it arrives, and
// refuses (431) one whose request line and header fields exceed
// maxHeaderBytes, counted by headerSize. On a listener with
// forwarded_client_certificates, a trusted proxy's forwarded certificate
// is verified first (forwardedcert.go); the plan strips the header.
func (g *Gateway) handler(fd *frontDoor, maxHeaderBytes int64) http.Handler {
	listener := fd.name
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := g.plan.Load()
		if maxHeaderBytes > 0 && headerSize(r, maxHeaderBytes) > maxHeaderBytes {
			p.Refuse(w, r, listener, &pipeline.HeaderTooLargeError{Limit: maxHeaderBytes})
			return
		}
		if fd.forwarded != nil {
			r = fd.forwarded.apply(r, p.PeerTrusted(r))
		}
		if p.IsDecision(r, listener) { // decision_api (docs/forward-auth.md)
			p.Decide(w, r, listener)
			return
		}
		p.ServeHTTP(w, r, listener)
	})
}

// headerSize is the size of r's request line and header fields written in
// HTTP/1.1 form, whatever protocol carried them:
//
//	METHOD SP request-target SP HTTP/x.y CRLF
//	Name: value CRLF          (once per value, Host and Transfer-Encoding included)
//
// The empty line that ends the header is not counted. Whitespace a client
// added around values (which HTTP allows and Go removes) is not counted
// either, so the limit is on the content, the same for HTTP/1.1 and
// HTTP/2. It stops counting once past limit.
func headerSize(r *http.Request, limit int64) int64 {
	n := int64(len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2)
	if _, ok := r.Header["Host"]; !ok && r.Host != "" {
		// Go moves Host out of the map (and :authority on HTTP/2).
		n += int64(len("Host: ") + len(r.Host) + 2)
	}
	if _, ok := r.Header["Transfer-Encoding"]; !ok {
		for _, te := range r.TransferEncoding {
			n += int64(len("Transfer-Encoding: ") + len(te) + 2)
		}
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += int64(len(name) + 2 + len(v) + 2)
		}
		if n > limit {
			return n
		}
	}
	return n
}

// Serve starts serving on every listener and returns at once.
func (g *Gateway) Serve() {
	for _, fd := range g.listeners {
		useTLS := fd.srv.TLSConfig != nil
		go func() {
			var err error
			if useTLS {
				// ServeTLS (not a tls.Listener) so net/http sets up HTTP/2.
				err = fd.srv.ServeTLS(fd.ln, "", "")
			} else {
				err = fd.srv.Serve(fd.ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("gateway: listener stopped", "listener", fd.name, "error", err)
			}
		}()
		g.log.Info("gateway: listening", "listener", fd.name, "address", fd.ln.Addr().String(), "tls", useTLS)
	}
	if g.admin != nil {
		go func() {
			if err := g.admin.Serve(g.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("gateway: admin listener stopped", "error", err)
			}
		}()
		g.log.Info("gateway: admin listening", "address", g.adminLn.Addr().String())
	}
}

// Addr returns the bound address of the named proxy listener (useful when
// the configured port was 0), or nil.
func (g *Gateway) Addr(name string) net.Addr {
	for _, fd := range g.listeners {
		if fd.name == name {
			return fd.ln.Addr()
		}
	}
	return nil
}

// AdminAddr returns the bound admin address, or nil when disabled.
func (g *Gateway) AdminAddr() net.Addr {
	if g.adminLn == nil {
		return nil
	}
	return g.adminLn.Addr()
}

// Reload reads, validates and compiles the configuration file, then swaps
// it in atomically. On any error the running configuration stays and the
// error is returned (and logged). Listener and admin settings cannot change
// without a restart; such changes are reported and ignored.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.opts.ConfigPath == "" {
		return errors.New("gateway: no config file to reload")
	}
	data, err := config.ReadFile(g.opts.ConfigPath)
	if err != nil {
		return g.reloadFailed(fmt.Errorf("gateway: reload: %w", err))
	}
	return g.reloadData(data, true)
}

func (g *Gateway) reloadData(data []byte, force bool) error {
	sum := sha256.Sum256(data)
	if !force && sum == g.hash {
		// The file is back to what is serving (a bad edit was reverted).
		g.lastError.Store(nil)
		return nil
	}
	cfg, file, err := config.Parse(g.opts.ConfigPath, data, os.LookupEnv)
	if err != nil {
		return g.reloadFailed(err)
	}
	old := g.cfg.Load()
	if !reflect.DeepEqual(old.Listeners, cfg.Listeners) || !reflect.DeepEqual(old.Admin, cfg.Admin) ||
		old.Metrics != cfg.Metrics || !reflect.DeepEqual(old.Tracing, cfg.Tracing) {
		g.log.Warn("gateway: listener, admin, metrics or tracing settings changed; they take effect after a restart, the rest is reloaded")
		cfg.Listeners, cfg.Admin, cfg.Metrics, cfg.Tracing = old.Listeners, old.Admin, old.Metrics, old.Tracing
	}
	plan, err := pipeline.Build(cfg, file, g.opts.Pipeline)
	if err != nil {
		return g.reloadFailed(err)
	}
	// A reload refetches the keys of providers the new plan shares with
	// the old one (new providers are fetching already, static key files
	// were just read), so that a key removed at the provider is refused
	// once the reload returns. A provider that cannot be reached keeps its
	// last good keys (within max_stale); RefreshKeys logs that. Then swap
	// only to a plan whose identity sources work: a reload must never turn
	// a serving gateway into one that answers 503.
	rctx, cancel := context.WithTimeout(context.Background(), ReloadReadyTimeout)
	_ = plan.RefreshKeys(rctx)
	err = plan.WaitReady(rctx)
	cancel()
	if err != nil {
		plan.Close()
		return g.reloadFailed(fmt.Errorf("gateway: reload: %w", err))
	}
	// Load every certificate before swapping any, so a rejected reload
	// leaves all listeners as they were.
	certs := make([]*tls.Certificate, len(cfg.Listeners))
	for i, lc := range cfg.Listeners {
		if lc.TLS != nil {
			cert, err := tls.LoadX509KeyPair(lc.TLS.CertFile, lc.TLS.KeyFile)
			if err != nil {
				plan.Close()
				return g.reloadFailed(fmt.Errorf("gateway: reload: listener %s: %w", lc.Name, err))
			}
			certs[i] = &cert
		}
	}
	// CA and CRL files too: a bad one rejects the whole reload.
	verifiers, err := g.loadClientCerts(cfg.Listeners)
	if err != nil {
		plan.Close()
		return g.reloadFailed(fmt.Errorf("gateway: reload: %w", err))
	}
	forwarded, err := g.loadForwardedCerts(cfg.Listeners)
	if err != nil {
		plan.Close()
		return g.reloadFailed(fmt.Errorf("gateway: reload: %w", err))
	}
	for i, c := range certs {
		if c != nil {
			g.listeners[i].cert.Store(c)
		}
	}
	g.swapClientCerts(verifiers)
	g.swapForwardedCerts(forwarded)
	prev := g.plan.Load()
	g.install(cfg, plan)
	g.hash = sum
	g.lastError.Store(nil)
	if g.metrics != nil {
		g.metrics.Reloaded(nil, g.hashLabel())
		g.metrics.Retain(routeNames(cfg))
	}
	g.log.Info("gateway: configuration reloaded", "file", g.opts.ConfigPath, "routes", plan.Routes())
	g.retirePlan(prev, cfg.Lifecycle.DrainTimeout.Std())
	return nil
}

func (g *Gateway) reloadFailed(err error) error {
	msg := err.Error()
	g.lastError.Store(&msg)
	if g.metrics != nil {
		g.metrics.Reloaded(err, "")
	}
	g.log.Error("gateway: reload rejected; the previous configuration keeps serving", "file", g.opts.ConfigPath, "error", msg)
	return err
}

// retirePlan closes a replaced plan once requests that started on it have
// had time to finish.
func (g *Gateway) retirePlan(p *pipeline.Plan, drain time.Duration) {
	delay := g.opts.RetireDelay
	if delay == 0 {
		delay = drain
	}
	g.retire.Add(1)
	go func() {
		defer g.retire.Done()
		select {
		case <-time.After(delay):
		case <-g.done:
		}
		p.Close()
	}()
}

// Shutdown stops accepting connections, marks the instance not ready, and
// waits for in-flight requests until ctx ends; then it closes what is left.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.draining.Store(true)
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, fd := range g.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fd.srv.Shutdown(ctx); err != nil {
				_ = fd.srv.Close()
				mu.Lock()
				errs = append(errs, fmt.Errorf("gateway: listener %s: %w", fd.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if g.admin != nil {
		// The admin listener goes last so /readyz answers "draining" while
		// the proxy drains.
		if err := g.admin.Shutdown(ctx); err != nil {
			_ = g.admin.Close()
		}
	}
	close(g.done)
	g.keyAdmin.stop()
	g.retire.Wait()
	g.plan.Load().Close()
	if g.tracing != nil {
		// After the last request: every span has ended. Bounded by
		// tracing.timeout even if ctx has no deadline.
		if err := g.tracing.Shutdown(context.WithoutCancel(ctx)); err != nil {
			g.log.Warn("gateway: tracing: spans may be lost", "err", err)
		}
	}
	return errors.Join(errs...)
}

// closeTracing stops a tracer provider that was never used (New failed).
func (g *Gateway) closeTracing() {
	if g.tracing != nil {
		_ = g.tracing.Shutdown(context.Background())
	}
}

// Flush writes buffered access log lines and audit events of the current
// plan now.
func (g *Gateway) Flush() { g.plan.Load().Flush() }

// APIKeys returns the API-key runtime of the plan serving now, or nil
// when no route accepts api_key.
func (g *Gateway) APIKeys() *pipeline.APIKeys {
	if p := g.plan.Load(); p != nil {
		return p.APIKeys()
	}
	return nil
}

// Resources returns the registry of what plans share across reloads.
func (g *Gateway) Resources() *resource.Registry { return g.resources }

// hashLabel is the config_info hash: the SHA-256 of the file serving now,
// in hex ("none" without a config file).
func (g *Gateway) hashLabel() string {
	if g.opts.ConfigPath == "" {
		return "none"
	}
	return hex.EncodeToString(g.hash[:])
}

// providerHealth is the key set health of the plan serving now, for the
// metrics' key age gauges.
func (g *Gateway) providerHealth() []keyset.Health {
	if p := g.plan.Load(); p != nil {
		return p.ProviderHealth()
	}
	return nil
}

// keyStoreListening is the LISTEN/NOTIFY state of the PostgreSQL key
// store of the plan serving now, for the metrics.
func (g *Gateway) keyStoreListening() (up, ok bool) {
	if p := g.plan.Load(); p != nil {
		return p.APIKeyStoreListening()
	}
	return false, false
}

// revocationState is the revocation list of the plan serving now, for the
// metrics.
func (g *Gateway) revocationState() (entries int, polling, ok bool) {
	p := g.plan.Load()
	if p == nil || p.Revocations() == nil {
		return 0, false, false
	}
	r := p.Revocations().Replica
	return r.List.Len(), r.Polling(), true
}

func (g *Gateway) rateLimitState() (pipeline.RateLimitState, bool) {
	p := g.plan.Load()
	if p == nil {
		return pipeline.RateLimitState{}, false
	}
	return p.RateLimitState()
}

func routeNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		out[i] = r.Name
	}
	return out
}

// Metrics returns the gateway's metrics, or nil when they are off.
func (g *Gateway) Metrics() *metrics.Metrics { return g.metrics }

func (g *Gateway) closeListeners() {
	for _, fd := range g.listeners {
		_ = fd.ln.Close()
	}
	if g.adminLn != nil {
		_ = g.adminLn.Close()
	}
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// slogWriter routes net/http's server error log (TLS handshake errors and
// the like) into the operational log at debug level: they are client noise.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("gateway: http server", "message", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
