package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/config"
)

// forwardedCerts reads the client certificate a TLS-terminating proxy
// forwarded in a header (listeners[].forwarded_client_certificates).
//
// On a request whose TCP peer is in forwarding.trusted_proxies, the header
// is parsed and the certificate verified by the listener's own verifier
// (CAs, CRLs, key sizes, signature algorithms, the gateway's clock: the
// terminator vouches for which certificate the client presented, not for
// having checked it our way; a verified header is remembered while its
// verdict cannot change, see clientcert.ForwardedCache), and the result
// replaces the connection's in the request context, so the mtls method
// reads it unchanged. A trusted
// proxy that sends no header forwards a client without a certificate: the
// proxy's own TLS client certificate, if any, is never the client's.
//
// From any other peer the header is never parsed, and the connection's own
// result (a direct TLS client certificate) stands. In every case the
// pipeline removes the header before the upstream (pipeline.Build adds it
// to the headers stripped from every request).
type forwardedCerts struct {
	listener string
	header   string // canonical
	format   string
	log      *slog.Logger
	now      func() time.Time
	// cache is the current verifier with its cache of verified forwarded
	// certificates; a reload replaces both.
	cache atomic.Pointer[clientcert.ForwardedCache]
}

func (g *Gateway) bindForwardedCerts(fd *frontDoor, lc config.Listener) error {
	c := lc.ForwardedClientCertificates
	if c == nil {
		return nil
	}
	now := g.opts.Now
	if now == nil {
		now = time.Now
	}
	fc := &forwardedCerts{listener: fd.name, header: http.CanonicalHeaderKey(c.Header), format: c.Format, log: g.log, now: now}
	v, err := fc.load(c)
	if err != nil {
		return err
	}
	fc.cache.Store(clientcert.NewForwardedCache(v, 0))
	fd.forwarded = fc
	return nil
}

func (fc *forwardedCerts) load(c *config.ForwardedClientCertificates) (*clientcert.Verifier, error) {
	s := c.Settings()
	s.Now = fc.now
	return clientcert.Load(s)
}

// apply returns r with the forwarded certificate's result in its context
// when the peer is trusted; r itself otherwise.
func (fc *forwardedCerts) apply(r *http.Request, trusted bool) *http.Request {
	if !trusted {
		return r
	}
	res := fc.cache.Load().Verify(fc.format, r.Header[fc.header])
	if !res.Verified() && res.Reason != clientcert.ReasonMissing {
		fc.log.Debug("gateway: forwarded client certificate not verified", "listener", fc.listener,
			"reason", string(res.Reason), "credential_id", res.Thumbprint, "remote", r.RemoteAddr, "error", errString(res.Err))
	}
	return r.WithContext(clientcert.NewContext(r.Context(), res))
}

// loadForwardedCerts compiles the forwarded-certificate verifiers of a
// reload (nil where a listener has none), before anything is swapped.
func (g *Gateway) loadForwardedCerts(listeners []config.Listener) ([]*clientcert.Verifier, error) {
	out := make([]*clientcert.Verifier, len(listeners))
	for i, lc := range listeners {
		fd := g.listeners[i]
		if fd.forwarded == nil || lc.ForwardedClientCertificates == nil {
			continue
		}
		v, err := fd.forwarded.load(lc.ForwardedClientCertificates)
		if err != nil {
			return nil, fmt.Errorf("listener %s: forwarded_client_certificates: %w", lc.Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// swapForwardedCerts installs the verifiers loadForwardedCerts compiled.
func (g *Gateway) swapForwardedCerts(vs []*clientcert.Verifier) {
	for i, v := range vs {
		if v != nil {
			g.listeners[i].forwarded.cache.Store(clientcert.NewForwardedCache(v, 0))
		}
	}
}
