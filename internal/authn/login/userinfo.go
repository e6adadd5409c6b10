package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// errUserInfoUnavailable: the UserInfo endpoint could not be reached or
// answered with a server error (the provider is down, not the login
// wrong).
var errUserInfoUnavailable = errors.New("authn/login: the identity provider's UserInfo endpoint is unavailable")

// maxUserInfo bounds a UserInfo response before it is decoded.
const maxUserInfo = 256 << 10

// userInfoTimeout bounds a call to the UserInfo endpoint.
const userInfoTimeout = 10 * time.Second

// protocolClaims are about the token, not the user: a UserInfo response
// never supplies them (OIDC Core 5.3.2 names sub the only one it must
// carry, and sub is compared, not copied).
var protocolClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"nonce": true, "azp": true, "auth_time": true, "acr": true, "amr": true, "sid": true,
	"at_hash": true, "c_hash": true, "s_hash": true, "cnf": true, "typ": true, "client_id": true, "scope": true,
}

// withUserInfo adds the claims of the provider's UserInfo endpoint to
// verified ID-token claims, when the client reads it (userinfo, default
// on) and the provider has one: a provider may, as OIDC Core 5.4 allows
// when it issues an access token, put profile and email claims there
// only. The UserInfo sub must be the ID token's (OIDC Core 5.3.2: else
// none of it may be used); the ID token's claims, signed, win over the
// same names in UserInfo; protocol claims are never taken from it.
// claims is not modified.
func (s *service) withUserInfo(ctx context.Context, c *client, ep endpoints, accessToken string, claims map[string]any) (map[string]any, error) {
	if !c.cfg.userInfo() || ep.UserInfo == "" || accessToken == "" {
		return claims, nil
	}
	info, err := s.fetchUserInfo(ctx, ep.UserInfo, accessToken)
	if err != nil {
		return nil, err
	}
	return mergeUserInfo(claims, info)
}

// mergeUserInfo returns the ID-token claims with the UserInfo claims they
// lack, after checking that both name the same subject.
func mergeUserInfo(claims, info map[string]any) (map[string]any, error) {
	sub, _ := info["sub"].(string)
	if sub == "" || sub != claimString(claims, "sub") {
		return nil, errors.New("authn/login: the UserInfo response names another subject than the ID token")
	}
	out := make(map[string]any, len(claims)+len(info))
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range info {
		if _, has := out[k]; has || protocolClaims[k] {
			continue
		}
		out[k] = v
	}
	return out, nil
}

// fetchUserInfo calls a UserInfo endpoint with the access token (RFC 6750
// header) and decodes its JSON object (numbers as json.Number, as the
// claim rules read them). Unreachable or a 5xx: errUserInfoUnavailable;
// any other status, a signed (application/jwt) or malformed answer: a
// plain error.
func (s *service) fetchUserInfo(ctx context.Context, endpoint, accessToken string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), userInfoTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("authn/login: UserInfo endpoint: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUserInfoUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: status %d", errUserInfoUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("authn/login: the UserInfo endpoint answered status %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("authn/login: the UserInfo endpoint answered %q, not application/json (signed UserInfo responses are not supported)", mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserInfo+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUserInfoUnavailable, err)
	}
	if len(body) > maxUserInfo {
		return nil, fmt.Errorf("authn/login: the UserInfo response is larger than %d bytes", maxUserInfo)
	}
	info, err := decodeClaims(body)
	if err != nil {
		return nil, fmt.Errorf("authn/login: the UserInfo response is not a JSON object: %w", err)
	}
	return info, nil
}
