// Package redisconn is the gateway's connection to Redis: a go-redis
// client built from the redis block of the configuration, with a deadline
// on every call, a circuit breaker that stops calling a Redis that keeps
// failing, a rate-limited warning log and counters for metrics.
//
// Callers run their commands through Client.Do. An error that wraps
// ErrUnavailable means Redis could not answer (connection refused,
// timeout, breaker open): the caller applies its own documented fallback
// (a local limit, or deny). An error that does not wrap it is an answer
// from Redis (a script error, a wrong type) and is a bug, not an outage.
//
// One Client is shared by every plan of the process through the resource
// registry (Acquire), so a reload keeps the warm pool and the breaker's
// state.
package redisconn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// ErrUnavailable is wrapped by every error that means Redis did not
// answer: a refused or broken connection, a timeout, or the breaker being
// open. Callers test it with errors.Is and apply their fallback.
var ErrUnavailable = errors.New("redisconn: redis unavailable")

// ErrBreakerOpen is wrapped (with ErrUnavailable) by the errors of calls
// refused at once because the breaker is open or half-open with its probe
// in flight.
var ErrBreakerOpen = errors.New("redisconn: circuit breaker open")

// BreakerState is the state of the circuit breaker.
type BreakerState int

// The breaker's states, with the values exported as a metric gauge.
const (
	BreakerClosed   BreakerState = 0 // calls go to Redis
	BreakerHalfOpen BreakerState = 1 // one probe call goes to Redis
	BreakerOpen     BreakerState = 2 // calls fail at once
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	default:
		return "open"
	}
}

// DefaultWarnInterval is the least time between two warnings logged about
// Redis errors.
const DefaultWarnInterval = 10 * time.Second

// Options are the process-side settings of a Client (the rest comes from
// the configuration).
type Options struct {
	// Logger receives the rate-limited warnings. Default slog.Default().
	Logger *slog.Logger
	// WarnInterval is the least time between two warnings. Default
	// DefaultWarnInterval.
	WarnInterval time.Duration
	// Dialer, when set, replaces the TCP dialer (tests). TLS is layered
	// on top of it by go-redis.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is a go-redis client with a breaker, deadlines and counters. It
// is safe for concurrent use.
type Client struct {
	rdb      redis.UniversalClient
	prefix   string
	deadline time.Duration
	breaker  *gobreaker.CircuitBreaker[struct{}]
	logger   *slog.Logger
	warnNS   int64

	lastWarn   atomic.Int64 // unix nanoseconds of the last warning
	suppressed atomic.Uint64
	errs       atomic.Uint64
	fastFails  atomic.Uint64
	opens      atomic.Uint64
}

// Stats are the Client's counters, for metrics.
type Stats struct {
	// Errors counts calls that failed because Redis did not answer.
	Errors uint64
	// FastFails counts calls refused at once by the open breaker.
	FastFails uint64
	// BreakerOpens counts the breaker's transitions to open.
	BreakerOpens uint64
	// Breaker is the breaker's current state.
	Breaker BreakerState
	// Pool holds go-redis's pool counters (hits, misses, timeouts, connections).
	Pool *redis.PoolStats
}

// New builds a Client from the redis block. It does not connect: the
// first call (or Ping) does. It fails only on settings that cannot work
// (unreadable TLS files, no address).
func New(cfg config.Redis, o Options) (*Client, error) {
	quietLibraryLog.Do(func() { redis.SetLogger(debugLog{}) })
	if !cfg.Enabled() {
		return nil, errors.New("redisconn: no redis.addresses configured")
	}
	uo := &redis.UniversalOptions{
		Addrs:            cfg.Addresses,
		DB:               cfg.Database,
		Username:         cfg.Username,
		Password:         cfg.Password,
		SentinelUsername: cfg.SentinelUsername,
		SentinelPassword: cfg.SentinelPassword,
		DialTimeout:      cfg.Timeouts.Dial.Std(),
		ReadTimeout:      cfg.Timeouts.Read.Std(),
		WriteTimeout:     cfg.Timeouts.Write.Std(),
		PoolTimeout:      cfg.Timeouts.Pool.Std(),
		PoolSize:         cfg.PoolSize,
		// The breaker and the callers' fallbacks handle failures; a
		// retry inside go-redis would only multiply the time a dead
		// Redis costs a request.
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		Dialer: o.Dialer,
	}
	switch cfg.Mode {
	case "sentinel":
		uo.MasterName = cfg.MasterName
	case "cluster":
		uo.IsClusterMode = true
	}
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		uo.TLSConfig = tc
	}
	var rdb redis.UniversalClient
	switch cfg.Mode {
	case "sentinel":
		rdb = redis.NewFailoverClient(uo.Failover())
	case "cluster":
		rdb = redis.NewClusterClient(uo.Cluster())
	default:
		rdb = redis.NewClient(uo.Simple())
	}
	return newClient(rdb, cfg, o), nil
}

func newClient(rdb redis.UniversalClient, cfg config.Redis, o Options) *Client {
	c := &Client{
		rdb:    rdb,
		prefix: cfg.KeyPrefix,
		// A call may wait for a pooled connection, dial one, write and
		// read: past the sum of those something is wrong anyway.
		deadline: cfg.Timeouts.Pool.Std() + cfg.Timeouts.Dial.Std() + cfg.Timeouts.Write.Std() + cfg.Timeouts.Read.Std(),
		logger:   o.Logger,
		warnNS:   int64(o.WarnInterval),
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.warnNS <= 0 {
		c.warnNS = int64(DefaultWarnInterval)
	}
	failures := uint32(max(cfg.Breaker.Failures, 1))
	c.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1, // one probe in half-open
		Timeout:     max(cfg.Breaker.CoolDown.Std(), time.Millisecond),
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= failures },
		// Redis answering with an error (NOSCRIPT, WRONGTYPE, a nil
		// reply) is alive: only transport failures count.
		IsSuccessful: func(err error) bool { return err == nil || !isTransportError(err) },
		// A caller that went away (client disconnected) says nothing
		// about Redis: it neither trips nor closes the breaker.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				c.opens.Add(1)
				c.logger.Warn("redis: circuit breaker open: calls fail at once and limits apply their fallback",
					"cool_down", cfg.Breaker.CoolDown.Std().String())
			} else if to == gobreaker.StateClosed && from == gobreaker.StateHalfOpen {
				c.logger.Info("redis: circuit breaker closed: redis answers again")
			}
		},
	})
	return c
}

