package clientcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn"
)

// ReasonForwardedInvalid: a trusted proxy's forwarded-certificate header
// cannot be read unambiguously: malformed, given more than once, an XFCC
// element without Cert, a Hash that is not the certificate's, or a Chain
// that does not start with it. Nothing in it is believed.
const ReasonForwardedInvalid authn.Reason = "cert_forwarded_invalid"

// Formats of a forwarded-certificate header.
const (
	// FormatXFCC is Envoy's X-Forwarded-Client-Cert.
	FormatXFCC = "xfcc"
	// FormatPEM is a URL-encoded PEM certificate, optionally followed by
	// its intermediates (nginx $ssl_client_escaped_cert, AWS ALB
	// X-Amzn-Mtls-Clientcert).
	FormatPEM = "pem"
)

// VerifyForwarded verifies the client certificate a trusted TLS terminator
// forwarded in a header, given every value of that header (Header.Values):
// no value or an empty one is a missing certificate; several header lines
// are refused (ReasonForwardedInvalid), as is anything the parser refuses.
// Of an XFCC header the last element is used: Envoy appends its own
// element, so the last is the nearest proxy's, the one Gatehouse trusts;
// the elements before it were written by hops further away.
//
// The certificate is then checked exactly as a handshake's
// (Verify: trust anchors, key sizes, signature algorithms, CRLs, the
// injected clock), whatever the proxy checked. It never returns nil.
func (v *Verifier) VerifyForwarded(format string, values []string) *Result {
	switch {
	case len(values) == 0:
		return missing
	case len(values) > 1:
		return forwardedInvalid(fmt.Errorf("clientcert: forwarded certificate header given %d times", len(values)))
	case strings.TrimSpace(values[0]) == "":
		return missing
	}
	var (
		peer []*x509.Certificate
		err  error
	)
	switch format {
	case FormatXFCC:
		peer, err = xfccPeer(values[0])
	case FormatPEM:
		peer, err = ParseEscapedPEM(strings.TrimSpace(values[0]))
	default:
		err = fmt.Errorf("clientcert: unknown forwarded certificate format %q", format)
	}
	if err != nil {
		return forwardedInvalid(err)
	}
	return v.Verify(peer)
}

func forwardedInvalid(err error) *Result {
	return &Result{Reason: ReasonForwardedInvalid, Err: err}
}

// xfccPeer is the certificate chain of the last element of an XFCC
// header: Chain if given (its first certificate must be Cert), else Cert.
func xfccPeer(v string) ([]*x509.Certificate, error) {
	els, err := ParseXFCC(v)
	if err != nil {
		return nil, err
	}
	el := els[len(els)-1]
	if el.Cert == nil {
		return nil, errors.New("clientcert: XFCC: the nearest element has no Cert (configure the proxy to forward the certificate itself)")
	}
	if el.Hash != "" {
		sum := sha256.Sum256(el.Cert.Raw)
		if !strings.EqualFold(el.Hash, hex.EncodeToString(sum[:])) {
			return nil, errors.New("clientcert: XFCC: Hash is not the SHA-256 of Cert")
		}
	}
	if len(el.Chain) == 0 {
		return []*x509.Certificate{el.Cert}, nil
	}
	if !bytes.Equal(el.Chain[0].Raw, el.Cert.Raw) {
		return nil, errors.New("clientcert: XFCC: Chain does not start with Cert")
	}
	return el.Chain, nil
}

// XFCC renders the verified leaf certificate as one element of Envoy's
// X-Forwarded-Client-Cert: Hash (hex SHA-256 of the DER), Cert (URL-encoded
// PEM), Subject (quoted), and each URI and DNS SAN. It is built once per
// result (per connection for a handshake's certificate) and "" when the
// result is not verified.
func (r *Result) XFCC() string {
	if !r.Verified() {
		return ""
	}
	r.xfccOnce.Do(func() { r.xfcc = formatXFCC(r.Chain[0]) })
	return r.xfcc
}

