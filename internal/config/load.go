package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/clientcert"
)

// Defaults, named so the docs, the schema descriptions and the code agree.
const (
	DefaultListenAddress     = ":8080"
	DefaultAdminAddress      = "127.0.0.1:9901"
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 10 << 20
	DefaultDialTimeout       = 5 * time.Second
	DefaultResponseHeader    = 30 * time.Second
	DefaultRequestTimeout    = 60 * time.Second
	DefaultDrainTimeout      = 30 * time.Second
	DefaultClockSkew         = 30 * time.Second
	DefaultMaxTokenLifetime  = 24 * time.Hour
	DefaultMaxTokenSize      = 16 << 10
	DefaultRealm             = "gatehouse"
	// DPoP defaults (internal/authn/dpop has the same).
	DefaultDPoPMaxAge        = 60 * time.Second
	DefaultDPoPClockSkew     = 30 * time.Second
	DefaultDPoPNonceLifetime = 5 * time.Minute
	DefaultDPoPReplayEntries = 1 << 18
)

// Default returns a configuration holding every top-level default; Load
// decodes the file on top of it.
func Default() *Config {
	return &Config{
		Admin:          Admin{Address: DefaultAdminAddress, TokenFile: "gatehouse-admin.token"},
		Metrics:        Metrics{Enabled: true},
		Tracing:        Tracing{SamplingRatio: 1, ServiceName: "gatehouse", Timeout: Duration(10 * time.Second)},
		AccessLog:      AccessLog{Output: "stdout"},
		Redis:          DefaultRedis(),
		Log:            Log{Level: "info", Format: "json"},
		Lifecycle:      Lifecycle{DrainTimeout: Duration(DefaultDrainTimeout)},
		Audit:          Audit{Output: "stdout"},
		DPoP:           DPoPSettings{ReplayCache: DPoPReplayCache{Store: "memory", MaxEntries: DefaultDPoPReplayEntries}},
		RequestHygiene: defaultRequestHygiene(),
		APIKeys: APIKeys{
			Store: KeyStore{Type: "embedded", Path: "gatehouse-keys.db", Schema: "gatehouse",
				ConnectTimeout: Duration(5 * time.Second), AcquireTimeout: Duration(2 * time.Second), StatementTimeout: Duration(5 * time.Second)},
			Prefix:               "gate_live_",
			Header:               "X-API-Key",
			AuthorizationSchemes: []string{"ApiKey"},
			CacheTTL:             Duration(30 * time.Second),
			NegativeCacheTTL:     Duration(10 * time.Second),
			RotationGrace:        Duration(24 * time.Hour),
			LastUsedInterval:     Duration(10 * time.Second),
			LookupTimeout:        Duration(2 * time.Second),
			MaxConcurrentLookups: 64,
		},
		Revocation: Revocation{PollInterval: Duration(time.Second), ResyncInterval: Duration(time.Minute), Feed: "auto"},
		IdentityHeaders: IdentityHeaders{
			Subject: "X-Auth-Subject", Issuer: "X-Auth-Issuer", Method: "X-Auth-Method",
			ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes", Roles: "X-Auth-Roles", Groups: "X-Auth-Groups",
		},
	}
}

func (p *IdentityProvider) setDefaults() {
	p.ClockSkew = Duration(DefaultClockSkew)
	p.MaxTokenLifetime = Duration(DefaultMaxTokenLifetime)
	p.MaxTokenSize = DefaultMaxTokenSize
	p.DPoP = DPoP{Mode: "off", MaxAge: Duration(DefaultDPoPMaxAge), ClockSkew: Duration(DefaultDPoPClockSkew)}
	p.CertificateBound = "optional"
	p.Keys = KeyCache{
		RefreshInterval:    Duration(15 * time.Minute),
		MinRefreshInterval: Duration(time.Minute),
		MaxRefreshInterval: Duration(24 * time.Hour),
		UnknownKIDInterval: Duration(30 * time.Second),
		MaxStale:           Duration(24 * time.Hour),
		FetchTimeout:       Duration(5 * time.Second),
	}
}

func (a *Authenticate) setDefaults() { a.Realm = DefaultRealm }

func (l *Listener) setDefaults() {
	l.Address = DefaultListenAddress
	l.Timeouts = ListenerTimeouts{
		ReadHeader: Duration(DefaultReadHeaderTimeout),
		Read:       Duration(DefaultReadTimeout),
		Write:      Duration(DefaultWriteTimeout),
		Idle:       Duration(DefaultIdleTimeout),
	}
	l.MaxHeaderBytes = DefaultMaxHeaderBytes
}

func (t *TLS) setDefaults() { t.MinVersion = "1.2" }

func (c *ClientCertificates) setDefaults() {
	c.Mode = "request"
	c.MinRSABits = 2048
	c.MinECBits = 256
}

func (c *ForwardedClientCertificates) setDefaults() {
	c.Header = "X-Forwarded-Client-Cert"
	c.Format = "xfcc"
	c.MinRSABits = 2048
	c.MinECBits = 256
}

// verification is c's certificate checks as a client_certificates block
// (request mode: a forwarded certificate never ends a connection).
func (c *ForwardedClientCertificates) verification() *ClientCertificates {
	return &ClientCertificates{CAFiles: c.CAFiles, CRLFiles: c.CRLFiles, Mode: "request",
		MinRSABits: c.MinRSABits, MinECBits: c.MinECBits, SignatureAlgorithms: c.SignatureAlgorithms}
}

