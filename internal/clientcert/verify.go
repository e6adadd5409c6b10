// Package clientcert verifies TLS client certificates and turns a verified
// certificate into the facts an identity is made of.
//
// A Verifier is compiled once from PEM files (CA bundles, CRLs) and
// settings (minimum key sizes, allowed signature algorithms); the gateway
// swaps it atomically on reload. Verification runs once per TLS connection,
// during the handshake (tls.Config.VerifyConnection), and its Result is
// attached to the connection's context, where the mtls authenticator
// (internal/authn/mtls) reads it for every request on that connection.
// Nothing is parsed or verified per request.
//
// The checks, in order: a certificate was presented; the chain builds to one
// of the configured trust anchors (with the client's intermediates and any
// intermediates of the CA bundle) for client authentication, at the injected
// clock's time; every certificate of the chain has a key at least as strong
// as configured and, except the anchor, a signature algorithm from the
// allowed list; no certificate of the chain is on its issuer's CRL, and
// every applicable CRL is current.
package clientcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// Reasons of client-certificate verification and mapping. They appear in
// audit events and logs and never change meaning; docs/audit.md lists them.
const (
	// ReasonMissing: no client certificate was presented.
	ReasonMissing authn.Reason = "cert_missing"
	// ReasonUntrusted: the certificate does not chain to a configured
	// trust anchor, is not for client authentication, has a key that is too
	// weak or a signature algorithm that is not allowed, or its revocation
	// status is unknown (an applicable CRL is past its next update).
	ReasonUntrusted authn.Reason = "cert_untrusted"
	// ReasonExpired: the certificate (or one of its chain) is outside its
	// validity period (expired or not yet valid) at the gateway's clock,
	// and would otherwise have been trusted.
	ReasonExpired authn.Reason = "cert_expired"
	// ReasonRevoked: the certificate or one of its issuers is listed on a
	// configured CRL.
	ReasonRevoked authn.Reason = "cert_revoked"
	// ReasonNotAllowed: the certificate is trusted but the route does not
	// accept it: its SPIFFE trust domain, subject or SPIFFE ID is not on the
	// route's allow-lists, or no configured subject source is present.
	ReasonNotAllowed authn.Reason = "cert_not_allowed"
)

// Modes of a listener's client-certificate request.
const (
	// ModeRequest asks for a certificate and verifies it if presented; the
	// handshake succeeds either way and the request carries the outcome, so
	// routes that do not need a certificate keep working.
	ModeRequest = "request"
	// ModeRequire fails the handshake when no certificate, or one that does
	// not verify, is presented.
	ModeRequire = "require"
)

// Defaults of Settings.
const (
	DefaultMinRSABits = 2048
	DefaultMinECBits  = 256
	// MaxChain bounds the certificates a client may present: chain
	// building is the expensive part of verification, and no honest
	// client sends more.
	MaxChain = 8
)

// DefaultSignatureAlgorithms are the certificate signature algorithms
// accepted when none are configured: RSA PKCS#1 v1.5 and PSS with SHA-256
// or stronger, ECDSA with SHA-256 or stronger, and Ed25519. (Go's x509
// already refuses MD5 and SHA-1 signatures.)
var DefaultSignatureAlgorithms = []x509.SignatureAlgorithm{
	x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
	x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
	x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
	x509.PureEd25519,
}

// SignatureAlgorithmNames are the names accepted in configuration, as Go's
// x509.SignatureAlgorithm.String spells them.
func SignatureAlgorithmNames() []string {
	out := make([]string, 0, len(DefaultSignatureAlgorithms))
	for _, a := range DefaultSignatureAlgorithms {
		out = append(out, a.String())
	}
	return out
}

// ParseSignatureAlgorithm is the inverse of x509.SignatureAlgorithm.String
// for the algorithms Gatehouse can accept.
func ParseSignatureAlgorithm(name string) (x509.SignatureAlgorithm, bool) {
	for _, a := range DefaultSignatureAlgorithms {
		if a.String() == name {
			return a, true
		}
	}
	return x509.UnknownSignatureAlgorithm, false
}

