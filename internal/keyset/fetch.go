package keyset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fetchResult is one successful JWKS download.
type fetchResult struct {
	keys    []jose.JSONWebKey
	skipped int // keys in the document that were not usable for verification
	// maxAge is the Cache-Control freshness lifetime; hasMaxAge is false
	// when the response had none we can use.
	maxAge    time.Duration
	hasMaxAge bool
}

// discover fetches the discovery document and returns its jwks_uri after
// checking that it names our issuer exactly.
func (s *Set) discover(ctx context.Context) (string, error) {
	docURL := s.discoveryURL()
	body, _, err := s.get(ctx, docURL)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: decoding %s: %w", redactURL(docURL), err)
	}
	if doc.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("discovery: issuer mismatch: document says %q, configured %q", doc.Issuer, s.cfg.Issuer)
	}
	if doc.JWKSURI == "" {
		return "", errors.New("discovery: document has no jwks_uri")
	}
	if err := checkHTTPURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	if strings.HasPrefix(s.cfg.Issuer, "https:") && !strings.HasPrefix(doc.JWKSURI, "https:") {
		return "", fmt.Errorf("discovery: https issuer with non-https jwks_uri %q", redactURL(doc.JWKSURI))
	}
	return doc.JWKSURI, nil
}

// fetchJWKS downloads and filters one JWKS document.
func (s *Set) fetchJWKS(ctx context.Context, jwksURI string) (fetchResult, error) {
	body, header, err := s.get(ctx, jwksURI)
	if err != nil {
		return fetchResult{}, fmt.Errorf("jwks: %w", err)
	}
	res, err := parseJWKS(body, s.cfg.MaxKeys)
	if err != nil {
		return fetchResult{}, fmt.Errorf("jwks %s: %w", redactURL(jwksURI), err)
	}
	res.maxAge, res.hasMaxAge = cacheMaxAge(header.Values("Cache-Control"))
	return res, nil
}

// parseJWKS keeps the public signature keys of a JWKS document. Keys that
// cannot be parsed (an unsupported key type, say) are skipped one by one, so
// one exotic key does not make a provider's whole set unusable; a document
// with no usable key at all is an error.
func parseJWKS(body []byte, maxKeys int) (fetchResult, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fetchResult{}, fmt.Errorf("decoding: %w", err)
	}
	if len(doc.Keys) > maxKeys {
		return fetchResult{}, fmt.Errorf("%d keys exceed the limit of %d", len(doc.Keys), maxKeys)
	}
	var res fetchResult
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			res.skipped++
			continue
		}
		if !usableFetchedKey(k) {
			res.skipped++
			continue
		}
		res.keys = append(res.keys, k)
	}
	if len(res.keys) == 0 {
		return fetchResult{}, fmt.Errorf("no usable signature keys (%d in document)", len(doc.Keys))
	}
	return res, nil
}

// usableFetchedKey accepts valid public asymmetric keys meant for
// signatures. A fetched set never contributes symmetric or private keys:
// an HMAC secret published over HTTP would let anyone mint tokens.
func usableFetchedKey(k jose.JSONWebKey) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if _, symmetric := k.Key.([]byte); symmetric {
		return false
	}
	return k.IsPublic() && k.Valid() && strongEnough(k)
}

// get performs one bounded GET and returns the body of a 200 response.
func (s *Set) get(ctx context.Context, rawURL string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", redactURL(rawURL), err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			// url.Error repeats the unredacted URL; keep only the cause.
			err = uerr.Err
		}
		return nil, nil, fmt.Errorf("GET %s: %w", redactURL(rawURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("GET %s: status %d", redactURL(rawURL), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading body: %w", redactURL(rawURL), err)
	}
	if len(body) > MaxBodyBytes {
		return nil, nil, fmt.Errorf("GET %s: body exceeds %d bytes", redactURL(rawURL), MaxBodyBytes)
	}
	return body, resp.Header, nil
}

// cacheMaxAge reads the freshness lifetime from Cache-Control headers.
// "no-cache" and "no-store" count as max-age=0 (refresh as often as the
// lower bound allows); a missing or malformed max-age is not usable.
func cacheMaxAge(values []string) (time.Duration, bool) {
	var (
		maxAge  time.Duration
		found   bool
		noCache bool
	)
	for _, v := range values {
		for _, directive := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				noCache = true
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(arg), `"`), 10, 64)
				if err != nil || secs < 0 {
					continue // malformed: not usable
				}
				if secs > int64(365*24*time.Hour/time.Second) {
					secs = int64(365 * 24 * time.Hour / time.Second)
				}
				if !found || time.Duration(secs)*time.Second < maxAge {
					maxAge = time.Duration(secs) * time.Second
				}
				found = true
			}
		}
	}
	switch {
	case noCache:
		return 0, true
	case found:
		return maxAge, true
	default:
		return 0, false
	}
}

// discoveryURL is the discovery document's URL.
func (s *Set) discoveryURL() string {
	if s.cfg.DiscoveryURL != "" {
		return s.cfg.DiscoveryURL
	}
	return strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
}
