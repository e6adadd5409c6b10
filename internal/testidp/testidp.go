// Package testidp runs a real OpenID Provider (zitadel/oidc v3's op package)
// on 127.0.0.1 for tests: discovery, JWKS, a token endpoint that issues JWT
// access tokens for the client_credentials grant, token introspection, and
// browser login (authorization code flow with PKCE, an HTML login page,
// refresh tokens, end_session, sid in ID tokens, back-channel logout
// tokens: see login.go for the web client and the test users alice /
// alice-password and bob / bob-password).
// Tests control its keys (rotation, retirement), its availability (Stop,
// Restart on the same address) and the Cache-Control of its JWKS, and can
// mint tokens with arbitrary claims and headers.
//
// It is a normal package so that tests of several packages can import it;
// never import it from production code.
package testidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Defaults of a Provider.
const (
	DefaultAudience = "gatehouse-test-api"
	DefaultClientID = "gatehouse-test-client"
	DefaultSubject  = "testidp-user"
	// OpaqueClientID is a second client (same secret as ClientID) whose
	// client_credentials tokens are opaque (zitadel's encrypted bearer
	// tokens), not JWTs: see OpaqueToken.
	OpaqueClientID      = "gatehouse-test-opaque"
	defaultTokenTTL     = 5 * time.Minute
	keysPath            = "/keys"
	tokenPath           = "/oauth/token"
	introspectPath      = "/oauth/introspect"
	revokePath          = "/revoke"
	discoveryPath       = "/.well-known/openid-configuration"
	tokenRequestTimeout = 10 * time.Second
)

// Provider is a running OpenID Provider. Its exported fields are fixed for
// its lifetime, across Stop and Restart.
type Provider struct {
	// Issuer is "http://127.0.0.1:<port>" (https WithTLS), exactly as in discovery and in
	// the iss claim of every token.
	Issuer string
	// Audience is the aud claim of every access token the token endpoint
	// issues (and Mint's default aud).
	Audience string
	// ClientID and ClientSecret authenticate the one registered client
	// (client_secret_basic). It may use client_credentials and introspect.
	ClientID     string
	ClientSecret string
	// TokenURL, JWKSURI and IntrospectionURL are the endpoints, as
	// published in discovery.
	TokenURL         string
	JWKSURI          string
	IntrospectionURL string
	RevocationURL    string
	// AuthorizationURL and EndSessionURL serve the browser login of
	// WebClientID (login.go).
	AuthorizationURL string
	EndSessionURL    string

	alg jose.SignatureAlgorithm

	mu           sync.Mutex
	keys         []*signingKey // published keys, oldest first
	current      *signingKey
	cacheControl string
	tokens       map[string]issuedToken // by jti, for introspection
	clientKey    *jose.JSONWebKey       // private_key_jwt key of ClientID
	login        *loginState            // the authorization code flow (login.go)

	introspections atomic.Int64
	authMethods    map[string]int // client authentication seen at introspection
	failStatus     int            // introspection answers this status (0: none)
	introDelay     time.Duration  // introspection waits this long first
	signedMode     SignedMode

	jwksHits atomic.Int64
	handler  http.Handler
	addr     string
	tls      *tls.Config // nil: plain http

	srvMu   sync.Mutex
	srv     *http.Server
	serving chan struct{} // closed when the current Serve returns
}

// Option configures Start.
type Option func(*options)

type options struct {
	alg      jose.SignatureAlgorithm
	audience string
	tls      *tls.Config
}

// WithAlgorithm selects the signing algorithm: jose.RS256 (default, 2048-bit
// keys), jose.ES256 or jose.EdDSA (Ed25519).
func WithAlgorithm(alg jose.SignatureAlgorithm) Option {
	return func(o *options) { o.alg = alg }
}

// WithTLS serves the provider over HTTPS with config (its certificate,
// and ClientAuth for a provider that requires client certificates): the
// issuer and every endpoint are then https://127.0.0.1:<port>. Its
// certificate must be valid for 127.0.0.1. ClientCredentialsToken does
// not know the certificate's CA: mint tokens with Mint.
func WithTLS(config *tls.Config) Option {
	return func(o *options) { o.tls = config.Clone() }
}

// WithAudience sets Provider.Audience (default DefaultAudience).
func WithAudience(aud string) Option {
	return func(o *options) { o.audience = aud }
}