// Settings are what a listener's client_certificates block compiles from.
type Settings struct {
	// CAFiles are PEM files of trust anchors (self-signed certificates)
	// and, optionally, intermediate CA certificates (used to build chains
	// and to check CRLs they signed; not anchors). At least one anchor.
	CAFiles []string
	// CRLFiles are PEM ("X509 CRL") or DER CRL files, each signed by a
	// certificate of CAFiles.
	CRLFiles []string
	// Mode is ModeRequest or ModeRequire. Default ModeRequest.
	Mode string
	// MinRSABits and MinECBits are the smallest keys accepted anywhere in
	// the chain. Defaults DefaultMinRSABits, DefaultMinECBits.
	MinRSABits, MinECBits int
	// SignatureAlgorithms accepted on the chain's certificates. Default
	// DefaultSignatureAlgorithms.
	SignatureAlgorithms []x509.SignatureAlgorithm
	// Now is the clock validity is checked against. Default time.Now.
	Now func() time.Time
}

// Verifier is a compiled client-certificate policy. It is immutable and
// safe for concurrent use; a reload compiles a new one.
type Verifier struct {
	mode         string
	anchors      []*x509.Certificate // CA bundle certificates that are self-signed
	roots        *x509.CertPool
	intermediate *x509.CertPool
	crls         map[string][]*crl // by the issuer's raw subject
	minRSA       int
	minEC        int
	sigAlgs      []x509.SignatureAlgorithm
	now          func() time.Time
}

// crl is one parsed revocation list and the key that signed it.
type crl struct {
	signerSPKI [sha256.Size]byte
	nextUpdate time.Time
	revoked    map[string]struct{} // serial numbers, big-endian bytes
	file       string
}

// Load reads s's files and compiles a Verifier. Errors name the file.
func Load(s Settings) (*Verifier, error) {
	v := &Verifier{
		mode:         s.Mode,
		roots:        x509.NewCertPool(),
		intermediate: x509.NewCertPool(),
		crls:         map[string][]*crl{},
		minRSA:       s.MinRSABits,
		minEC:        s.MinECBits,
		sigAlgs:      slices.Clone(s.SignatureAlgorithms),
		now:          s.Now,
	}
	if v.mode == "" {
		v.mode = ModeRequest
	}
	if v.mode != ModeRequest && v.mode != ModeRequire {
		return nil, fmt.Errorf("clientcert: mode %q: want request or require", s.Mode)
	}
	if v.minRSA == 0 {
		v.minRSA = DefaultMinRSABits
	}
	if v.minEC == 0 {
		v.minEC = DefaultMinECBits
	}
	if len(v.sigAlgs) == 0 {
		v.sigAlgs = slices.Clone(DefaultSignatureAlgorithms)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(s.CAFiles) == 0 {
		return nil, errors.New("clientcert: no CA file")
	}
	var all []*x509.Certificate
	for _, f := range s.CAFiles {
		certs, err := readCerts(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if !c.IsCA {
				return nil, fmt.Errorf("clientcert: %s: certificate %q is not a CA certificate", f, c.Subject)
			}
			if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
				v.roots.AddCert(c)
				v.anchors = append(v.anchors, c)
			} else {
				v.intermediate.AddCert(c)
			}
			all = append(all, c)
		}
	}
	if len(v.anchors) == 0 {
		return nil, errors.New("clientcert: the CA files hold no self-signed trust anchor")
	}
	for _, f := range s.CRLFiles {
		lists, err := readCRLs(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			c, err := compileCRL(f, l, all)
			if err != nil {
				return nil, err
			}
			v.crls[string(l.RawIssuer)] = append(v.crls[string(l.RawIssuer)], c)
		}
	}
	return v, nil
}

// Mode is ModeRequest or ModeRequire.
func (v *Verifier) Mode() string { return v.mode }

// ClientCAs is the pool of trust anchors, which the server names in its
// certificate request so that clients pick a matching certificate.
func (v *Verifier) ClientCAs() *x509.CertPool { return v.roots }

