package clientcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Parsers for client certificates forwarded by a TLS-terminating proxy in
// front of the gateway: Envoy's X-Forwarded-Client-Cert and the
// URL-encoded PEM header that nginx ($ssl_client_escaped_cert) and AWS
// ALB (X-Amzn-Mtls-Clientcert) send. They read untrusted input (the header
// is trusted only when it comes from a trusted proxy, and the wiring must
// strip it from anyone else) and have a budget: input size, elements,
// pairs and certificates are bounded, and every failure is an error, never
// a partial result.

// Budgets of the forwarded-certificate parsers.
const (
	// MaxForwardedHeader bounds a forwarded-certificate header value: a
	// chain of a few certificates URL-encoded fits with room to spare.
	MaxForwardedHeader = 64 << 10
	// MaxXFCCElements bounds the elements (one per proxy hop) of an XFCC
	// header.
	MaxXFCCElements = 16
	// MaxXFCCPairs bounds the key=value pairs of one element.
	MaxXFCCPairs = 64
)

// ErrForwardedTooLarge: a header value over MaxForwardedHeader.
var ErrForwardedTooLarge = errors.New("clientcert: forwarded certificate header too large")

// XFCCElement is one element of an X-Forwarded-Client-Cert header: what one
// proxy hop says about the client certificate it saw. Keys Gatehouse does
// not know are ignored; a key given twice (other than By, URI and DNS,
// which Envoy repeats) is an error.
type XFCCElement struct {
	// By are the SANs (URI or DNS) of the proxy's own certificate.
	By []string
	// Hash is the hex SHA-256 of the client certificate's DER, as sent.
	Hash string
	// Cert is the client certificate (from Cert), or nil.
	Cert *x509.Certificate
	// Chain is the certificate chain (from Chain): leaf first, or nil.
	Chain []*x509.Certificate
	// Subject is the client certificate's subject DN, as sent.
	Subject string
	// URI and DNS are the client certificate's SANs, as sent.
	URI, DNS []string
}

// ParseXFCC parses an X-Forwarded-Client-Cert header value (Envoy's
// format: elements separated by commas, key=value pairs separated by
// semicolons; a value holding ',', ';' or '=' is double-quoted, with '"'
// escaped as '\"'; Cert and Chain are URL-encoded PEM). Elements are in
// header order: the last was appended by the nearest proxy.
func ParseXFCC(v string) ([]XFCCElement, error) {
	if len(v) > MaxForwardedHeader {
		return nil, ErrForwardedTooLarge
	}
	var out []XFCCElement
	p := xfccParser{s: v}
	for {
		if len(out) == MaxXFCCElements {
			return nil, fmt.Errorf("clientcert: XFCC: more than %d elements", MaxXFCCElements)
		}
		el, err := p.element()
		if err != nil {
			return nil, err
		}
		out = append(out, el)
		if p.done() {
			return out, nil
		}
		p.i++ // the comma
	}
}

type xfccParser struct {
	s string
	i int
}

func (p *xfccParser) done() bool { return p.i >= len(p.s) }

func (p *xfccParser) element() (XFCCElement, error) {
	var el XFCCElement
	seen := map[string]bool{}
	for n := 0; ; n++ {
		if n == MaxXFCCPairs {
			return el, fmt.Errorf("clientcert: XFCC: more than %d pairs in an element", MaxXFCCPairs)
		}
		key, err := p.token('=')
		if err != nil {
			return el, err
		}
		if p.done() || p.s[p.i] != '=' {
			return el, fmt.Errorf("clientcert: XFCC: pair without '=' at offset %d", p.i)
		}
		p.i++
		val, err := p.value()
		if err != nil {
			return el, err
		}
		k := strings.ToLower(key)
		switch k {
		case "by", "uri", "dns":
		default:
			if seen[k] {
				return el, fmt.Errorf("clientcert: XFCC: %s given twice in an element", key)
			}
		}
		seen[k] = true
		switch k {
		case "by":
			el.By = append(el.By, val)
		case "hash":
			el.Hash = val
		case "subject":
			el.Subject = val
		case "uri":
			el.URI = append(el.URI, val)
		case "dns":
			el.DNS = append(el.DNS, val)
		case "cert":
			certs, err := ParseEscapedPEM(val)
			if err != nil {
				return el, fmt.Errorf("clientcert: XFCC Cert: %w", err)
			}
			if len(certs) != 1 {
				return el, fmt.Errorf("clientcert: XFCC Cert holds %d certificates, want 1", len(certs))
			}
			el.Cert = certs[0]
		case "chain":
			certs, err := ParseEscapedPEM(val)
			if err != nil {
				return el, fmt.Errorf("clientcert: XFCC Chain: %w", err)
			}
			el.Chain = certs
		}
		if p.done() || p.s[p.i] == ',' {
			return el, nil
		}
		if p.s[p.i] != ';' {
			return el, fmt.Errorf("clientcert: XFCC: unexpected %q at offset %d", p.s[p.i], p.i)
		}
		p.i++
	}
}