// Start runs a provider on 127.0.0.1 over plain http (https WithTLS). It is stopped by
// tb.Cleanup. Start never touches process-global state (no slog.SetDefault,
// no package-level client registry), so parallel tests can each run one.
func Start(tb testing.TB, opts ...Option) *Provider {
	tb.Helper()
	o := options{alg: jose.RS256, audience: DefaultAudience}
	for _, opt := range opts {
		opt(&o)
	}
	key, err := newSigningKey(o.alg)
	if err != nil {
		tb.Fatalf("testidp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testidp: listen: %v", err)
	}
	scheme := "http://"
	if o.tls != nil {
		scheme = "https://"
	}
	p := &Provider{
		Issuer:       scheme + ln.Addr().String(),
		Audience:     o.audience,
		ClientID:     DefaultClientID,
		ClientSecret: randomID(16),
		alg:          o.alg,
		keys:         []*signingKey{key},
		current:      key,
		tokens:       make(map[string]issuedToken),
		login:        newLoginState(),
		authMethods:  make(map[string]int),
		addr:         ln.Addr().String(),
		tls:          o.tls,
	}
	p.TokenURL = p.Issuer + tokenPath
	p.JWKSURI = p.Issuer + keysPath
	p.IntrospectionURL = p.Issuer + introspectPath
	p.RevocationURL = p.Issuer + revokePath
	p.AuthorizationURL = p.Issuer + authorizePath
	p.EndSessionURL = p.Issuer + endSessionPath

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		tb.Fatalf("testidp: %v", err)
	}
	provider, err := op.NewProvider(
		&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, GrantTypeRefreshToken: true, BackChannelLogoutSupported: true},
		&storage{p: p},
		op.StaticIssuer(p.Issuer),
		op.WithAllowInsecure(), // http issuer on loopback
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(string(o.alg))),
	)
	if err != nil {
		_ = ln.Close()
		tb.Fatalf("testidp: creating provider: %v", err)
	}
	callback := func(_ context.Context, id string) string {
		return p.Issuer + authorizePath + "/callback?id=" + url.QueryEscape(id)
	}
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == LoginPath {
			p.serveLogin(w, r, callback)
			return
		}
		if r.URL.Path == keysPath {
			p.jwksHits.Add(1)
			p.mu.Lock()
			cc := p.cacheControl
			p.mu.Unlock()
			if cc != "" {
				w.Header().Set("Cache-Control", cc)
			}
		}
		if r.URL.Path == introspectPath {
			if !p.introspect(w, r) {
				return
			}
			if strings.Contains(r.Header.Get("Accept"), "application/token-introspection+jwt") {
				p.signedIntrospection(w, r, provider)
				return
			}
		}
		provider.ServeHTTP(w, r)
	})
	p.serve(ln)
	tb.Cleanup(p.Stop)
	return p
}