func compileCRL(file string, l *x509.RevocationList, cas []*x509.Certificate) (*crl, error) {
	for _, ca := range cas {
		if !bytes.Equal(ca.RawSubject, l.RawIssuer) || l.CheckSignatureFrom(ca) != nil {
			continue
		}
		c := &crl{signerSPKI: sha256.Sum256(ca.RawSubjectPublicKeyInfo), nextUpdate: l.NextUpdate, revoked: map[string]struct{}{}, file: file}
		for _, e := range l.RevokedCertificateEntries {
			c.revoked[string(e.SerialNumber.Bytes())] = struct{}{}
		}
		return c, nil
	}
	return nil, fmt.Errorf("clientcert: %s: CRL of %q is not signed by a certificate of the CA files", file, issuerName(l))
}

func issuerName(l *x509.RevocationList) string { return l.Issuer.String() }

// maxFile bounds what a CA or CRL file may hold (a mistyped path to a large
// file must not exhaust memory at reload).
const maxFile = 64 << 20

func readFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("clientcert: %w", err)
	}
	if st.Size() > maxFile {
		return nil, fmt.Errorf("clientcert: %s: larger than %d MiB", name, maxFile>>20)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("clientcert: %w", err)
	}
	return b, nil
}

func readCerts(name string) ([]*x509.Certificate, error) {
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("clientcert: %s: unexpected PEM block %q (want CERTIFICATE)", name, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("clientcert: %s: %w", name, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clientcert: %s: no PEM certificate", name)
	}
	return out, nil
}

func readCRLs(name string) ([]*x509.RevocationList, error) {
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		l, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("clientcert: %s: %w", name, err)
		}
		return []*x509.RevocationList{l}, nil
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("clientcert: %s: unexpected PEM block %q (want X509 CRL)", name, b.Type)
		}
		l, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("clientcert: %s: %w", name, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clientcert: %s: no CRL", name)
	}
	return out, nil
}

// Result is the outcome of verifying one connection's client certificate.
// It is immutable once built; the claims are derived on first use.
type Result struct {
	// Reason is "" for a verified certificate, otherwise why it was not
	// (ReasonMissing when none was presented).
	Reason authn.Reason
	// Err is the internal cause of a failure, for logs only.
	Err error
	// Chain is the verified chain, leaf first (nil unless verified).
	Chain []*x509.Certificate
	// Thumbprint is the leaf's RFC 8705 x5t#S256: base64url (no padding)
	// of the SHA-256 of its DER encoding. Set whenever a certificate was
	// presented, verified or not, so audit events can name a refused one.
	Thumbprint string

	factsOnce sync.Once
	facts     *Facts
	xfccOnce  sync.Once
	xfcc      string
}

// Verified reports whether the result holds a verified chain.
func (r *Result) Verified() bool { return r != nil && r.Reason == "" && len(r.Chain) > 0 }

// Leaf is the verified client certificate, or nil.
func (r *Result) Leaf() *x509.Certificate {
	if !r.Verified() {
		return nil
	}
	return r.Chain[0]
}

// Thumbprint returns the RFC 8705 x5t#S256 of a DER certificate.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var missing = &Result{Reason: ReasonMissing}

