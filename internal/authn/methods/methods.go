// Package methods is the list of credential methods compiled into the
// gateway: one blank import per method, each registering itself with
// internal/authn/registry. Adding a method is its package and one line
// here (see docs/extending.md).
package methods

import (
	_ "github.com/gatehouse/gatehouse/internal/authn/apikey"     // api_key: API keys (header, Authorization scheme, query)
	_ "github.com/gatehouse/gatehouse/internal/authn/basic"      // basic: HTTP Basic (RFC 7617) against argon2id users
	_ "github.com/gatehouse/gatehouse/internal/authn/introspect" // introspection: opaque tokens by RFC 7662 introspection
	_ "github.com/gatehouse/gatehouse/internal/authn/jwt"        // jwt: JWT access tokens of identity_providers
	_ "github.com/gatehouse/gatehouse/internal/authn/mtls"       // mtls: client certificates verified by the listener
)
