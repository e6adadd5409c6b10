package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn/jwt"
)

// jwtResponseType is the media type (and JWS typ) of a signed
// introspection answer, RFC 9701.
const jwtResponseType = "application/token-introspection+jwt"

// signedAnswers verifies RFC 9701 answers with the provider's keys.
type signedAnswers struct {
	keys     jwt.KeySource
	algs     []jose.SignatureAlgorithm
	issuer   string
	clientID string
	skew     time.Duration
}

// parseSigned checks a signed answer and returns its token_introspection
// member as parseResponse would (nil for active=false). The checks:
// Content-Type application/token-introspection+jwt, a JWS of the
// provider's algorithms with typ token-introspection+jwt, a signature by
// one of the provider's keys, iss the provider's issuer, aud the
// gateway's client id, iat present and not in the future.
func (s *signedAnswers) parseSigned(ctx context.Context, contentType string, body []byte, now time.Time) (map[string]any, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.EqualFold(mt, jwtResponseType) {
		// A plain JSON answer where a signed one was asked for is a
		// downgrade: refused.
		return nil, fmt.Errorf("authn/introspect: the answer is %q, not a signed %s", contentType, jwtResponseType)
	}
	jws, err := jose.ParseSignedCompact(string(bytes.TrimSpace(body)), s.algs)
	if err != nil {
		return nil, fmt.Errorf("authn/introspect: signed answer: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("authn/introspect: signed answer: not one signature")
	}
	h := jws.Signatures[0].Header
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), "token-introspection+jwt") {
		return nil, fmt.Errorf("authn/introspect: signed answer: typ %q", typ)
	}
	if h.JSONWebKey != nil || h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5u"] != nil || h.ExtraHeaders["crit"] != nil {
		return nil, errors.New("authn/introspect: signed answer: key or crit header")
	}
	keys, err := s.keys.Lookup(ctx, h.KeyID)
	if err != nil {
		return nil, fmt.Errorf("authn/introspect: signed answer: keys: %w", err)
	}
	var payload []byte
	for i := range keys {
		if h.KeyID != "" && keys[i].KeyID != "" && keys[i].KeyID != h.KeyID {
			continue
		}
		if p, err := jws.Verify(keys[i].Key); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, errors.New("authn/introspect: signed answer: the signature does not verify with the provider's keys")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c struct {
		Iss    string          `json:"iss"`
		Aud    json.RawMessage `json:"aud"`
		Iat    json.Number     `json:"iat"`
		Answer json.RawMessage `json:"token_introspection"`
	}
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("authn/introspect: signed answer: %w", err)
	}
	if c.Iss != s.issuer {
		return nil, errors.New("authn/introspect: signed answer: iss is not the provider's issuer")
	}
	if !audienceHas(c.Aud, s.clientID) {
		return nil, errors.New("authn/introspect: signed answer: aud is not the gateway's client id")
	}
	iat, err := c.Iat.Int64()
	if err != nil || time.Unix(iat, 0).After(now.Add(s.skew)) {
		return nil, errors.New("authn/introspect: signed answer: iat missing or in the future")
	}
	if len(c.Answer) == 0 {
		return nil, errors.New("authn/introspect: signed answer: no token_introspection member")
	}
	return parseResponse(c.Answer)
}

// audienceHas: aud is the string want, or an array holding it.
func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, want)
}