// token reads an unquoted key up to stop, ';' or ','. It must be a
// non-empty token of letters, digits and '-'/'_'.
func (p *xfccParser) token(stop byte) (string, error) {
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == stop || c == ';' || c == ',' {
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("clientcert: XFCC: unexpected %q in a key at offset %d", c, p.i)
		}
	}
	if p.i == start {
		return "", fmt.Errorf("clientcert: XFCC: empty key at offset %d", start)
	}
	return p.s[start:p.i], nil
}

// value reads a quoted or unquoted value.
func (p *xfccParser) value() (string, error) {
	if p.done() || p.s[p.i] != '"' {
		start := p.i
		for ; p.i < len(p.s); p.i++ {
			c := p.s[p.i]
			if c == ';' || c == ',' {
				break
			}
			if c == '"' || c == '=' || c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("clientcert: XFCC: unexpected %q in an unquoted value at offset %d", c, p.i)
			}
		}
		return p.s[start:p.i], nil
	}
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == '"':
			b.WriteByte('"')
			p.i += 2
		case c == '"':
			p.i++
			if !p.done() && p.s[p.i] != ';' && p.s[p.i] != ',' {
				return "", fmt.Errorf("clientcert: XFCC: unexpected %q after a quoted value at offset %d", p.s[p.i], p.i)
			}
			return b.String(), nil
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("clientcert: XFCC: control character in a value at offset %d", p.i)
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("clientcert: XFCC: unterminated quoted value")
}

// ParseEscapedPEM parses a URL-encoded PEM certificate chain, leaf first,
// as nginx's $ssl_client_escaped_cert, AWS ALB's X-Amzn-Mtls-Clientcert and
// XFCC's Cert and Chain carry it. Percent-escapes are decoded and '+' is
// kept (base64 uses it; ALB leaves it unescaped). Nothing but CERTIFICATE
// blocks and whitespace may appear; at most MaxChain certificates.
func ParseEscapedPEM(v string) ([]*x509.Certificate, error) {
	if len(v) > MaxForwardedHeader {
		return nil, ErrForwardedTooLarge
	}
	raw, err := url.PathUnescape(v)
	if err != nil {
		return nil, fmt.Errorf("clientcert: forwarded certificate: %w", err)
	}
	data := []byte(raw)
	var out []*x509.Certificate
	for {
		rest := trimSpace(data)
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("clientcert: forwarded certificate: not PEM (or data before a PEM block)")
		}
		b, next := pem.Decode(rest)
		// pem.Decode skips a malformed block to find a later one: the
		// block it returns must be the one this data starts with.
		if b == nil || bytes.Count(rest[:len(rest)-len(next)], []byte("-----BEGIN ")) != 1 {
			return nil, errors.New("clientcert: forwarded certificate: malformed PEM")
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
			return nil, fmt.Errorf("clientcert: forwarded certificate: unexpected PEM block %q", b.Type)
		}
		if len(out) == MaxChain {
			return nil, fmt.Errorf("clientcert: forwarded certificate: more than %d certificates", MaxChain)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("clientcert: forwarded certificate: %w", err)
		}
		out = append(out, c)
		data = next
	}
	if len(out) == 0 {
		return nil, errors.New("clientcert: forwarded certificate: empty")
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
