package introspect

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/config"
)

// maxResponseBytes bounds an introspection or discovery response.
const maxResponseBytes = 64 << 10

// assertionLifetime is the exp - iat of a private_key_jwt assertion.
const assertionLifetime = time.Minute

// clientAuth authenticates the gateway at the introspection endpoint.
type clientAuth struct {
	method   string // client_secret_basic, client_secret_post, private_key_jwt
	clientID string
	secret   string
	signer   jose.Signer // private_key_jwt
	audience string      // private_key_jwt: aud of assertions
}

// apply adds the client's credentials to the form or the request.
func (a *clientAuth) apply(req *http.Request, form url.Values, now time.Time) error {
	switch a.method {
	case "client_secret_post":
		form.Set("client_id", a.clientID)
		form.Set("client_secret", a.secret)
	case "private_key_jwt":
		jti := make([]byte, 16)
		_, _ = rand.Read(jti)
		claims := josejwt.Claims{
			Issuer:   a.clientID,
			Subject:  a.clientID,
			Audience: josejwt.Audience{a.audience},
			IssuedAt: josejwt.NewNumericDate(now),
			Expiry:   josejwt.NewNumericDate(now.Add(assertionLifetime)),
			ID:       hex.EncodeToString(jti),
		}
		assertion, err := josejwt.Signed(a.signer).Claims(claims).Serialize()
		if err != nil {
			return fmt.Errorf("authn/introspect: signing the client assertion: %w", err)
		}
		form.Set("client_id", a.clientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	default: // client_secret_basic (RFC 6749 section 2.3.1: form-encoded first)
		req.SetBasicAuth(url.QueryEscape(a.clientID), url.QueryEscape(a.secret))
	}
	return nil
}

// newClientAuth compiles the provider's client authentication, reading the
// private key of private_key_jwt.
func newClientAuth(pc config.IdentityProvider) (*clientAuth, error) {
	in := pc.Introspection
	a := &clientAuth{method: in.ClientAuth, clientID: in.ClientID, secret: in.ClientSecret}
	if a.method == "" {
		a.method = "client_secret_basic"
	}
	if a.method != "private_key_jwt" {
		return a, nil
	}
	a.audience = in.AssertionAudience
	if a.audience == "" {
		a.audience = pc.Issuer
	}
	key, kid, err := loadPrivateKey(in.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	if in.PrivateKeyID != "" {
		kid = in.PrivateKeyID
	}
	alg, err := signingAlgorithm(key)
	if err != nil {
		return nil, err
	}
	a.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("authn/introspect: private key: %w", err)
	}
	return a, nil
}

// loadPrivateKey reads a PEM (PKCS#8, PKCS#1 or SEC 1) or JWK private key.
func loadPrivateKey(path string) (crypto.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("authn/introspect: private key: %w", err)
	}
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(trimmed); err != nil {
			return nil, "", fmt.Errorf("authn/introspect: private key %s: %w", path, err)
		}
		s, ok := jwk.Key.(crypto.Signer)
		if !ok || jwk.IsPublic() {
			return nil, "", fmt.Errorf("authn/introspect: %s is not a private signing key", path)
		}
		return s, jwk.KeyID, nil
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, "", fmt.Errorf("authn/introspect: %s holds neither a PEM block nor a JWK", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("authn/introspect: private key %s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("authn/introspect: %s: unsupported key type %T", path, key)
	}
	return s, "", nil
}

// signingAlgorithm picks the JWS algorithm for a key: RS256, ES256/384/512
// by curve, EdDSA.
func signingAlgorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("authn/introspect: RSA keys need at least 2048 bits")
		}
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("authn/introspect: unsupported private key type %T", key)
}

// newHTTPClient is the provider's own client: bounded dials and headers,
// no redirects (a redirect would carry the token elsewhere).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// endpoint resolves the introspection endpoint: the configured one, or
// introspection_endpoint of the provider's discovery document, fetched
// once it succeeds (failures are retried by the next call).
type endpoint struct {
	issuer    string
	allowHTTP bool

	mu  sync.Mutex
	url string
}

func (e *endpoint) get() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// discover fetches OpenID Connect discovery, then RFC 8414 metadata.
func (e *endpoint) discover(ctx context.Context, client *http.Client, userAgent string) (string, error) {
	if u := e.get(); u != "" {
		return u, nil
	}
	var lastErr error
	for _, doc := range discoveryURLs(e.issuer) {
		u, err := e.fetchDiscovery(ctx, client, doc, userAgent)
		if err == nil {
			e.mu.Lock()
			e.url = u
			e.mu.Unlock()
			return u, nil
		}
		lastErr = err
		if !errors.Is(err, errNotFound) {
			break
		}
	}
	return "", lastErr
}

var errNotFound = errors.New("not found")

// discoveryURLs: OpenID Connect discovery (issuer + /.well-known/…), then
// RFC 8414 section 3 (the well-known segment inserted before the
// issuer's path).
func discoveryURLs(issuer string) []string {
	out := []string{strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"}
	if u, err := url.Parse(issuer); err == nil {
		p := strings.TrimSuffix(u.Path, "/")
		u.Path = "/.well-known/oauth-authorization-server" + p
		out = append(out, u.String())
	}
	return out
}

func (e *endpoint) fetchDiscovery(ctx context.Context, client *http.Client, docURL, userAgent string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("authn/introspect: discovery: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("authn/introspect: discovery: %w", err)
	case res.StatusCode == http.StatusNotFound:
		return "", fmt.Errorf("authn/introspect: discovery: %s: %w", docURL, errNotFound)
	case res.StatusCode != http.StatusOK:
		return "", fmt.Errorf("authn/introspect: discovery: %s answered %d", docURL, res.StatusCode)
	case len(body) > maxResponseBytes:
		return "", errors.New("authn/introspect: discovery document too large")
	}
	var doc struct {
		Issuer   string `json:"issuer"`
		Endpoint string `json:"introspection_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("authn/introspect: discovery: %w", err)
	}
	if doc.Issuer != e.issuer {
		return "", fmt.Errorf("authn/introspect: discovery: issuer mismatch: document says %q, configured %q", doc.Issuer, e.issuer)
	}
	if doc.Endpoint == "" {
		return "", errors.New("authn/introspect: discovery: no introspection_endpoint")
	}
	u, err := url.Parse(doc.Endpoint)
	if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && e.allowHTTP) {
		return "", fmt.Errorf("authn/introspect: discovery: introspection_endpoint %q is not an https URL", doc.Endpoint)
	}
	return doc.Endpoint, nil
}
