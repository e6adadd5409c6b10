package pgstore

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Listener timing. The idle check catches connections that died without a
// reset (a half-open TCP connection would otherwise wait forever, and every
// revocation sent meanwhile would be missed).
const (
	listenIdleCheck  = 30 * time.Second
	listenPingWait   = 5 * time.Second
	listenDialWait   = 10 * time.Second // per reconnect attempt, connect and LISTEN
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// listener delivers NOTIFY payloads on NotifyChannel to onChange over a
// dedicated connection (a pooled one would be handed to queries), and
// reconnects with capped exponential backoff when it breaks.
type listener struct {
	cfg      *pgx.ConnConfig
	onChange func(keyID string)
	// onRevocations, if set, is called for every notification on
	// RevocationChannel and after every reconnect.
	onRevocations func()
	log           *slog.Logger
	// up is set while the connection listens (Store.Listening).
	up *atomic.Bool

	idleCheck, pingWait, minBackoff, maxBackoff time.Duration // zero: the package defaults
}

// connectListener opens a connection and subscribes it to NotifyChannel
// and RevocationChannel.
func connectListener(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()+"; LISTEN "+pgx.Identifier{RevocationChannel}.Sanitize()); err != nil {
		closeQuietly(conn)
		return nil, err
	}
	return conn, nil
}

// run owns conn and returns once ctx is done, with no connection open.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.up == nil {
		l.up = new(atomic.Bool)
	}
	l.up.Store(true)
	defer l.up.Store(false)
	for {
		err := l.receive(ctx, conn)
		l.up.Store(false)
		closeQuietly(conn)
		if ctx.Err() != nil {
			return
		}
		// One line for the disconnect and one for the reconnect, however
		// many attempts it takes: an outage must not flood the log.
		l.log.Warn("pgstore: key-change listener disconnected; reconnecting with backoff. Until then, keys revoked on other replicas stop here only when their cache entry expires (api_keys.cache_ttl), and the revocation list is polled (revocation.poll_interval)",
			"error", err)
		down := time.Now()
		var attempts int
		if conn, attempts = l.reconnect(ctx); conn == nil {
			return
		}
		l.up.Store(true)
		// Whatever was notified while we were away is lost.
		l.changed(NotifyChannel, FlushAll)
		l.changed(RevocationChannel, "")
		l.log.Info("pgstore: key-change listener reconnected; cached keys flushed",
			"attempts", attempts, "down", time.Since(down).Round(time.Millisecond).String())
	}
}

// receive hands notifications to onChange until the connection fails (its
// error is returned) or ctx is done.
func (l *listener) receive(ctx context.Context, conn *pgx.Conn) error {
	idle := cmp.Or(l.idleCheck, listenIdleCheck)
	for {
		wctx, cancel := context.WithTimeout(ctx, idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			l.changed(n.Channel, n.Payload)
			continue
		}
		if ctx.Err() != nil || !pgconn.Timeout(err) || conn.IsClosed() {
			return err
		}
		// Quiet for a while: make sure the server is still there.
		pctx, cancel := context.WithTimeout(ctx, cmp.Or(l.pingWait, listenPingWait))
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// changed hands a notification to the callback of its channel.
func (l *listener) changed(channel, payload string) {
	switch {
	case channel == RevocationChannel && l.onRevocations != nil:
		l.onRevocations()
	case channel == NotifyChannel && l.onChange != nil:
		l.onChange(payload)
	}
}

// reconnect retries until it is listening again, or returns nil once ctx is
// done; attempts counts the tries. Failed attempts are logged at debug
// level only.
func (l *listener) reconnect(ctx context.Context) (conn *pgx.Conn, attempts int) {
	backoff := cmp.Or(l.minBackoff, listenMinBackoff)
	maxBackoff := cmp.Or(l.maxBackoff, listenMaxBackoff)
	for {
		// Full jitter in [backoff/2, backoff): replicas that lost the
		// database together do not reconnect in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, attempts
		case <-t.C:
		}
		attempts++
		dctx, cancel := context.WithTimeout(ctx, listenDialWait)
		conn, err := connectListener(dctx, l.cfg)
		cancel()
		if err == nil {
			return conn, attempts
		}
		if ctx.Err() != nil {
			return nil, attempts
		}
		l.log.Debug("pgstore: key-change listener reconnect failed", "attempt", attempts, "error", err)
		backoff = min(2*backoff, maxBackoff)
	}
}

// closeQuietly closes conn without waiting long for a server that may be
// gone.
func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
