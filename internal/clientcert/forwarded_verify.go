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
	b.WriteString(`";Subject="`)
	b.WriteString(xfccQuote(c.Subject.String()))
	b.WriteByte('"')
	for _, u := range c.URIs {
		b.WriteString(";URI=")
		b.WriteString(xfccValue(u.String()))
	}
	for _, d := range c.DNSNames {
		b.WriteString(";DNS=")
		b.WriteString(xfccValue(d))
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

// xfccQuote escapes '"' as Envoy does (\"), for a quoted value.
func xfccQuote(v string) string { return strings.ReplaceAll(v, `"`, `\"`) }