// Verify checks the certificates a client presented (leaf first, as
// tls.ConnectionState.PeerCertificates holds them). It never returns nil.
func (v *Verifier) Verify(peer []*x509.Certificate) *Result {
	if len(peer) == 0 {
		return missing
	}
	res := &Result{Thumbprint: Thumbprint(peer[0].Raw)}
	if len(peer) > MaxChain {
		res.Reason, res.Err = ReasonUntrusted, fmt.Errorf("clientcert: %d certificates presented, at most %d accepted", len(peer), MaxChain)
		return res
	}
	leaf := peer[0]
	opts := x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: v.intermediate,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(peer) > 1 {
		// The client's intermediates join the bundle's, without touching
		// the shared pool.
		opts.Intermediates = v.intermediate.Clone()
		for _, c := range peer[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		res.Reason, res.Err = v.classify(peer, opts, err), fmt.Errorf("clientcert: %w", err)
		return res
	}
	now := opts.CurrentTime
	var first *Result
	for _, chain := range chains {
		reason, err := v.checkChain(chain, now)
		if reason == "" {
			res.Chain = chain
			return res
		}
		// Revocation wins over a weak key in another chain: report the
		// most specific refusal.
		if first == nil || reason == ReasonRevoked && first.Reason != ReasonRevoked {
			first = &Result{Reason: reason, Err: err}
		}
	}
	res.Reason, res.Err = first.Reason, first.Err
	return res
}

// classify tells an expired (or not yet valid) chain that would otherwise
// verify from an untrusted one: it verifies again at the edge of the
// presented certificates' common validity (the earliest notAfter, or the
// latest notBefore), so "expired" is never said of a certificate that no
// anchor vouches for.
func (v *Verifier) classify(peer []*x509.Certificate, opts x509.VerifyOptions, err error) authn.Reason {
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		return ReasonUntrusted
	}
	notBefore, notAfter := peer[0].NotBefore, peer[0].NotAfter
	for _, c := range peer[1:] {
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	if opts.CurrentTime.After(notAfter) {
		opts.CurrentTime = notAfter
	} else {
		opts.CurrentTime = notBefore
	}
	if _, err := peer[0].Verify(opts); err != nil {
		return ReasonUntrusted
	}
	return ReasonExpired
}

func (v *Verifier) checkChain(chain []*x509.Certificate, now time.Time) (authn.Reason, error) {
	for i, c := range chain {
		if err := v.checkKey(c); err != nil {
			return ReasonUntrusted, err
		}
		anchor := i == len(chain)-1
		if !anchor && !slices.Contains(v.sigAlgs, c.SignatureAlgorithm) {
			return ReasonUntrusted, fmt.Errorf("clientcert: %q is signed with %s, which is not allowed", c.Subject, c.SignatureAlgorithm)
		}
		if anchor {
			continue
		}
		issuer := chain[i+1]
		spki := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
		for _, l := range v.crls[string(c.RawIssuer)] {
			if l.signerSPKI != spki {
				continue // a namesake CA with another key: not its CRL
			}
			if !l.nextUpdate.IsZero() && now.After(l.nextUpdate) {
				return ReasonUntrusted, fmt.Errorf("clientcert: the CRL of %q (%s) was due for renewal at %s: revocation status unknown", issuer.Subject, l.file, l.nextUpdate.Format(time.RFC3339))
			}
			if _, revoked := l.revoked[string(c.SerialNumber.Bytes())]; revoked {
				return ReasonRevoked, fmt.Errorf("clientcert: %q (serial %x) is revoked by %s", c.Subject, c.SerialNumber, l.file)
			}
		}
	}
	return "", nil
}

func (v *Verifier) checkKey(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < v.minRSA {
			return fmt.Errorf("clientcert: %q has a %d-bit RSA key, at least %d required", c.Subject, n, v.minRSA)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < v.minEC {
			return fmt.Errorf("clientcert: %q has a %d-bit EC key, at least %d required", c.Subject, n, v.minEC)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("clientcert: %q has an unsupported key type %T", c.Subject, k)
	}
	return nil
}

type ctxKey struct{}

// Slot is where a connection's Result is kept: created when the connection
// is accepted (http.Server.ConnContext), filled during the handshake.
type Slot struct{ res atomic.Pointer[Result] }

// Set records the connection's result.
func (s *Slot) Set(r *Result) { s.res.Store(r) }

// Result is the connection's result, or nil before the handshake.
func (s *Slot) Result() *Result { return s.res.Load() }

// WithSlot returns ctx carrying s.
func WithSlot(ctx context.Context, s *Slot) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext is the client-certificate result of the request's
// connection: nil when the listener does not ask for client certificates
// (plain HTTP, or HTTPS without client_certificates).
func FromContext(ctx context.Context) *Result {
	s, _ := ctx.Value(ctxKey{}).(*Slot)
	if s == nil {
		return nil
	}
	if r := s.Result(); r != nil {
		return r
	}
	// A request before the handshake finished cannot happen with net/http;
	// if it did, it has no certificate.
	return missing
}

// NewContext returns ctx carrying a filled slot (for tests and for
// certificates vouched for by a trusted TLS terminator).
func NewContext(ctx context.Context, r *Result) context.Context {
	s := &Slot{}
	s.Set(r)
	return WithSlot(ctx, s)
}
