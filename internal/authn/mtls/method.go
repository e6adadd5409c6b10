package mtls

import (
	"errors"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/registry"
	"github.com/gatehouse/gatehouse/internal/clientcert"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
)

// The mtls method: a client certificate verified by the listener
// (listeners[].tls.client_certificates) or forwarded by a trusted TLS
// terminator and verified the same way (listeners[].forwarded_client_certificates,
// wired in internal/gateway: the result reaches the request context just
// as a handshake's does), with per-route options under
// routes[].authenticate.mtls. It reads no header or query parameter: the
// credential travels below HTTP, so there is nothing to strip before the
// upstream and nothing explain could place on a synthetic request.
func init() {
	registry.Register(registry.Method{
		Name:      identity.MethodMTLS,
		Challenge: ChallengeScheme,
		Options:   &Config{},
		Validate:  validateRoute,
		Build: func(env registry.Env) (authn.Authenticator, error) {
			c, _ := env.Options.(*Config)
			if c == nil {
				c = &Config{}
			}
			return New(*c)
		},
	})
}

// validateRoute checks a route's mtls block, and that the route can be
// reached with a client certificate at all.
func validateRoute(m config.RouteMethod) config.Errors {
	var errs config.Errors
	if c, ok := m.Options.(*Config); ok && c != nil {
		for _, err := range Validate(*c) {
			var fe *clientcert.FieldError
			if errors.As(err, &fe) {
				errs = append(errs, m.Errorf("mtls."+fe.Path, "%s", fe.Msg))
				continue
			}
			errs = append(errs, m.Errorf("mtls", "%v", err))
		}
	}
	if !anyListenerAsksForCertificates(m.Config) {
		errs = append(errs, m.Errorf("methods", "mtls needs an HTTPS listener with client_certificates (listeners[].tls.client_certificates) or a listener reading certificates forwarded by a load balancer (listeners[].forwarded_client_certificates): no listener gets clients' certificates, so every request would be refused (cert_missing)"))
	}
	return errs
}

func anyListenerAsksForCertificates(c *config.Config) bool {
	for _, l := range c.Listeners {
		if l.TLS != nil && l.TLS.ClientCertificates != nil || l.ForwardedClientCertificates != nil {
			return true
		}
	}
	return false
}
