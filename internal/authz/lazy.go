package authz

import (
	"net/http"
	"reflect"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// The CEL variables are maps, but building them for every request would
// cost more than evaluating a typical expression. lazyMap answers a key
// lookup (identity.subject, request.headers["x-tenant"]) straight from the
// Go value and only materializes the whole map for the rare operations that
// need it (iteration, equality, conversion).

// fieldSource is the Go value behind a lazyMap.
type fieldSource interface {
	// lookup returns the CEL value of key, or false if the map has no key.
	lookup(key string) (ref.Val, bool)
	// materialize returns the whole map.
	materialize() ref.Val
}

type lazyMap struct {
	src  fieldSource
	full ref.Val
}

var _ traits.Mapper = (*lazyMap)(nil)

func (m *lazyMap) all() traits.Mapper {
	if m.full == nil {
		m.full = m.src.materialize()
	}
	return m.full.(traits.Mapper)
}

func (m *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	if s, ok := key.(types.String); ok {
		return m.src.lookup(string(s))
	}
	return m.all().Find(key)
}

func (m *lazyMap) Get(key ref.Val) ref.Val {
	if v, ok := m.Find(key); ok {
		return v
	}
	return m.all().Get(key)
}

func (m *lazyMap) Contains(key ref.Val) ref.Val {
	if s, ok := key.(types.String); ok {
		_, found := m.src.lookup(string(s))
		return types.Bool(found)
	}
	return m.all().Contains(key)
}

func (m *lazyMap) ConvertToNative(t reflect.Type) (any, error) { return m.all().ConvertToNative(t) }
func (m *lazyMap) ConvertToType(t ref.Type) ref.Val            { return m.all().ConvertToType(t) }
func (m *lazyMap) Equal(o ref.Val) ref.Val                     { return m.all().Equal(o) }
func (m *lazyMap) Type() ref.Type                              { return types.MapType }
func (m *lazyMap) Value() any                                  { return m.all().Value() }
func (m *lazyMap) Iterator() traits.Iterator                   { return m.all().Iterator() }
func (m *lazyMap) Size() ref.Val                               { return m.all().Size() }

// identitySource is the CEL variable identity.
type identitySource struct{ id *identity.Identity }

var identityKeys = []string{"subject", "issuer", "provider", "method", "methods", "credential_id", "client_id",
	"scopes", "roles", "groups", "claims", "expires_at", "anonymous", "credentials"}

var emptyClaims = map[string]any{}

func (s identitySource) lookup(key string) (ref.Val, bool) {
	id := s.id
	switch key {
	case "subject":
		return types.String(id.Subject), true
	case "issuer":
		return types.String(id.Issuer), true
	case "provider":
		return types.String(id.Provider), true
	case "method":
		return types.String(id.Method), true
	case "credential_id":
		return types.String(id.CredentialID), true
	case "client_id":
		return types.String(id.ClientID), true
	case "scopes":
		return types.NewStringList(types.DefaultTypeAdapter, id.Scopes), true
	case "roles":
		return types.NewStringList(types.DefaultTypeAdapter, id.Roles), true
	case "groups":
		return types.NewStringList(types.DefaultTypeAdapter, id.Groups), true
	case "claims":
		c := id.Claims
		if c == nil {
			c = emptyClaims
		}
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, c), true
	case "expires_at":
		return types.Timestamp{Time: id.ExpiresAt}, true
	case "anonymous":
		return types.Bool(id.IsAnonymous()), true
	case "methods":
		// Built when read: a policy that never reads it costs nothing.
		if len(id.Credentials) == 0 {
			return types.NewStringList(types.DefaultTypeAdapter, []string{string(id.Method)}), true
		}
		ms := make([]string, len(id.Credentials))
		for i, c := range id.Credentials {
			ms[i] = string(c.Method)
		}
		return types.NewStringList(types.DefaultTypeAdapter, ms), true
	case "credentials":
		ev := id.Evidence()
		out := make([]any, len(ev))
		for i, c := range ev {
			out[i] = credentialMap(c)
		}
		return types.NewDynamicList(types.DefaultTypeAdapter, out), true
	}
	return nil, false
}

// credentialMap is one element of identity.credentials.
func credentialMap(c identity.Credential) map[string]any {
	return map[string]any{
		"method": string(c.Method), "id": c.CredentialID, "subject": c.Subject, "issuer": c.Issuer,
		"provider": c.Provider, "expires_at": types.Timestamp{Time: c.ExpiresAt}, "cert_thumbprint": c.CertThumbprint,
		"key_binding": map[string]any{"kind": c.KeyBinding.Kind, "value": c.KeyBinding.Value},
	}
}

func (s identitySource) materialize() ref.Val { return materialize(s, identityKeys) }

// requestSource is the CEL variable request.
// It holds only the activation (one pointer), so storing it in the
// fieldSource interface does not allocate.
type requestSource struct{ a *activation }

var requestKeys = []string{"method", "host", "path", "path_params", "headers", "query", "client_ip"}

var emptyParams = map[string]string{}

func (s requestSource) lookup(key string) (ref.Val, bool) {
	in := s.a.in
	switch key {
	case "method":
		return types.String(s.a.method), true
	case "host":
		return types.String(in.Host), true
	case "path":
		return types.String(in.Path), true
	case "path_params":
		p := in.PathParams
		if p == nil {
			p = emptyParams
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, p), true
	case "headers":
		return &lazyMap{src: headerSource(in.Headers)}, true
	case "query":
		return &lazyMap{src: querySource(in.Query)}, true
	case "client_ip":
		if !in.ClientIP.IsValid() {
			return types.String(""), true
		}
		return types.String(in.ClientIP.String()), true
	}
	return nil, false
}

func (s requestSource) materialize() ref.Val { return materialize(s, requestKeys) }

func materialize(s fieldSource, keys []string) ref.Val {
	m := make(map[ref.Val]ref.Val, len(keys))
	for _, k := range keys {
		v, _ := s.lookup(k)
		m[types.String(k)] = v
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, m)
}

// headerSource is request.headers: lower-case names, first values. A
// lookup scans the header instead of building a lower-cased copy.
type headerSource http.Header

func (h headerSource) lookup(key string) (ref.Val, bool) {
	if !isLower(key) {
		return nil, false // the map's keys are all lower case
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return types.String(v[0]), true
		}
	}
	return nil, false
}

func (h headerSource) materialize() ref.Val {
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			m[strings.ToLower(k)] = v[0]
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

// querySource is request.query: first values.
type querySource map[string][]string

func (q querySource) lookup(key string) (ref.Val, bool) {
	if v := q[key]; len(v) > 0 {
		return types.String(v[0]), true
	}
	return nil, false
}

func (q querySource) materialize() ref.Val {
	m := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}