func formatXFCC(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	b.WriteString("Hash=")
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteString(`;Cert="`)
	// PathEscape: spaces and newlines become %20 and %0A, '"' is escaped,
	// and '+' (base64) stays, as Envoy writes it and ParseEscapedPEM
	// (url.PathUnescape) reads it.
	b.WriteString(url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))))
	b.WriteByte('"')
	// Fields a header cannot carry unambiguously are left out (the
	// certificate itself is what counts): a control character, or a
	// trailing backslash that would escape the closing quote.
	if subject := c.Subject.String(); xfccSafe(subject) {
		b.WriteString(`;Subject="`)
		b.WriteString(xfccQuote(subject))
		b.WriteByte('"')
	}
	for _, u := range c.URIs {
		if v := u.String(); xfccSafe(v) {
			b.WriteString(";URI=")
			b.WriteString(xfccValue(v))
		}
	}
	for _, d := range c.DNSNames {
		if xfccSafe(d) {
			b.WriteString(";DNS=")
			b.WriteString(xfccValue(d))
		}
	}
	return b.String()
}

// xfccValue quotes v if it holds a character XFCC reserves.
func xfccValue(v string) string {
	if strings.ContainsAny(v, `,;="`) {
		return `"` + xfccQuote(v) + `"`
	}
	return v
}

func xfccSafe(v string) bool {
	if v == "" || strings.HasSuffix(v, `\`) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// xfccQuote escapes '"' as Envoy does (\"), for a quoted value.
func xfccQuote(v string) string { return strings.ReplaceAll(v, `"`, `\"`) }

// ForwardedCache remembers the verified forwarded certificates of one
// Verifier, so that a load balancer forwarding the same certificate on
// every request of a client (as they do) costs a hash and a map lookup
// instead of a chain verification per request. It belongs to its
// Verifier: a reload, which compiles a new Verifier (new CAs, new CRLs),
// starts an empty cache, so a revocation applies at once.
//
// Only verified results are kept, each for as long as its verdict cannot
// change at the verifier's clock: from the latest notBefore of its chain
// to the earliest of the chain's notAfter, the nextUpdate of every CRL
// consulted, and a bound of ForwardedCacheTTL. A refusal is never cached
// (its reason is recomputed, and refusals are rare behind a load balancer
// that checks certificates itself). The cache holds at most its size in
// entries; a full cache makes room by dropping an arbitrary entry.
type ForwardedCache struct {
	v       *Verifier
	max     int
	mu      sync.Mutex
	entries map[[sha256.Size]byte]forwardedEntry
}

type forwardedEntry struct {
	res         *Result
	from, until time.Time
}

// ForwardedCacheTTL bounds how long a verified forwarded certificate is
// reused without verifying it again.
const ForwardedCacheTTL = 10 * time.Minute

// DefaultForwardedCacheSize is the number of distinct forwarded
// certificate headers a listener remembers.
const DefaultForwardedCacheSize = 1024

// NewForwardedCache returns an empty cache over v holding at most size
// entries (DefaultForwardedCacheSize if size <= 0).
func NewForwardedCache(v *Verifier, size int) *ForwardedCache {
	if size <= 0 {
		size = DefaultForwardedCacheSize
	}
	return &ForwardedCache{v: v, max: size, entries: make(map[[sha256.Size]byte]forwardedEntry)}
}

// Verify is v.VerifyForwarded, through the cache.
func (c *ForwardedCache) Verify(format string, values []string) *Result {
	if len(values) != 1 || len(values[0]) > MaxForwardedHeader {
		return c.v.VerifyForwarded(format, values)
	}
	key := sha256.Sum256([]byte(values[0]))
	now := c.v.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && !now.Before(e.from) && !now.After(e.until) {
		return e.res
	}
	res := c.v.VerifyForwarded(format, values)
	if !res.Verified() {
		return res
	}
	from, until := c.v.window(res.Chain, now)
	c.mu.Lock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = forwardedEntry{res: res, from: from, until: until}
	c.mu.Unlock()
	return res
}

// window is when a chain verified at now keeps its verdict: every
// certificate within its validity, every CRL checkChain consulted not yet
// due, and at most ForwardedCacheTTL.
func (v *Verifier) window(chain []*x509.Certificate, now time.Time) (from, until time.Time) {
	until = now.Add(ForwardedCacheTTL)
	for i, c := range chain {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
		if i == len(chain)-1 {
			continue
		}
		spki := sha256.Sum256(chain[i+1].RawSubjectPublicKeyInfo)
		for _, l := range v.crls[string(c.RawIssuer)] {
			if l.signerSPKI == spki && !l.nextUpdate.IsZero() && l.nextUpdate.Before(until) {
				until = l.nextUpdate
			}
		}
	}
	return from, until
}
