package pgstore

import (
	"github.com/gatehouse/gatehouse/internal/apikey/pgstore/pgtest"

	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// openStore opens a store on a fresh schema of the test server, closed when
// the test ends.
func openStore(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := pgtest.TestDSN(t)
	if opts.Schema == "" {
		opts.Schema = pgtest.FreshSchema(t, dsn)
	}
	return openOn(t, dsn, opts), dsn
}

// openOn opens a store on dsn with opts, closed when the test ends.
func openOn(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func newConsumer(t testing.TB, s *Store) *apikey.Consumer {
	t.Helper()
	c := &apikey.Consumer{
		ID:        apikey.NewConsumerID(),
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	c.Name = "consumer-" + c.ID
	if err := s.CreateConsumer(testCtx(t), c); err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	return c
}

func newKey(t testing.TB, s *Store, consumerID string) *apikey.Key {
	t.Helper()
	k := &apikey.Key{
		ID:         apikey.NewKeyID(),
		ConsumerID: consumerID,
		Hash:       randomHash(),
		Hint:       "gate_live_…abcd",
		Status:     apikey.StatusActive,
		CreatedAt:  time.Now().UTC().Truncate(time.Microsecond),
	}
	if err := s.CreateKey(testCtx(t), k); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k
}

// waitNoDriverGoroutines fails the test if goroutines of this package's
// listener or of the pgx driver and pool outlive their store.
func waitNoDriverGoroutines(t *testing.T) {
	t.Helper()
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		leaked = leaked[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "pgstore.(*listener)") || strings.Contains(g, "github.com/jackc/") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(leaked) > 0 {
		t.Fatalf("%d goroutines outlived Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	}
}

// tcpProxy forwards a local port to the test server, and can drop every
// connection and refuse new ones to simulate the database going away.
type tcpProxy struct {
	t      *testing.T
	addr   string // 127.0.0.1:port, stable across Stop/Start
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	gen   int // connections accepted before Freeze have a lower generation
	wg    sync.WaitGroup
}

// newTCPProxy starts a proxy to dsn's server and returns it with a DSN that
// goes through it.
func newTCPProxy(t *testing.T, dsn string) (*tcpProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Skipf("proxy test needs a postgres:// URL DSN, got %q", dsn)
	}
	p := &tcpProxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	u.Host = p.addr
	return p, u.String()
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // stopped meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			gen := p.gen
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !p.frozen(gen) {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		}
	})
}

// Freeze silently drops everything sent either way on the connections open
// now, without closing them: a network partition, as opposed to a server
// that resets connections. New connections work.
func (p *tcpProxy) Freeze() {
	p.mu.Lock()
	p.gen++
	p.mu.Unlock()
}

func (p *tcpProxy) frozen(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gen < p.gen
}

// Stop closes the listening socket and every proxied connection.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// Start listens again on the same address.
func (p *tcpProxy) Start() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Stop
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy restart on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func isUnavailable(err error) bool { return errors.Is(err, apikey.ErrUnavailable) }
