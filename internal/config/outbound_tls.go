package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"

	"github.com/gatehouse/gatehouse/internal/tlsclient"
)

// UpstreamTLS is the client side of the TLS connections to a route's https
// targets. The files are read when the configuration is built, and read
// again on every reload: a rotated file takes effect for new connections
// at the next reload, connections opened with the old one finish their
// exchanges and close.
type UpstreamTLS struct {
	// CAFiles are PEM bundles of the CAs that issue the upstream's server
	// certificate. They replace the system roots. Default: the system roots.
	CAFiles []string `yaml:"ca_files" desc:"PEM files of the CA certificates trusted to issue the targets' server certificates; they replace the system roots for this route. Default: the system roots. Re-read on reload."`
	// CertFile is the client certificate presented to the upstream (mutual TLS).
	CertFile string `yaml:"cert_file" desc:"PEM client certificate chain (leaf first) presented when the target asks for one (mutual TLS). Needs key_file. Default: none. Re-read on reload."`
	// KeyFile is the private key of CertFile.
	KeyFile string `yaml:"key_file" desc:"PEM private key of cert_file (unencrypted; keep the file readable by the gateway only). Default: none. Re-read on reload."`
	// ServerName is the SNI sent and the name the server certificate must carry.
	ServerName string `yaml:"server_name" desc:"Name sent as SNI and checked against the targets' certificates, for targets addressed by IP or by a name their certificate does not carry. Default: each target's host."`
	// MinVersion is the lowest TLS version offered. Default 1.2.
	MinVersion string `yaml:"min_version" enum:"1.2,1.3" desc:"Lowest TLS version the gateway accepts from the targets. Default 1.2."`
}

func (t *UpstreamTLS) setDefaults() { t.MinVersion = "1.2" }

// Files are what tlsclient.Load reads for t.
func (t *UpstreamTLS) Files() tlsclient.Files {
	return tlsclient.Files{CAFiles: t.CAFiles, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, MinVersion: t.MinVersion}
}

// ProviderTLS is the client side of the TLS connections to an identity
// provider's discovery and JWKS endpoints. Read at build, like UpstreamTLS.
type ProviderTLS struct {
	// CAFiles are PEM bundles of the CAs that issue the provider's server
	// certificate. They replace the system roots. Default: the system roots.
	CAFiles []string `yaml:"ca_files" desc:"PEM files of the CA certificates trusted to issue the provider's server certificate (a private CA); they replace the system roots for this provider's discovery and JWKS fetches. Default: the system roots. Re-read on reload."`
	// CertFile is a client certificate for providers that require mutual TLS.
	CertFile string `yaml:"cert_file" desc:"PEM client certificate chain presented to the provider when it asks for one (mutual TLS). Needs key_file. Default: none. Re-read on reload."`
	// KeyFile is the private key of CertFile.
	KeyFile string `yaml:"key_file" desc:"PEM private key of cert_file (unencrypted; keep the file readable by the gateway only). Default: none. Re-read on reload."`
	// MinVersion is the lowest TLS version offered. Default 1.2.
	MinVersion string `yaml:"min_version" enum:"1.2,1.3" desc:"Lowest TLS version the gateway accepts from the provider. Default 1.2."`
}

func (t *ProviderTLS) setDefaults() { t.MinVersion = "1.2" }

// Files are what tlsclient.Load reads for t.
func (t *ProviderTLS) Files() tlsclient.Files {
	return tlsclient.Files{CAFiles: t.CAFiles, CertFile: t.CertFile, KeyFile: t.KeyFile, MinVersion: t.MinVersion}
}

// serverNameRE is a DNS name (labels of letters, digits and hyphens).
var serverNameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// validateOutboundTLS checks routes[].upstream.tls and
// identity_providers[].tls; the files themselves are read at build.
func validateOutboundTLS(c *Config, f *File) Errors {
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, f.Errorf(path, format, args...)) }
	pair := func(p, certFile, keyFile string, caFiles []string) {
		if (certFile == "") != (keyFile == "") {
			add(p, "cert_file and key_file go together: set both or neither")
		}
		for j, ca := range caFiles {
			if ca == "" {
				add(fmt.Sprintf("%s.ca_files[%d]", p, j), "empty path")
			}
		}
	}
	for i, r := range c.Routes {
		t := r.Upstream.TLS
		if t == nil {
			continue
		}
		p := fmt.Sprintf("routes[%d].upstream.tls", i)
		pair(p, t.CertFile, t.KeyFile, t.CAFiles)
		for j, target := range r.Upstream.Targets {
			if u, err := url.Parse(target); err == nil && u.Scheme != "https" {
				add(p, "applies to https targets only, and targets[%d] is %q: use https:// or remove tls", j, target)
			}
		}
		if t.ServerName != "" && (net.ParseIP(t.ServerName) == nil && !serverNameRE.MatchString(t.ServerName) || len(t.ServerName) > 253) {
			add(p+".server_name", "%q is not a host name", t.ServerName)
		}
	}
	for i, pc := range c.IdentityProviders {
		t := pc.TLS
		if t == nil {
			continue
		}
		p := fmt.Sprintf("identity_providers[%d].tls", i)
		pair(p, t.CertFile, t.KeyFile, t.CAFiles)
		if pc.StaticKeys != nil {
			add(p, "applies to fetched keys only, and this provider has static_keys")
			continue
		}
		fetched := pc.JWKSURI
		if fetched == "" {
			fetched = pc.Issuer // discovery
		}
		if !isHTTPS(fetched) {
			add(p, "applies to https only, and keys are fetched from %q", fetched)
		}
	}
	return errs
}

func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https"
}
