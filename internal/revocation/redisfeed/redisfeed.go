// Package redisfeed carries changes of the revocation list between
// gateway processes over Redis pub/sub (docs/revocation.md): a process
// that has written a change to the store PUBLISHes on
// <redis.key_prefix>revocations, and every process SUBSCRIBEd to that
// channel reloads its list. It is the change feed for deployments where
// PostgreSQL LISTEN/NOTIFY cannot be used (a pooler such as PgBouncer in
// transaction mode), or a second channel beside it.
//
// Pub/sub delivers at most once and only to connected subscribers, so the
// feed never carries the change itself, only the news of one (the
// message is the sender's random id, so a process skips its own): a replica
// reloads the whole list from the store, and reloads once more after
// every (re)subscription, since messages sent while it was away are lost.
// While the subscription is not confirmed up, Listening is false and the
// replica polls the store.
package redisfeed

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisconn"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// ChannelSuffix follows redis.key_prefix in the channel's name.
const ChannelSuffix = "revocations"

// Default timing of Options.
const (
	// DefaultIdleCheck: after this long without a message the
	// subscription connection is pinged, so that a half-open connection
	// (a peer gone without a reset) is noticed, not waited on forever.
	DefaultIdleCheck = 15 * time.Second
	// DefaultPingWait bounds the wait for the confirmation of a
	// subscription and for the answer to a ping.
	DefaultPingWait = 5 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between two
	// attempts to subscribe, or to publish.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// Options tune a Feed; zero values take the defaults.
type Options struct {
	// Log receives one line when the subscription is lost and one when it
	// is back (not one per attempt), and the same for publishing.
	// Default slog.Default().
	Log                                         *slog.Logger
	IdleCheck, PingWait, MinBackoff, MaxBackoff time.Duration
}

// Feed is both sides of the channel for one process: it implements
// revocation.Feed (Subscribe, Listening) for the replica, and Announce for
// the revocation.Service. Its goroutines run from New until Close.
type Feed struct {
	client  *redisconn.Client
	channel string
	o       Options
	// origin is the payload of this feed's announcements: the process
	// that wrote has applied its change already, so it skips its own.
	origin string

	up      atomic.Bool
	pending chan struct{} // an announcement waits to be published

	mu     sync.Mutex
	subs   map[*func()]struct{}
	ps     *redis.PubSub // the subscription now, closed by Close
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ revocation.Feed = (*Feed)(nil)

// New starts subscribing on c's channel (c.Prefix()+ChannelSuffix) and
// returns at once; Listening turns true when Redis confirms the
// subscription. The subscription holds one connection of its own, outside
// the client's breaker (it is not a call but a standing connection).
func New(c *redisconn.Client, o Options) *Feed {
	o.Log = cmp.Or(o.Log, slog.Default())
	o.IdleCheck = cmp.Or(o.IdleCheck, DefaultIdleCheck)
	o.PingWait = cmp.Or(o.PingWait, DefaultPingWait)
	o.MinBackoff = cmp.Or(o.MinBackoff, DefaultMinBackoff)
	o.MaxBackoff = max(cmp.Or(o.MaxBackoff, DefaultMaxBackoff), o.MinBackoff)
	var id [8]byte
	_, _ = crand.Read(id[:])
	f := &Feed{client: c, channel: c.Prefix() + ChannelSuffix, o: o, origin: hex.EncodeToString(id[:]),
		pending: make(chan struct{}, 1), subs: map[*func()]struct{}{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Add(2)
	go f.listen()
	go f.publish()
	return f
}

// Channel is the pub/sub channel's name.
func (f *Feed) Channel() string { return f.channel }

// Subscribe implements revocation.Feed.
func (f *Feed) Subscribe(changed func()) func() {
	key := &changed
	f.mu.Lock()
	f.subs[key] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.subs, key)
		f.mu.Unlock()
	}
}

// Listening implements revocation.Feed: true while Redis has confirmed
// the subscription and the connection has not failed since.
func (f *Feed) Listening() bool { return f.up.Load() }

// Announce tells the other processes that the list changed. It never
// blocks: the message is published by the feed's goroutine, retried with
// backoff while Redis does not answer, and announcements that arrive
// meanwhile are folded into the one pending (a burst of writes costs one
// or two messages, not one each).
func (f *Feed) Announce() {
	select {
	case f.pending <- struct{}{}:
	default:
	}
}

// Close stops both goroutines and closes the subscription; an
// announcement still pending is published once more, bounded by a second.
// Later calls do nothing.
func (f *Feed) Close() {
	f.once.Do(func() {
		f.cancel()
		f.mu.Lock()
		f.closed = true
		if f.ps != nil {
			_ = f.ps.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
		f.up.Store(false)
	})
}

// changed calls every subscriber.
func (f *Feed) changed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fn := range f.subs {
		(*fn)()
	}
}

// listen keeps one subscription up until Close, resubscribing with
// capped, jittered backoff when it fails.
func (f *Feed) listen() {
	defer f.wg.Done()
	backoff := f.o.MinBackoff
	var (
		downSince time.Time // zero while up, or before the first success
		warned    bool      // the current outage has been logged
		attempts  int
	)
	for {
		ps := f.client.Redis().Subscribe(f.ctx, f.channel)
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = ps.Close()
			return
		}
		f.ps = ps
		f.mu.Unlock()

		attempts++
		confirmed, err := f.session(ps, func() {
			if warned {
				f.o.Log.Info("redisfeed: revocation channel subscribed again; reloading the list",
					"channel", f.channel, "attempts", attempts, "down", time.Since(downSince).Round(time.Millisecond).String())
			}
			warned, attempts, backoff = false, 0, f.o.MinBackoff
		})
		f.up.Store(false)
		f.mu.Lock()
		f.ps = nil
		f.mu.Unlock()
		_ = ps.Close()
		if f.ctx.Err() != nil {
			return
		}
		if confirmed || downSince.IsZero() {
			downSince = time.Now()
		}
		if !warned {
			// redis errors name the address and the failure, never the
			// password.
			f.o.Log.Warn("redisfeed: revocation channel not subscribed; resubscribing with backoff, and the revocation list is polled (revocation.poll_interval) meanwhile",
				"channel", f.channel, "error", err.Error())
			warned = true
		} else {
			f.o.Log.Debug("redisfeed: resubscribe failed", "attempt", attempts, "error", err.Error())
		}
		if !f.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, f.o.MaxBackoff)
	}
}

