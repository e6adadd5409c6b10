package pipeline

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/endpoint"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// OAuth 2.0 Protected Resource Metadata (RFC 9728). A route with
// protected_resource gets:
//
//   - a public endpoint at /.well-known/oauth-protected-resource plus the
//     resource's path (§3.1), on the route's hosts, answering GET (and
//     HEAD) with the document, compiled once: resource,
//     authorization_servers, scopes_supported, bearer_methods_supported
//     ["header"] (the gateway reads tokens from Authorization only),
//     resource_name and resource_documentation;
//   - resource_metadata="<url>" in the Bearer challenges of its 401s
//     (§5.1), so a client (an MCP client, say) can discover how to get a
//     token from the refusal alone.
//
// Every URL comes from the configuration, never from the request's Host:
// a client must not be able to make the gateway advertise another
// authorization server or resource.

// resourceMetadata is an RFC 9728 §2 document.
type resourceMetadata struct {
	Resource              string   `json:"resource"`
	AuthorizationServers  []string `json:"authorization_servers,omitempty"`
	ScopesSupported       []string `json:"scopes_supported,omitempty"`
	BearerMethods         []string `json:"bearer_methods_supported"`
	ResourceName          string   `json:"resource_name,omitempty"`
	ResourceDocumentation string   `json:"resource_documentation,omitempty"`
}

// metadataEndpoints compiles the metadata endpoints of the routes with
// protected_resource, and sets each route's challenge parameter.
func (p *Plan) metadataEndpoints(cfg *config.Config, file *config.File) ([]mounted, error) {
	var out []mounted
	defaults := cfg.ProtectedResourceMetadata
	if defaults == nil {
		defaults = &config.ProtectedResourceMetadata{CacheMaxAge: config.Duration(config.DefaultMetadataMaxAge)}
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		pr := rc.ProtectedResource
		if pr == nil {
			continue
		}
		path, full, err := config.MetadataPath(pr.Resource)
		if err != nil {
			return nil, file.Errorf(fmt.Sprintf("routes[%d].protected_resource.resource", i), "%v", err)
		}
		doc := resourceMetadata{
			Resource:              pr.Resource,
			AuthorizationServers:  cfg.AuthorizationServers(rc),
			ScopesSupported:       pr.ScopesSupported,
			BearerMethods:         []string{"header"},
			ResourceName:          pr.ResourceName,
			ResourceDocumentation: pr.ResourceDocumentation,
		}
		if doc.ResourceName == "" {
			doc.ResourceName = defaults.ResourceName
		}
		if doc.ResourceDocumentation == "" {
			doc.ResourceDocumentation = defaults.ResourceDocumentation
		}
		body, err := json.Marshal(doc)
		if err != nil {
			return nil, file.Errorf(fmt.Sprintf("routes[%d].protected_resource", i), "%v", err)
		}
		body = append(body, '\n')
		cache := "no-cache"
		if s := int64(defaults.CacheMaxAge.Std().Seconds()); s > 0 {
			cache = "public, max-age=" + strconv.FormatInt(s, 10)
		}
		p.routes[i].resourceMetadata = full
		out = append(out, mounted{
			ep: endpoint.Endpoint{
				Name: "protected_resource_metadata", Path: path, Methods: []string{http.MethodGet}, Public: true,
				Handler: &metadataDocument{body: body, length: strconv.Itoa(len(body)), cache: cache},
			},
			owner: i,
			// Routes that describe one resource identically share it.
			source: path + "\x00" + string(body),
		})
	}
	return out, nil
}

// metadataDocument serves one compiled document.
type metadataDocument struct {
	body          []byte
	length, cache string
}

func (d *metadataDocument) ServeEndpoint(w http.ResponseWriter, r *http.Request, _ *identity.Identity) error {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{d.length}
	h["Cache-Control"] = []string{d.cache}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body)
	}
	return nil
}