// serve starts an http.Server on ln.
func (p *Provider) serve(ln net.Listener) {
	if p.tls != nil {
		ln = tls.NewListener(ln, p.tls)
	}
	srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	p.srvMu.Lock()
	p.srv, p.serving = srv, done
	p.srvMu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// Stop takes the provider down: its listener and all connections are
// closed, so new connections to its address are refused. Stop is
// idempotent; Restart brings it back.
func (p *Provider) Stop() {
	p.srvMu.Lock()
	srv, done := p.srv, p.serving
	p.srv, p.serving = nil, nil
	p.srvMu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Restart brings a stopped provider back on the same address, with the
// same keys and client. It is a no-op on a running provider.
func (p *Provider) Restart(tb testing.TB) {
	tb.Helper()
	p.srvMu.Lock()
	running := p.srv != nil
	p.srvMu.Unlock()
	if running {
		return
	}
	var (
		ln  net.Listener
		err error
	)
	// The port is free since Stop, unless another process grabbed it in
	// between; retry briefly rather than fail on a transient race.
	deadline := time.Now().Add(3 * time.Second)
	for {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("testidp: restart on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// introspect counts an introspection request, records its client
// authentication, applies injected failures and delays, and turns
// client_secret_post into the Basic form zitadel's introspection endpoint
// reads (it verifies the secret itself, through the storage). It reports
// whether the provider should answer.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) bool {
	p.introspections.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	method := "none"
	switch {
	case r.PostForm.Get("client_assertion") != "":
		method = "private_key_jwt"
	case r.PostForm.Get("client_secret") != "":
		method = "client_secret_post"
		r.SetBasicAuth(url.QueryEscape(r.PostForm.Get("client_id")), url.QueryEscape(r.PostForm.Get("client_secret")))
		for _, f := range []url.Values{r.Form, r.PostForm} {
			f.Del("client_secret")
			f.Del("client_id")
		}
	case r.Header.Get("Authorization") != "":
		method = "client_secret_basic"
	}
	p.mu.Lock()
	p.authMethods[method]++
	status, delay := p.failStatus, p.introDelay
	p.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if status != 0 {
		http.Error(w, "injected failure", status)
		return false
	}
	return true
}

// SignedMode is how the provider answers a request for a signed
// introspection answer (RFC 9701).
type SignedMode int

// Signed answer modes.
const (
	// SignedHonest signs the answer with the current key (the default).
	SignedHonest SignedMode = iota
	// SignedForged signs it with a key the provider does not publish.
	SignedForged
	// SignedPlain ignores the Accept header and answers plain JSON.
	SignedPlain
)

// SetSignedMode sets how signed introspection answers are made.
func (p *Provider) SetSignedMode(m SignedMode) {
	p.mu.Lock()
	p.signedMode = m
	p.mu.Unlock()
}

// signedIntrospection answers an introspection request that asks for
// application/token-introspection+jwt (RFC 9701): zitadel's JSON answer,
// wrapped in a JWT {iss, aud: ClientID, iat, token_introspection} with typ
// token-introspection+jwt, signed with the current key.
func (p *Provider) signedIntrospection(w http.ResponseWriter, r *http.Request, next http.Handler) {
	p.mu.Lock()
	mode := p.signedMode
	p.mu.Unlock()
	if mode == SignedPlain {
		next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var answer map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		http.Error(w, "testidp: bad answer", http.StatusInternalServerError)
		return
	}
	kid, priv, alg := p.SigningKey()
	if mode == SignedForged {
		forged, err := newSigningKey(alg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		priv = forged.priv
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("token-introspection+jwt"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	token, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": p.Issuer, "aud": p.ClientID, "iat": time.Now().Unix(), "token_introspection": answer,
	}).Serialize()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/token-introspection+jwt")
	_, _ = io.WriteString(w, token)
}

// Introspections reports how many introspection requests arrived.
func (p *Provider) Introspections() int64 { return p.introspections.Load() }

// IntrospectionAuthMethods reports how many introspection requests
// arrived with each client authentication (client_secret_basic,
// client_secret_post, private_key_jwt, none), whether or not it verified.
func (p *Provider) IntrospectionAuthMethods() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.authMethods))
	for k, v := range p.authMethods {
		out[k] = v
	}
	return out
}

// FailIntrospection makes the introspection endpoint answer status (a 5xx,
// say) until called with 0.
func (p *Provider) FailIntrospection(status int) {
	p.mu.Lock()
	p.failStatus = status
	p.mu.Unlock()
}

// DelayIntrospection makes every introspection request wait d first.
func (p *Provider) DelayIntrospection(d time.Duration) {
	p.mu.Lock()
	p.introDelay = d
	p.mu.Unlock()
}

// SetClientKey registers the public key of ClientID's private_key_jwt
// client assertions (RFC 7523): their iss and sub must be ClientID, their
// aud the Issuer, and kid (if the key has one) must match.
func (p *Provider) SetClientKey(kid string, pub crypto.PublicKey) {
	p.mu.Lock()
	p.clientKey = &jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}
	p.mu.Unlock()
}

// OpaqueToken performs a client_credentials grant as OpaqueClientID and
// returns its opaque access token (not a JWT). Introspection of it
// answers sub=client_id=OpaqueClientID, aud=[Audience], the scopes,
// iss, iat, nbf, exp (5 minutes), token_type Bearer.
func (p *Provider) OpaqueToken(tb testing.TB, scopes ...string) string {
	tb.Helper()
	return p.grant(tb, OpaqueClientID, scopes)
}

// Revoke revokes an access token at the revocation endpoint (RFC 7009),
// as ClientID with client_secret_basic: introspection answers
// active=false for it from then on.
func (p *Provider) Revoke(tb testing.TB, token string) {
	tb.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequest(http.MethodPost, p.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatalf("testidp: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	client := &http.Client{Timeout: tokenRequestTimeout, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		tb.Fatalf("testidp: revocation: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("testidp: revocation answered %d", res.StatusCode)
	}
}

// JWKSHits reports how many times the JWKS endpoint was requested.
func (p *Provider) JWKSHits() int64 { return p.jwksHits.Load() }

// SetJWKSCacheControl sets the Cache-Control header of JWKS responses
// ("" for none, the default).
func (p *Provider) SetJWKSCacheControl(v string) {
	p.mu.Lock()
	p.cacheControl = v
	p.mu.Unlock()
}

// SigningKey returns the current signing key, its kid and its algorithm.
func (p *Provider) SigningKey() (kid string, key crypto.Signer, alg jose.SignatureAlgorithm) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current.id, p.current.priv, p.current.alg
}

// KeyIDs lists the kids published in the JWKS, oldest first.
func (p *Provider) KeyIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, len(p.keys))
	for i, k := range p.keys {
		ids[i] = k.id
	}
	return ids
}

