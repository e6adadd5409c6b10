package assertion

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/jsonenc"
)

// DefaultMaxEntries bounds a Minter's cache.
const DefaultMaxEntries = 10000

// MinterConfig configures a Minter.
type MinterConfig struct {
	// Ring supplies the signing key. Required.
	Ring *KeyRing
	// Issuer is the assertions' iss. Required.
	Issuer string
	// Lifetime is exp - iat. Required (the configuration's default is
	// 60s). An assertion never outlives the credential it speaks for.
	Lifetime time.Duration
	// CacheFor is how long a minted assertion is reused for the same
	// claims (identity and audience) and the same signing key; 0: every
	// request gets a fresh assertion. Less than Lifetime, so a reused
	// assertion always has Lifetime-CacheFor left.
	CacheFor time.Duration
	// MaxEntries bounds the cache. Default DefaultMaxEntries.
	MaxEntries int
	// Prefix is put before every token ("Bearer " for Authorization).
	Prefix string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Minter mints assertions. Safe for concurrent use.
type Minter struct {
	cfg MinterConfig
	mu  sync.RWMutex
	// cache maps the claims that do not change per mint (iss … cnf) to
	// the last assertion minted for them.
	cache map[string]cached
}

type cached struct {
	token    string
	kid      string
	mintedAt time.Time
	exp      time.Time
}

// NewMinter checks cfg and makes a Minter.
func NewMinter(cfg MinterConfig) (*Minter, error) {
	if cfg.Ring == nil || cfg.Issuer == "" || cfg.Lifetime <= 0 {
		return nil, errors.New("assertion: a minter needs a key ring, an issuer and a lifetime")
	}
	if cfg.CacheFor < 0 || cfg.CacheFor >= cfg.Lifetime {
		return nil, fmt.Errorf("assertion: the cache time (%s) must be less than the lifetime (%s)", cfg.CacheFor, cfg.Lifetime)
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Minter{cfg: cfg, cache: map[string]cached{}}, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// ErrExpiredCredential: the identity's credential has expired, so no
// assertion can speak for it.
var ErrExpiredCredential = errors.New("assertion: the credential has expired")

// Mint returns an assertion (with Prefix) for id, addressed to audience.
// id must not be anonymous. The claims are documented in
// docs/identity-assertion.md.
func (m *Minter) Mint(id *identity.Identity, audience string) (string, error) {
	if id.IsAnonymous() {
		return "", errors.New("assertion: no assertion for an anonymous caller")
	}
	now := m.cfg.Now()
	key, err := m.cfg.Ring.Signing(now)
	if err != nil {
		return "", err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	body := m.appendIdentity((*bp)[:0], id, audience)
	*bp = body

	if m.cfg.CacheFor > 0 {
		m.mu.RLock()
		c, ok := m.cache[string(body)]
		m.mu.RUnlock()
		if ok && c.kid == key.ID && !now.Before(c.mintedAt) && now.Before(c.mintedAt.Add(m.cfg.CacheFor)) && now.Before(c.exp) &&
			(id.ExpiresAt.IsZero() || !c.exp.After(id.ExpiresAt)) {
			return c.token, nil
		}
	}

	exp := now.Add(m.cfg.Lifetime)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(exp) {
		exp = id.ExpiresAt
	}
	if !exp.After(now) {
		return "", ErrExpiredCredential
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("assertion: jti: %w", err)
	}
	n := len(body)
	payload := append(body, `,"iat":`...)
	payload = strconv.AppendInt(payload, now.Unix(), 10)
	payload = append(payload, `,"nbf":`...)
	payload = strconv.AppendInt(payload, now.Unix(), 10)
	payload = append(payload, `,"exp":`...)
	payload = strconv.AppendInt(payload, exp.Unix(), 10)
	payload = append(payload, `,"jti":"`...)
	payload = base64.RawURLEncoding.AppendEncode(payload, jti[:])
	payload = append(payload, `"}`...)
	*bp = payload

	jws, err := key.signer.Sign(payload[1:]) // without the cache key's leading marker byte
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("assertion: serialize: %w", err)
	}
	token := m.cfg.Prefix + compact
	if m.cfg.CacheFor > 0 {
		m.store(string(payload[:n]), cached{token: token, kid: key.ID, mintedAt: now, exp: exp}, now)
	}
	return token, nil
}

// store remembers c under k, making room first when the cache is full:
// expired entries go, and if that is not enough, all of them (a burst of
// distinct identities costs signatures, never memory).
func (m *Minter) store(k string, c cached, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cache) >= m.cfg.MaxEntries {
		for key, e := range m.cache {
			if !now.Before(e.mintedAt.Add(m.cfg.CacheFor)) || !now.Before(e.exp) {
				delete(m.cache, key)
			}
		}
		if len(m.cache) >= m.cfg.MaxEntries {
			clear(m.cache)
		}
	}
	m.cache[k] = c
}

// Len is the number of cached assertions (tests, metrics).
func (m *Minter) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.cache)
}

