package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/assertion"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/reply"
	"github.com/gatehouse/gatehouse/internal/resource"
)

// The signed identity assertion (docs/identity-assertion.md): on routes
// that ask for it, a stage after the identity headers mints a short-lived
// JWT for the caller (package assertion), addressed to the route's
// audience, and sets it on the outgoing request (SetUpstreamHeader: a
// client's copy was stripped on arrival, and no Connection header can
// remove the gateway's). The key ring that signs it and the minter that
// caches it are resources shared across reloads, so a reload neither
// changes the keys nor empties the cache; the ring's JWK Set is a public
// gateway-owned endpoint on every host.

// resourceAssertionRing and resourceAssertionMinter are the kinds of the
// key ring (by algorithm, key settings and store) and of the minter (by
// ring and claims settings).
const (
	resourceAssertionRing   = "assertion.keyring"
	resourceAssertionMinter = "assertion.minter"
)

// errAssertionUnavailable: no key can sign now (fail closed, 503).
var errAssertionUnavailable = errors.New("pipeline: the identity assertion cannot be signed")

// errAssertionExpired answers a credential that expired between its
// check (within the provider's clock skew) and the assertion: 401.
var errAssertionExpired = &reply.RefusedError{Unauthenticated: true, Challenge: `Bearer error="invalid_token"`,
	Detail: "The credential has expired."}

// sealDigest keys the ring by its seal secret without keeping the secret
// in the registry's keys (they appear in logs and gauges).
func sealDigest(secret string) [32]byte {
	if secret == "" {
		return [32]byte{}
	}
	return sha256.Sum256([]byte("gatehouse assertion seal\x00" + secret))
}

// assertionRuntime is a plan's compiled identity_assertion.
type assertionRuntime struct {
	ring   *assertion.KeyRing
	minter *assertion.Minter
	header string
	jwks   *assertionJWKS
	// admin: the JWK Set is also served on the admin listener.
	admin bool
}

// AssertionJWKS is the identity assertion's JWK Set for the admin
// listener (identity_assertion.jwks.admin); nil when not configured.
func (p *Plan) AssertionJWKS() endpoint.Handler {
	if p == nil || p.assertion == nil || !p.assertion.admin {
		return nil
	}
	return p.assertion.jwks
}

// buildAssertion compiles identity_assertion: the key ring (shared
// through the registry unless its keys are files, read at every build),
// the minter, the JWKS endpoint, and the header to strip from every
// request.
func (p *Plan) buildAssertion(cfg *config.Config, file *config.File, opts Options, reg *resource.Registry) error {
	a := cfg.IdentityAssertion
	if a == nil {
		return nil
	}
	ring, ringKey, err := p.assertionRing(cfg, opts, reg)
	if err != nil {
		var ke *keyFileError
		if errors.As(err, &ke) {
			return file.Errorf(fmt.Sprintf("identity_assertion.keys.files[%d]", ke.index), "%v", ke.err)
		}
		return file.Errorf("identity_assertion.keys", "%v", err)
	}
	header := http.CanonicalHeaderKey(a.Header)
	prefix := ""
	if header == "Authorization" {
		prefix = "Bearer "
	} else {
		// A client-sent assertion never reaches the upstream, on any
		// route (Authorization is replaced by the gateway's value on the
		// routes that send one, and removed on the others unless they
		// forward it).
		p.stripHeaders = append(p.stripHeaders, header)
	}
	mc := assertion.MinterConfig{Ring: ring, Issuer: a.Issuer, Lifetime: a.Lifetime.Std(), CacheFor: a.Cache.Std(), Prefix: prefix, Now: opts.Now}
	newMinter := func() (*assertion.Minter, func(), error) {
		m, err := assertion.NewMinter(mc)
		return m, nil, err
	}
	var minter *assertion.Minter
	if ringKey == "" {
		minter, _, err = newMinter()
	} else {
		minter, _, err = resource.Get(p.scope, resource.Key(resourceAssertionMinter, struct {
			Ring, Issuer, Prefix string
			Lifetime, Cache      time.Duration
		}{ringKey, a.Issuer, prefix, a.Lifetime.Std(), a.Cache.Std()}), newMinter)
	}
	if err != nil {
		return file.Errorf("identity_assertion", "%v", err)
	}
	p.assertion = &assertionRuntime{ring: ring, minter: minter, header: header, admin: a.JWKS.Admin}
	if !p.validating {
		p.readies = append(p.readies, ring.Ready)
	}
	cache := "no-cache"
	if s := int64(a.JWKS.MaxAge.Std().Seconds()); s > 0 {
		cache = "public, max-age=" + strconv.FormatInt(s, 10)
	}
	p.assertion.jwks = &assertionJWKS{path: a.JWKS.Path, ring: ring, cache: cache, now: opts.Now}
	if a.JWKS.Path != "" {
		p.ownEndpoints = append(p.ownEndpoints, p.assertion.jwks)
	}
	return nil
}