// RotateKey adds a new key (new kid, same algorithm) and signs with it from
// now on. The old keys stay published until RetireOldKeys.
func (p *Provider) RotateKey(tb testing.TB) {
	tb.Helper()
	key, err := newSigningKey(p.alg)
	if err != nil {
		tb.Fatalf("testidp: %v", err)
	}
	p.mu.Lock()
	p.keys = append(p.keys, key)
	p.current = key
	p.mu.Unlock()
}

// RetireOldKeys publishes only the current key.
func (p *Provider) RetireOldKeys() {
	p.mu.Lock()
	p.keys = []*signingKey{p.current}
	p.mu.Unlock()
}

// ClientCredentialsToken performs a real OAuth 2.0 client_credentials
// grant against the token endpoint and returns the JWT access token. Its
// claims: iss=Issuer, sub=ClientID, aud=[Audience], client_id=ClientID,
// iat, nbf, exp (5 minutes), jti, and scope (space-separated, when scopes
// were requested). Its header typ is "JWT" (zitadel's choice, not "at+jwt").
func (p *Provider) ClientCredentialsToken(tb testing.TB, scopes ...string) string {
	tb.Helper()
	return p.grant(tb, p.ClientID, scopes)
}

func (p *Provider) grant(tb testing.TB, clientID string, scopes []string) string {
	tb.Helper()
	cfg := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: p.ClientSecret,
		TokenURL:     p.TokenURL,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	client := &http.Client{Timeout: tokenRequestTimeout, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), tokenRequestTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	tok, err := cfg.Token(ctx)
	if err != nil {
		tb.Fatalf("testidp: client_credentials grant: %v", err)
	}
	return tok.AccessToken
}

// Mint returns a JWT signed with the current key and kid, header typ
// "at+jwt". Default claims: iss=Issuer, aud=Audience, sub=DefaultSubject,
// iat=now, exp=now+5m, and a random jti. claims override them; a nil value
// removes a claim.
func (p *Provider) Mint(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return p.MintWithHeaders(tb, claims, nil)
}

// MintWithHeaders is Mint with extra protected headers (e.g. "crit",
// "jku", "typ"). A header overrides the default of the same name ("kid",
// "typ", even "alg"); a nil value removes "kid" or "typ".
func (p *Provider) MintWithHeaders(tb testing.TB, claims map[string]any, headers map[string]any) string {
	tb.Helper()
	kid, priv, alg := p.SigningKey()
	now := time.Now()
	all := map[string]any{
		"iss": p.Issuer,
		"aud": p.Audience,
		"sub": DefaultSubject,
		"iat": now.Unix(),
		"exp": now.Add(defaultTokenTTL).Unix(),
		"jti": randomID(12),
	}
	for k, v := range claims {
		if v == nil {
			delete(all, k)
			continue
		}
		all[k] = v
	}
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	for k, v := range headers {
		switch {
		case k == "kid" && v == nil:
			kid = ""
		case k == "kid":
			if s, ok := v.(string); ok {
				kid = s
			} else {
				opts.WithHeader(jose.HeaderKey(k), v)
			}
		case v == nil:
			delete(opts.ExtraHeaders, jose.HeaderKey(k))
		default:
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: alg,
		Key:       jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(alg)},
	}, opts)
	if err != nil {
		tb.Fatalf("testidp: signer: %v", err)
	}
	token, err := jwt.Signed(signer).Claims(all).Serialize()
	if err != nil {
		tb.Fatalf("testidp: signing: %v", err)
	}
	return token
}

// signingKey is one key pair; it serves op.SigningKey (private) and, via
// publicKey, op.Key (published).
type signingKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is the published half of a signingKey.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.priv.Public() }

func newSigningKey(alg jose.SignatureAlgorithm) (*signingKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, errors.New("unsupported algorithm " + string(alg) + " (use RS256, ES256 or EdDSA)")
	}
	if err != nil {
		return nil, err
	}
	return &signingKey{id: strings.ToLower(string(alg)) + "-" + randomID(6), alg: alg, priv: priv}, nil
}

// randomID returns n random bytes, hex-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}
