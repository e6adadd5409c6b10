package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of the test server that can simulate a
// network partition: Blackhole makes it keep every connection open, accept
// new ones, and drop everything sent either way (nothing is refused or
// reset, so clients see no error, only silence). Heal forwards new
// connections again (connections opened while blackholed stay silent, as
// after a real partition they would have timed out).
type Proxy struct {
	tb     testing.TB
	target string
	ln     net.Listener

	mu       sync.Mutex
	gen      int // connections opened before the last Blackhole have a lower generation
	holed    bool
	clients  map[net.Conn]struct{} // client-side connections not yet closed by the client
	upstream map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// NewProxy starts a proxy to dsn's server (dsn must be a postgres:// URL)
// on 127.0.0.1 and returns it with a DSN that goes through it. It is closed
// when the test ends.
func NewProxy(tb testing.TB, dsn string) (*Proxy, string) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		tb.Skipf("proxy test needs a postgres:// URL DSN, got %q", dsn)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{tb: tb, target: u.Host, ln: ln, clients: map[net.Conn]struct{}{}, upstream: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// Blackhole starts the partition.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	p.gen++
	p.holed = true
	p.mu.Unlock()
}

// Heal ends the partition for connections opened from now on.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.holed = false
	p.mu.Unlock()
}

// Open is the number of client connections the proxy holds that the
// client has not closed: the sockets a client leaks show up here.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.clients {
		c.Close()
	}
	for c := range p.upstream {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.clients[c] = struct{}{}
		holed, gen := p.holed, p.gen
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c, holed, gen)
	}
}

func (p *Proxy) handle(c net.Conn, holed bool, gen int) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.clients, c)
		p.mu.Unlock()
		c.Close()
	}()
	if holed {
		// Read and drop until the client gives up: it hears nothing.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.upstream[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.upstream, up)
		p.mu.Unlock()
		up.Close()
	}()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.silenced(gen) {
				if _, werr := dst.Write(buf[:n]); werr != nil && !p.silenced(gen) {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	fromServer := make(chan struct{})
	go func() {
		defer close(fromServer)
		pipe(c, up)
		// A server that goes away is passed on, unless the partition
		// hides it.
		if !p.silenced(gen) {
			c.Close()
		}
	}()
	pipe(up, c) // until the client closes
	c.Close()
	up.Close()
	<-fromServer
}

func (p *Proxy) silenced(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gen < p.gen
}