func tlsConfig(t *config.RedisTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redisconn: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redisconn: tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redisconn: tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// isTransportError reports whether err means Redis did not answer, as
// opposed to an answer that is an error.
func isTransportError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		// A reply from the server. LOADING, MASTERDOWN, CLUSTERDOWN,
		// READONLY (failover in progress), TRYAGAIN, max clients and
		// OOM mean it cannot serve now; a refused login (wrong password,
		// no permission) means it never will until someone fixes the
		// configuration: all of them are an outage for the callers, and
		// trip the breaker rather than cost every request a new
		// connection.
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
			redis.IsMasterDownError(err) || redis.IsTryAgainError(err) || redis.IsMaxClientsError(err) ||
			redis.IsOOMError(err) || redis.IsAuthError(err) || redis.IsPermissionError(err)
	}
	return true
}

// Do runs fn with the client, under the breaker and a deadline. An error
// that wraps ErrUnavailable means Redis did not answer; any other is
// Redis's answer (or fn's own).
func (c *Client) Do(ctx context.Context, fn func(ctx context.Context, rdb redis.UniversalClient) error) error {
	var callErr error
	_, err := c.breaker.Execute(func() (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, c.deadline)
		defer cancel()
		callErr = fn(cctx, c.rdb)
		return struct{}{}, callErr
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		c.fastFails.Add(1)
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrBreakerOpen)
	case isTransportError(callErr):
		if ctx.Err() != nil {
			// The caller gave up (client gone): not Redis's fault, but
			// still no answer.
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
		c.errs.Add(1)
		c.warn(callErr)
		return fmt.Errorf("%w: %w", ErrUnavailable, callErr)
	default:
		return fmt.Errorf("redisconn: %w", callErr)
	}
}

// warn logs err, at most once per warning interval; the warning counts
// the errors not logged since the last one.
func (c *Client) warn(err error) {
	now := time.Now().UnixNano()
	last := c.lastWarn.Load()
	if now-last < c.warnNS || !c.lastWarn.CompareAndSwap(last, now) {
		c.suppressed.Add(1)
		return
	}
	// go-redis errors name the address and the failure, never the
	// password.
	c.logger.Warn("redis: call failed; limits apply their fallback",
		"error", err.Error(), "breaker", c.State().String(), "errors_not_logged", c.suppressed.Swap(0))
}

// Ping checks that Redis answers (readiness, health checks). It goes
// through the breaker like any call.
func (c *Client) Ping(ctx context.Context) error {
	return c.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Ping(ctx).Err()
	})
}

// Prefix is redis.key_prefix: every key the gateway writes starts with it.
func (c *Client) Prefix() string { return c.prefix }

// Redis is the underlying client, for callers that build scripts. Calls
// made on it directly bypass the breaker: go through Do.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// State is the breaker's current state.
func (c *Client) State() BreakerState {
	switch c.breaker.State() {
	case gobreaker.StateClosed:
		return BreakerClosed
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerOpen
	}
}

// Stats returns the counters, for metrics.
func (c *Client) Stats() Stats {
	return Stats{
		Errors:       c.errs.Load(),
		FastFails:    c.fastFails.Load(),
		BreakerOpens: c.opens.Load(),
		Breaker:      c.State(),
		Pool:         c.rdb.PoolStats(),
	}
}

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }

// Acquire returns the process's Client for cfg through the resource
// registry: every plan with the same redis block shares one client, kept
// across reloads and closed with the last plan holding it.
func Acquire(s *resource.Scope, cfg config.Redis, o Options) (*Client, error) {
	c, _, err := resource.Get(s, ResourceKey(cfg), func() (*Client, func(), error) {
		c, err := New(cfg, o)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { _ = c.Close() }, nil
	})
	return c, err
}

// ResourceKey is the registry key of the Client for cfg: resources built
// over the client put it in their own settings, so that a change of the
// redis block gives them a new client. Its secrets are salted MACs, never
// the secrets.
func ResourceKey(cfg config.Redis) string { return resource.Key("redis", keyed(cfg)) }

// keySalt makes the resource key of a configuration unguessable from
// its passwords: registry keys show on status pages, and an unsalted
// hash of a short password can be searched.
var keySalt = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

// keyed is cfg with its secrets replaced by salted MACs: equal secrets
// still give equal keys within the process.
func keyed(cfg config.Redis) config.Redis {
	mac := func(s string) string {
		if s == "" {
			return ""
		}
		h := hmac.New(sha256.New, keySalt)
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil))
	}
	cfg.Password, cfg.SentinelPassword = mac(cfg.Password), mac(cfg.SentinelPassword)
	return cfg
}

// quietLibraryLog replaces go-redis's own log (one line per failed dial,
// on standard error, unbounded) with debug lines: the Client's warning
// reports failures, rate-limited. go-redis has one logger per process.
var quietLibraryLog sync.Once

type debugLog struct{}

func (debugLog) Printf(ctx context.Context, format string, v ...any) {
	if l := slog.Default(); l.Enabled(ctx, slog.LevelDebug) {
		l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
	}
}