// session waits for the subscription's confirmation, then hands every
// message to the subscribers until the connection fails. confirmed
// reports whether the subscription was up at some point; up runs once it
// is.
func (f *Feed) session(ps *redis.PubSub, up func()) (confirmed bool, err error) {
	msg, err := ps.ReceiveTimeout(f.ctx, f.o.PingWait)
	if err != nil {
		return false, err
	}
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "subscribe" {
		return false, errors.New("redisfeed: no subscription confirmation from redis")
	}
	f.up.Store(true)
	up()
	// Whatever was published before the subscription was confirmed (at
	// start, or while it was down) has been missed.
	f.changed()
	pinged := false
	for {
		wait := f.o.IdleCheck
		if pinged {
			wait = f.o.PingWait
		}
		msg, err := ps.ReceiveTimeout(f.ctx, wait)
		if err != nil {
			if f.ctx.Err() == nil && !pinged && isTimeout(err) {
				// Quiet for a while: make sure Redis is still there.
				if err := ps.Ping(f.ctx); err != nil {
					return true, err
				}
				pinged = true
				continue
			}
			return true, err
		}
		pinged = false // anything received proves the connection
		switch m := msg.(type) {
		case *redis.Message:
			if m.Payload != f.origin {
				f.changed()
			}
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// go-redis redialled and resubscribed on its own.
				f.changed()
			}
		}
	}
}

// publish sends announcements until Close, then one last pending one.
func (f *Feed) publish() {
	defer f.wg.Done()
	defer func() {
		select {
		case <-f.pending:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = f.send(ctx)
			cancel()
		default:
		}
	}()
	failing := false
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.pending:
		}
		backoff := f.o.MinBackoff
		for {
			err := f.send(f.ctx)
			if err == nil {
				if failing {
					f.o.Log.Info("redisfeed: revocation changes published again", "channel", f.channel)
					failing = false
				}
				break
			}
			if f.ctx.Err() != nil {
				f.Announce() // for the last attempt on the way out
				return
			}
			if !failing {
				f.o.Log.Warn("redisfeed: cannot publish a revocation change; retrying with backoff. Replicas whose subscription is up hear of it at their next resync (revocation.resync_interval) unless PostgreSQL NOTIFY reaches them",
					"channel", f.channel, "error", err.Error())
				failing = true
			}
			if !f.sleep(jitter(backoff)) {
				f.Announce()
				return
			}
			backoff = min(2*backoff, f.o.MaxBackoff)
			// A change announced meanwhile is covered by the retry.
			select {
			case <-f.pending:
			default:
			}
		}
	}
}

// send publishes one announcement through the client's breaker and
// deadline.
func (f *Feed) send(ctx context.Context) error {
	return f.client.Do(ctx, func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Publish(ctx, f.channel, f.origin).Err()
	})
}

// sleep waits d, or returns false once the feed is closed.
func (f *Feed) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter is a wait in [d/2, d]: processes that lost Redis together do
// not come back in lockstep.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
