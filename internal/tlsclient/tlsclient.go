// Package tlsclient builds the client side of the gateway's outbound TLS
// connections (to upstreams and to identity providers) from PEM files: a
// private CA bundle, a client certificate for mutual TLS, a server name and
// a minimum version.
//
// The files are read once, when a configuration is built (every reload
// reads them again), into Settings: a comparable value that holds their
// contents. Settings encode to JSON as digests of those contents, never as
// the contents, so a resource key derived from them (resource.Key) changes
// when a file is rotated and stays the same, keeping its connection pool,
// when nothing changed, and a private key never reaches a key string or a
// log line.
package tlsclient

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxFileBytes bounds each file read: a CA bundle or a certificate chain
// is a few kilobytes, and a path pointing at something else must not fill
// memory.
const MaxFileBytes = 1 << 20

// Files name what Load reads. Paths are as configured; they are opened
// relative to the working directory.
type Files struct {
	// CAFiles are PEM bundles of the CA certificates trusted to issue the
	// server's certificate. They replace the system roots. Default: none,
	// the system roots.
	CAFiles []string
	// CertFile and KeyFile are the client certificate (PEM, leaf first,
	// then intermediates) and its private key, presented when the server
	// asks for one. Both or neither. Default: none.
	CertFile, KeyFile string
	// ServerName is sent as SNI and is the name the server's certificate
	// must carry. Default "": the target's host.
	ServerName string
	// MinVersion is "1.2" or "1.3". Default "" : 1.2.
	MinVersion string
}

// FileError is a Load failure caused by one configured key ("ca_files[1]",
// "cert_file", "key_file", "min_version"), so the caller can point at it.
type FileError struct {
	Key string
	Err error
}

func (e *FileError) Error() string { return "tlsclient: " + e.Key + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Settings are the material of one outbound TLS configuration, as read by
// Load. The zero value means "TLS as the standard library does it": system
// roots, no client certificate, the target's host as server name, TLS 1.2
// or later. Settings are comparable: equal settings mean equal contents.
type Settings struct {
	// CAs are the PEM certificates of the CA files, concatenated. "": the
	// system roots.
	CAs string
	// Cert and Key are the PEM client certificate chain and private key;
	// both empty for no client certificate.
	Cert, Key string
	// ServerName overrides the SNI and verification name. "": the host.
	ServerName string
	// MinVersion is a tls.Version* constant; 0 means TLS 1.2.
	MinVersion uint16
}

// Load reads and checks the files: every CA file must hold at least one
// certificate, the client certificate must match its key. An error is a
// *FileError naming the key at fault.
func Load(f Files) (Settings, error) {
	s := Settings{ServerName: f.ServerName}
	switch f.MinVersion {
	case "", "1.2":
		s.MinVersion = tls.VersionTLS12
	case "1.3":
		s.MinVersion = tls.VersionTLS13
	default:
		return Settings{}, &FileError{"min_version", fmt.Errorf("%q: use 1.2 or 1.3", f.MinVersion)}
	}
	var cas strings.Builder
	for i, name := range f.CAFiles {
		key := fmt.Sprintf("ca_files[%d]", i)
		data, err := readFile(name)
		if err != nil {
			return Settings{}, &FileError{key, err}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return Settings{}, &FileError{key, fmt.Errorf("%s holds no PEM certificate", name)}
		}
		cas.Write(data)
		cas.WriteByte('\n')
	}
	s.CAs = cas.String()
	if (f.CertFile == "") != (f.KeyFile == "") {
		return Settings{}, &FileError{"cert_file", errors.New("cert_file and key_file go together")}
	}
	if f.CertFile != "" {
		cert, err := readFile(f.CertFile)
		if err != nil {
			return Settings{}, &FileError{"cert_file", err}
		}
		key, err := readFile(f.KeyFile)
		if err != nil {
			return Settings{}, &FileError{"key_file", err}
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			// The standard library's message names neither file's
			// contents, only what is wrong with them.
			return Settings{}, &FileError{"cert_file", fmt.Errorf("%s with %s: %w", f.CertFile, f.KeyFile, err)}
		}
		s.Cert, s.Key = string(cert), string(key)
	}
	return s, nil
}

func readFile(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxFileBytes)
	}
	return data, nil
}

// ClientCertificate returns the leaf of the client certificate, nil when
// there is none (or it does not parse, which Load rules out), so that the
// caller can warn about one that has expired or is not valid yet.
func (s Settings) ClientCertificate() *x509.Certificate {
	if s.Cert == "" {
		return nil
	}
	cert, err := tls.X509KeyPair([]byte(s.Cert), []byte(s.Key))
	if err != nil || len(cert.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// IsZero reports whether s is the standard library's behaviour.
func (s Settings) IsZero() bool { return s == Settings{} }

// Config builds the tls.Config a client uses with s. It returns nil, nil
// for the zero Settings (the transport's default applies). The returned
// config is new on every call; callers own it.
func (s Settings) Config() (*tls.Config, error) {
	if s.IsZero() {
		return nil, nil
	}
	c := &tls.Config{ServerName: s.ServerName, MinVersion: s.MinVersion}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if s.CAs != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.CAs)) {
			return nil, errors.New("tlsclient: the CA bundle holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	if s.Cert != "" {
		cert, err := tls.X509KeyPair([]byte(s.Cert), []byte(s.Key))
		if err != nil {
			return nil, fmt.Errorf("tlsclient: client certificate: %w", err)
		}
		// Presented whenever the server asks, whatever CAs its request
		// names (crypto/tls would otherwise send nothing when the list
		// does not name the chain's issuer, which servers get wrong with
		// intermediates): the operator configured this one certificate
		// for this peer, and a refusal is clearer than a missing one.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c, nil
}

// digests is what Settings encode to: enough to tell settings apart,
// nothing that could be used to impersonate the gateway.
type digests struct {
	CAs        string `json:"ca_sha256,omitempty"`
	Cert       string `json:"cert_sha256,omitempty"`
	Key        string `json:"key_sha256,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	MinVersion uint16 `json:"min_version,omitempty"`
}

func digest(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (s Settings) digests() digests {
	return digests{CAs: digest(s.CAs), Cert: digest(s.Cert), Key: digest(s.Key), ServerName: s.ServerName, MinVersion: s.MinVersion}
}

// MarshalJSON encodes s as SHA-256 digests of its PEM contents, with the
// server name and version: resource keys change with the contents, and
// never carry the private key.
func (s Settings) MarshalJSON() ([]byte, error) { return json.Marshal(s.digests()) }

// String describes s without its contents (digests only), so that a
// Settings printed by mistake shows no key.
func (s Settings) String() string {
	b, _ := json.Marshal(s.digests())
	return "tlsclient.Settings" + string(b)
}

// GoString is String, for %#v.
func (s Settings) GoString() string { return s.String() }