// Settings are the clientcert settings of c (clock: time.Now).
func (c *ForwardedClientCertificates) Settings() clientcert.Settings {
	return c.verification().Settings()
}

// Settings are the clientcert settings of c (clock: time.Now).
func (c *ClientCertificates) Settings() clientcert.Settings {
	s := clientcert.Settings{
		CAFiles: c.CAFiles, CRLFiles: c.CRLFiles, Mode: c.Mode,
		MinRSABits: c.MinRSABits, MinECBits: c.MinECBits,
	}
	for _, n := range c.SignatureAlgorithms {
		if a, ok := clientcert.ParseSignatureAlgorithm(n); ok {
			s.SignatureAlgorithms = append(s.SignatureAlgorithms, a)
		}
	}
	return s
}

func (r *Route) setDefaults() {
	r.MaxBodyBytes = DefaultMaxBodyBytes
	r.Upstream.Timeouts = UpstreamTimeouts{
		Dial:           Duration(DefaultDialTimeout),
		ResponseHeader: Duration(DefaultResponseHeader),
		Request:        Duration(DefaultRequestTimeout),
	}
}

// WatchEnabled reports whether file changes trigger a reload (default true).
func (l Lifecycle) WatchEnabled() bool { return l.WatchConfig == nil || *l.WatchConfig }

// File is where a configuration came from; kept so later stages (the
// compiled plan) can report their own problems at the right place.
type File struct {
	Name string
	pos  map[string]position
}

// Errorf returns an Error located at the key path (or its nearest
// enclosing key present in the file).
func (f *File) Errorf(path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if f == nil {
		return e
	}
	e.File = f.Name
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := f.pos[p]; ok {
			e.Line, e.Column = pos.line, pos.column
			break
		}
	}
	return e
}

// parentPath strips the last element of a key path: "a.b[2]" → "a.b" → "a" → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// MaxFileSize is the largest configuration file Load, ReadFile and Parse
// accept. A real configuration is a few KiB (a thousand routes take about
// 300 KiB). The limit bounds what parsing can cost: the YAML library needs
// about 120 MiB and up to two seconds for 1 MiB of the smallest possible
// values ("[a,a,a,…]"), and that grows with the size.
const MaxFileSize = 1 << 20

// ErrTooLarge means a configuration file exceeds MaxFileSize.
var ErrTooLarge = fmt.Errorf("config: file larger than %d bytes (%d MiB)", MaxFileSize, MaxFileSize>>20)

// ReadFile reads a configuration file: a regular file (or a symbolic link
// to one) of at most MaxFileSize bytes. Anything else is refused before it
// is read: a device such as /dev/zero would never end, a FIFO would block
// until a writer appears. The read itself is bounded too (the file may
// grow between the check and the read).
func ReadFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("config: %s is not a regular file (%s)", name, fileKind(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %s has %d bytes", ErrTooLarge, name, st.Size())
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	// The size can change between Stat and Read (and is 0 for devices):
	// the reader's limit is what bounds the read.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s", ErrTooLarge, name)
	}
	return data, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	default:
		return m.Type().String()
	}
}

// Load reads, decodes and validates a configuration file. The error, if
// any, is an Errors listing every problem with its location.
func Load(name string) (*Config, *File, error) {
	data, err := ReadFile(name)
	if err != nil {
		return nil, nil, err
	}
	return Parse(name, data, os.LookupEnv)
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// Parse decodes and validates configuration text. name is used in error
// messages; lookup resolves ${ENV} references.
//
// Parsing has a budget whatever the input: data over MaxFileSize is
// refused, YAML aliases may expand to at most MaxAliasExpansion values in
// all, and decoding stops after MaxErrors problems.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, *File, error) {
	if len(data) > MaxFileSize {
		return nil, nil, Errors{{File: name, Msg: fmt.Sprintf("the file has %d bytes; the limit is %d (%d MiB)", len(data), MaxFileSize, MaxFileSize>>20)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) == nil {
			return nil, nil, Errors{{File: name, Line: extra.Line, Column: extra.Column,
				Msg: "more than one YAML document (---): a configuration is a single document"}}
		}
	}
	if err != nil {
		e := &Error{File: name, Msg: "invalid YAML: " + err.Error()}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Column = 1
		}
		return nil, nil, Errors{e}
	}
	cfg := Default()
	file := &File{Name: name, pos: map[string]position{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, Errors{{File: name, Msg: "the file is empty: at least one route is required"}}
	}
	d := &decoder{file: name, lookup: lookup, pos: file.pos}
	d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	if len(d.errs) > 0 {
		return nil, nil, d.errs.sorted()
	}
	if len(cfg.Listeners) == 0 {
		l := Listener{}
		l.setDefaults()
		cfg.Listeners = []Listener{l}
	}
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Name == "" {
			cfg.Listeners[i].Name = cfg.Listeners[i].Address
		}
	}
	if errs := validate(cfg, file); len(errs) > 0 {
		return nil, nil, errs.sorted()
	}
	return cfg, file, nil
}

// AsErrors extracts the located problems of a Load error, if it has them.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	if errors.As(err, &es) {
		return es, true
	}
	return nil, false
}