// appendIdentity appends a marker byte and the claims that depend only on
// the identity, the audience and the configuration: "{" + iss … cnf. The
// marker (0) keeps the buffer from being a JSON document by accident; it
// is skipped when signing.
func (m *Minter) appendIdentity(b []byte, id *identity.Identity, audience string) []byte {
	b = append(b, 0, '{')
	b = appendField(b, "iss", m.cfg.Issuer, true)
	b = appendField(b, "sub", id.Subject, false)
	b = appendField(b, "aud", audience, false)
	b = appendField(b, "idp_iss", id.Issuer, false)
	b = appendField(b, "idp", id.Provider, false)
	// id.Credentials, not id.Evidence(): a single credential's evidence
	// would be made (allocated) on every request.
	ev := id.Credentials
	b = append(b, `,"auth_methods":[`...)
	if len(ev) == 0 {
		b = jsonenc.AppendString(b, id.Method, jsonenc.Marshal)
	}
	for i, c := range ev {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, c.Method, jsonenc.Marshal)
	}
	b = append(b, ']')
	b = appendField(b, "client_id", id.ClientID, false)
	if v, ok := id.Claims["consumer_name"].(string); ok && id.Method == identity.MethodAPIKey {
		b = appendField(b, "consumer", v, false)
	}
	if len(id.Scopes) > 0 {
		b = append(b, `,"scope":`...)
		b = appendJoined(b, id.Scopes, ' ')
	}
	b = appendList(b, "roles", id.Roles)
	b = appendList(b, "groups", id.Groups)
	b = appendCnf(b, bindingOf(id.KeyBinding, id.CertThumbprint, id.Method))
	if len(ev) > 1 {
		b = append(b, `,"credentials":[`...)
		for i, c := range ev {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"method":`...)
			b = jsonenc.AppendString(b, c.Method, jsonenc.Marshal)
			b = appendField(b, "sub", c.Subject, false)
			b = appendField(b, "idp_iss", c.Issuer, false)
			b = appendField(b, "idp", c.Provider, false)
			b = appendField(b, "client_id", c.ClientID, false)
			b = appendCnf(b, bindingOf(c.KeyBinding, c.CertThumbprint, c.Method))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

// bindingOf is a credential's confirmation: its token's cnf (x5t#S256 or
// jkt), or, for a client certificate that authenticated by itself (mtls),
// that certificate's thumbprint: either way the key the caller proved it
// holds. A confirmation the authenticator marked invalid is not passed
// on (such a credential never authenticates anyway).
func bindingOf(kb identity.KeyBinding, certThumbprint string, method identity.Method) identity.KeyBinding {
	switch {
	case kb.Kind == "x5t#S256" || kb.Kind == "jkt":
		return kb
	case method == identity.MethodMTLS && certThumbprint != "":
		return identity.KeyBinding{Kind: "x5t#S256", Value: certThumbprint}
	}
	return identity.KeyBinding{}
}

func appendCnf(b []byte, kb identity.KeyBinding) []byte {
	if kb.Kind == "" || kb.Value == "" {
		return b
	}
	b = append(b, `,"cnf":{`...)
	b = jsonenc.AppendString(b, kb.Kind, jsonenc.Marshal)
	b = append(b, ':')
	b = jsonenc.AppendString(b, kb.Value, jsonenc.Marshal)
	return append(b, '}')
}

// appendField appends "name":"value" (after a comma unless first); an
// empty value is left out.
func appendField(b []byte, name, value string, first bool) []byte {
	if value == "" {
		return b
	}
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return jsonenc.AppendString(b, value, jsonenc.Marshal)
}

// appendJoined appends vs joined by sep as one JSON string (the RFC 8693
// scope claim), escaping each element.
func appendJoined(b []byte, vs []string, sep byte) []byte {
	b = append(b, '"')
	for i, v := range vs {
		if i > 0 {
			b = append(b, sep)
		}
		start := len(b)
		b = jsonenc.AppendString(b, v, jsonenc.Marshal)
		// Drop the quotes AppendString put around the element.
		copy(b[start:], b[start+1:len(b)-1])
		b = b[:len(b)-2]
	}
	return append(b, '"')
}

func appendList(b []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, v, jsonenc.Marshal)
	}
	return append(b, ']')
}
