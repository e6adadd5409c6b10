package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// clientCerts is the mutual-TLS side of an HTTPS listener with
// client_certificates. How a certificate gets from the handshake to the
// mtls authenticator:
//
//  1. ConnContext (at accept, before the handshake) gives the connection
//     an empty clientcert.Slot, in its context and in pending, keyed by
//     the raw connection.
//  2. GetConfigForClient (at the ClientHello) takes the slot out of
//     pending and returns a per-connection tls.Config whose
//     VerifyConnection checks the presented chain once with the verifier
//     current at that moment, fills the slot, and, in require mode, fails
//     the handshake (logged and counted) on anything but a verified
//     certificate. Resumed sessions are checked again, against the
//     current CAs and CRLs.
//  3. Every request of the connection (HTTP/1.1 or HTTP/2) has the slot in
//     its context; the mtls authenticator reads the result there, so a
//     refused certificate in request mode reaches the HTTP layer and its
//     audit event with its reason.
//
// A reload swaps the verifier atomically (CA and CRL files re-read):
// connections open already keep their result, new handshakes use the new
// verifier, and no connection is dropped.
type clientCerts struct {
	listener string
	log      *slog.Logger
	metrics  *metrics.Metrics
	now      func() time.Time
	template *tls.Config // MinVersion, NextProtos, GetCertificate
	verifier atomic.Pointer[clientcert.Verifier]
	pending  sync.Map // net.Conn (the raw connection) → *clientcert.Slot
}

// errNoSlot: a ClientHello on a connection the server never announced (it
// cannot happen with net/http); refused rather than served without a
// place for the result.
var errNoSlot = errors.New("gateway: client certificate: connection not registered")

func newClientCerts(listener string, c *config.ClientCertificates, template *tls.Config, log *slog.Logger, m *metrics.Metrics, now func() time.Time) (*clientCerts, error) {
	cc := &clientCerts{listener: listener, log: log, metrics: m, now: now, template: template}
	v, err := cc.load(c)
	if err != nil {
		return nil, err
	}
	cc.verifier.Store(v)
	return cc, nil
}

// load compiles c's files with the gateway's clock.
func (cc *clientCerts) load(c *config.ClientCertificates) (*clientcert.Verifier, error) {
	s := c.Settings()
	s.Now = cc.now
	return clientcert.Load(s)
}

// tlsConfig is the listener's tls.Config: everything is decided per
// connection by GetConfigForClient.
func (cc *clientCerts) tlsConfig() *tls.Config {
	cfg := cc.template.Clone()
	cfg.GetConfigForClient = cc.configForClient
	return cfg
}

func (cc *clientCerts) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	s, ok := cc.pending.LoadAndDelete(hello.Conn)
	if !ok {
		return nil, errNoSlot
	}
	slot := s.(*clientcert.Slot)
	v := cc.verifier.Load()
	cfg := cc.template.Clone()
	// Ask for a certificate without letting crypto/tls verify it: the
	// verifier does (CRLs, key sizes, signature algorithms, the injected
	// clock), and in request mode a refusal must not end the handshake.
	cfg.ClientAuth = tls.RequestClientCert
	cfg.ClientCAs = v.ClientCAs() // named in the CertificateRequest
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		res := v.Verify(cs.PeerCertificates)
		slot.Set(res)
		return cc.decide(v.Mode(), res, hello.Conn)
	}
	return cfg, nil
}

// decide logs and counts a handshake's certificate check and, in require
// mode, refuses anything but a verified certificate.
func (cc *clientCerts) decide(mode string, res *clientcert.Result, conn net.Conn) error {
	result := "verified"
	if !res.Verified() {
		result = string(res.Reason)
	}
	if cc.metrics != nil {
		cc.metrics.ClientCertificate(cc.listener, result)
	}
	if res.Verified() {
		return nil
	}
	if mode != clientcert.ModeRequire {
		// The request goes on; an mtls route refuses it with this reason
		// and an audit event.
		cc.log.Debug("gateway: client certificate not verified", "listener", cc.listener, "reason", result,
			"credential_id", res.Thumbprint, "remote", conn.RemoteAddr().String(), "error", errString(res.Err))
		return nil
	}
	cc.log.Warn("gateway: TLS handshake refused: client certificate", "listener", cc.listener, "reason", result,
		"credential_id", res.Thumbprint, "remote", conn.RemoteAddr().String(), "error", errString(res.Err))
	return fmt.Errorf("gateway: client certificate refused (%s)", result)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// connContext registers a freshly accepted connection (before its
// handshake) and puts its slot in the connection's context.
func (cc *clientCerts) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ctx
	}
	slot := &clientcert.Slot{}
	cc.pending.Store(tc.NetConn(), slot)
	return clientcert.WithSlot(ctx, slot)
}

// connState forgets a connection that closed before its ClientHello.
func (cc *clientCerts) connState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		cc.pending.Delete(tc.NetConn())
	}
}

// bindClientCerts sets up mutual TLS on fd when its listener asks for
// client certificates.
func (g *Gateway) bindClientCerts(fd *frontDoor, lc config.Listener) error {
	c := lc.TLS.ClientCertificates
	if c == nil {
		return nil
	}
	now := g.opts.Now
	if now == nil {
		now = time.Now
	}
	cc, err := newClientCerts(fd.name, c, fd.srv.TLSConfig, g.log, g.metrics, now)
	if err != nil {
		return err
	}
	fd.clientCerts = cc
	fd.srv.TLSConfig = cc.tlsConfig()
	fd.srv.ConnContext = cc.connContext
	fd.srv.ConnState = cc.connState
	return nil
}

// loadClientCerts compiles the client-certificate verifiers of a reload
// (nil where a listener has none), before anything is swapped.
func (g *Gateway) loadClientCerts(listeners []config.Listener) ([]*clientcert.Verifier, error) {
	out := make([]*clientcert.Verifier, len(listeners))
	for i, lc := range listeners {
		fd := g.listeners[i]
		if fd.clientCerts == nil || lc.TLS == nil || lc.TLS.ClientCertificates == nil {
			continue
		}
		v, err := fd.clientCerts.load(lc.TLS.ClientCertificates)
		if err != nil {
			return nil, fmt.Errorf("listener %s: client_certificates: %w", lc.Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// swapClientCerts installs the verifiers loadClientCerts compiled.
func (g *Gateway) swapClientCerts(vs []*clientcert.Verifier) {
	for i, v := range vs {
		if v != nil {
			g.listeners[i].clientCerts.verifier.Store(v)
		}
	}
}