// assertionRing returns the plan's key ring and the registry key it is
// shared under ("" for a ring of files, built afresh at every build so
// that edited files take effect).
func (p *Plan) assertionRing(cfg *config.Config, opts Options, reg *resource.Registry) (*assertion.KeyRing, string, error) {
	a := cfg.IdentityAssertion
	k := a.Keys
	rc := assertion.RingConfig{Algorithm: a.Algorithm, RotationInterval: k.RotationInterval.Std(), PrePublish: k.PrePublish.Std(),
		Retain: a.AssertionRetention(), RefreshInterval: k.RefreshInterval.Std(),
		StaleAfter: k.PrePublish.Std() / 2, Now: opts.Now, Log: p.log}
	if k.Source == "files" {
		for i, f := range k.Files {
			key, err := assertion.LoadKeyFile(f)
			if err == nil && key.Algorithm != a.Algorithm {
				err = fmt.Errorf("a %s key, but algorithm is %s", key.Algorithm, a.Algorithm)
			}
			if err != nil {
				return nil, "", &keyFileError{index: i, err: err}
			}
			rc.Static = append(rc.Static, key)
		}
		ring, err := assertion.NewKeyRing(rc)
		return ring, "", err
	}
	if p.validating {
		// Nothing opened or stored to check a configuration: an
		// ephemeral key, so that offline tools (explain, policy test)
		// run the stage as the gateway would.
		key, err := assertion.GenerateKey(a.Algorithm)
		if err != nil {
			return nil, "", err
		}
		ring, err := assertion.NewKeyRing(assertion.RingConfig{Static: []*assertion.Key{key}})
		return ring, "", err
	}
	settings := struct {
		Algorithm, Source string
		Rotation, Pre     time.Duration
		Refresh, Retain   time.Duration
		Store             any
		Seal              [32]byte // a digest, not the secret
	}{a.Algorithm, k.Source, rc.RotationInterval, rc.PrePublish, rc.RefreshInterval, rc.Retain, nil, sealDigest(k.SealSecret)}
	if k.Source == "store" {
		settings.Store = storeSettings(cfg.APIKeys.Store)
	}
	key := resource.Key(resourceAssertionRing, settings)
	ring, _, err := resource.Get(p.scope, key, func() (*assertion.KeyRing, func(), error) {
		held := reg.Scope()
		if k.Source == "store" {
			ks, _, err := resource.Get(held, resource.Key(resourceKeyStore, storeSettings(cfg.APIKeys.Store)), func() (*keyStore, func(), error) {
				ks, err := openKeyStore(context.Background(), cfg.APIKeys.Store, opts.Log)
				if err != nil {
					return nil, nil, err
				}
				return ks, ks.close, nil
			})
			if err != nil {
				held.Close()
				return nil, nil, fmt.Errorf("the key store: %w", err)
			}
			store, ok := ks.Store.(assertion.Store)
			if !ok {
				held.Close()
				return nil, nil, fmt.Errorf("api_keys.store type %s keeps no keys", cfg.APIKeys.Store.Type)
			}
			rc.Store = store
			if rc.Sealer, err = assertion.NewSealer([]byte(k.SealSecret)); err != nil {
				held.Close()
				return nil, nil, err
			}
		} else {
			rc.Store = &assertion.MemoryStore{}
			// The keys never leave the process: a random seal secret.
			secret := make([]byte, assertion.MinSealSecret)
			_, _ = rand.Read(secret)
			rc.Sealer, _ = assertion.NewSealer(secret)
		}
		ring, err := assertion.NewKeyRing(rc)
		if err != nil {
			held.Close()
			return nil, nil, err
		}
		// The first read before the plan goes live; Start keeps reading.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ring.Refresh(ctx); err != nil {
			p.log.Warn("pipeline: cannot read the identity assertion keys yet; retrying in the background", "error", err.Error())
		}
		cancel()
		ring.Start()
		return ring, func() { ring.Close(); held.Close() }, nil
	})
	return ring, key, err
}

// keyFileError is a key file that cannot be used, reported at its key.
type keyFileError struct {
	index int
	err   error
}

func (e *keyFileError) Error() string { return fmt.Sprintf("key file %d: %v", e.index, e.err) }
func (e *keyFileError) Unwrap() error { return e.err }

// assertionStage sets the signed identity assertion on the upstream
// request, for every authenticated (not anonymous) caller.
type assertionStage struct {
	rt       *assertionRuntime
	audience string
}

func (s *assertionStage) Name() string { return "identity_assertion" }

func (s *assertionStage) Process(x *Exchange) error {
	id := x.Identity
	if id.IsAnonymous() {
		return nil
	}
	tok, err := s.rt.minter.Mint(id, s.audience)
	switch {
	case err == nil:
		x.SetUpstreamHeader(s.rt.header, tok)
		return nil
	case errors.Is(err, assertion.ErrExpiredCredential):
		// Accepted within the provider's clock skew, but expired: no
		// assertion can speak for it.
		return errAssertionExpired
	default:
		return fmt.Errorf("%w: %w", errAssertionUnavailable, err)
	}
}

// appendAssertionStage adds the route's assertion stage, if it sends one.
func (p *Plan) appendAssertionStage(stages []Stage, rc *config.Route, cfg *config.Config) []Stage {
	if p.assertion == nil || !cfg.AssertionEnabled(rc) {
		return stages
	}
	return append(stages, &assertionStage{rt: p.assertion, audience: config.AssertionAudience(rc)})
}

// assertionJWKS serves the ring's JWK Set.
type assertionJWKS struct {
	path  string
	ring  *assertion.KeyRing
	cache string
	now   func() time.Time
}

// Endpoints implements endpoint.Provider.
func (j *assertionJWKS) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{{Name: "jwks", Path: j.path, Methods: []string{http.MethodGet}, Public: true, Handler: j}}
}

// ServeEndpoint implements endpoint.Handler.
func (j *assertionJWKS) ServeEndpoint(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error {
	now := time.Now
	if j.now != nil {
		now = j.now
	}
	body, err := j.ring.JWKS(now())
	if err != nil {
		return err
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/jwk-set+json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = []string{j.cache}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

var (
	_ Stage             = (*assertionStage)(nil)
	_ endpoint.Provider = (*assertionJWKS)(nil)
)
