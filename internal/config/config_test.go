package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const minimal = `
routes:
  - name: echo
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`

func TestDefaults(t *testing.T) {
	cfg, _, err := Parse("min.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	for name, tc := range map[string]struct{ got, want any }{
		"listener address":  {l.Address, DefaultListenAddress},
		"listener name":     {l.Name, DefaultListenAddress},
		"read_header":       {l.Timeouts.ReadHeader.Std(), DefaultReadHeaderTimeout},
		"read":              {l.Timeouts.Read.Std(), DefaultReadTimeout},
		"write":             {l.Timeouts.Write.Std(), DefaultWriteTimeout},
		"idle":              {l.Timeouts.Idle.Std(), DefaultIdleTimeout},
		"max_header_bytes":  {int64(l.MaxHeaderBytes), int64(DefaultMaxHeaderBytes)},
		"admin":             {cfg.Admin.Address, DefaultAdminAddress},
		"access log output": {cfg.AccessLog.Output, "stdout"},
		"log level":         {cfg.Log.Level, "info"},
		"drain":             {cfg.Lifecycle.DrainTimeout.Std(), DefaultDrainTimeout},
		"watch":             {cfg.Lifecycle.WatchEnabled(), true},
		"max body":          {int64(cfg.Routes[0].MaxBodyBytes), int64(DefaultMaxBodyBytes)},
		"dial":              {cfg.Routes[0].Upstream.Timeouts.Dial.Std(), DefaultDialTimeout},
		"response header":   {cfg.Routes[0].Upstream.Timeouts.ResponseHeader.Std(), DefaultResponseHeader},
		"request":           {cfg.Routes[0].Upstream.Timeouts.Request.Std(), DefaultRequestTimeout},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", name, tc.got, tc.want)
		}
	}
}

func TestFullConfig(t *testing.T) {
	src := `
listeners:
  - name: web
    address: "127.0.0.1:${PORT}"
    timeouts: {read_header: 2s, idle: 0s}
    max_header_bytes: 32KiB
admin: {address: "127.0.0.1:0"}
forwarding:
  trusted_proxies: ["10.0.0.0/8", "::1"]
access_log: {output: stderr, redact_query_params: [session]}
log: {level: debug, format: text}
lifecycle: {drain_timeout: 5s, watch_config: false}
routes:
  - name: users
    public: true
    match:
      hosts: [api.example.com, "*.example.com"]
      path: /users/{id}
      methods: [GET, DELETE]
    max_body_bytes: 1MB
    upstream:
      targets: ["http://10.1.2.3:8080/base", "https://users.internal"]
      strip_prefix: /users
      add_prefix: /v2/users
      preserve_host: true
      timeouts: {dial: 1s, request: 0}
`
	cfg, _, err := Parse("full.yaml", []byte(src), env(map[string]string{"PORT": "8081"}))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	r := cfg.Routes[0]
	for name, tc := range map[string]struct{ got, want any }{
		"address":          {l.Address, "127.0.0.1:8081"},
		"read_header":      {l.Timeouts.ReadHeader.Std(), 2 * time.Second},
		"idle explicit 0":  {l.Timeouts.Idle.Std(), time.Duration(0)},
		"read default":     {l.Timeouts.Read.Std(), DefaultReadTimeout},
		"max_header_bytes": {int64(l.MaxHeaderBytes), int64(32 << 10)},
		"trusted":          {len(cfg.Forwarding.TrustedProxies), 2},
		"redact":           {cfg.AccessLog.RedactQueryParams[0], "session"},
		"watch off":        {cfg.Lifecycle.WatchEnabled(), false},
		"hosts":            {len(r.Match.Hosts), 2},
		"methods":          {r.Match.Methods[1], "DELETE"},
		"body":             {int64(r.MaxBodyBytes), int64(1000 * 1000)},
		"targets":          {r.Upstream.Targets[1], "https://users.internal"},
		"preserve":         {r.Upstream.PreserveHost, true},
		"dial":             {r.Upstream.Timeouts.Dial.Std(), time.Second},
		"request 0":        {r.Upstream.Timeouts.Request.Std(), time.Duration(0)},
		"response default": {r.Upstream.Timeouts.ResponseHeader.Std(), DefaultResponseHeader},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", name, tc.got, tc.want)
		}
	}
}

// TestErrorsHaveLocations checks that every kind of configuration error is
// reported with file:line:column and the key path.
func TestErrorsHaveLocations(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string // each must appear in the error output, in order
	}{
		{"unknown top-level key", "listner: []\n" + minimal,
			[]string{`c.yaml:1:1: listner: unknown key "listner" (did you mean "listeners"?)`}},
		{"unknown nested key", `
routes:
  - name: a
    match: {path_prefix: /, method: [GET]}
    upstream: {targets: ["builtin:echo"]}
`, []string{`c.yaml:4:29: routes[0].match.method: unknown key "method" (did you mean "methods"?)`}},
		{"wrong type: list expected", `
routes:
  - name: a
    match: {path_prefix: /, hosts: example.com}
    upstream: {targets: ["builtin:echo"]}
`, []string{`c.yaml:4:36: routes[0].match.hosts: expected a list, got the value "example.com"`}},
		{"wrong type: mapping expected", "admin: yes\n" + minimal,
			[]string{`c.yaml:1:8: admin: expected a mapping (key: value), got the value "yes"`}},
		{"bad duration", `
lifecycle: {drain_timeout: 10 seconds}
` + minimal, []string{`c.yaml:2:28: lifecycle.drain_timeout: invalid duration "10 seconds"`}},
		{"negative duration", "lifecycle: {drain_timeout: -1s}\n" + minimal,
			[]string{`c.yaml:1:28: lifecycle.drain_timeout: duration "-1s" must not be negative`}},
		{"bad size", "listeners: [{max_header_bytes: 12 parsecs}]\n" + minimal,
			[]string{`c.yaml:1:32: listeners[0].max_header_bytes: "12 parsecs": invalid size`}},
		{"bad bool", "admin: {disabled: maybe}\n" + minimal,
			[]string{`c.yaml:1:19: admin.disabled: expected true or false, got "maybe"`}},
		{"boolean for string", "log: {level: true}\n" + minimal,
			[]string{`c.yaml:1:14: log.level: expected a string, got the boolean true`}},
		{"enum", "log: {level: loud}\n" + minimal,
			[]string{`c.yaml:1:14: log.level: "loud" is not one of: debug, info, warn, error`}},
		{"duplicate key", "log: {level: info, level: debug}\n" + minimal,
			[]string{`c.yaml:1:20: log.level: duplicate key "level"`}},
		{"missing env", "listeners: [{address: \"${NOPE}\"}]\n" + minimal,
			[]string{`c.yaml:1:23: listeners[0].address: environment variable NOPE is not set`}},
		{"bad listen address", "listeners: [{address: \"localhost\"}]\n" + minimal,
			[]string{`c.yaml:1:23: listeners[0].address: "localhost" is not host:port`}},
		{"admin clashes with listener", "listeners: [{address: \"127.0.0.1:9901\"}]\n" + minimal,
			[]string{`c.yaml: admin.address: address 127.0.0.1:9901 is already used by listeners[0]`}},
		{"tls files missing", "listeners: [{address: \":8443\", tls: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}}]\n" + minimal,
			[]string{`c.yaml:1:37: listeners[0].tls: cannot load certificate and key`}},
		{"tls key missing", "listeners: [{address: \":8443\", tls: {cert_file: a.pem}}]\n" + minimal,
			[]string{`c.yaml:1:37: listeners[0].tls: HTTPS needs cert_file and key_file; key_file is missing (remove tls to serve plain HTTP)`}},
		{"tls cert missing", "listeners: [{address: \":8443\", tls: {key_file: a.key}}]\n" + minimal,
			[]string{`c.yaml:1:37: listeners[0].tls: HTTPS needs cert_file and key_file; cert_file is missing (remove tls to serve plain HTTP)`}},
		{"tls with no keys", "listeners: [{address: \":8443\", tls: {}}]\n" + minimal,
			[]string{`c.yaml:1:37: listeners[0].tls: HTTPS needs cert_file and key_file; both are missing (remove tls to serve plain HTTP)`}},
		{"tls with only min_version", "listeners:\n  - address: \":8443\"\n    tls:\n      min_version: \"1.3\"\n" + minimal,
			[]string{`c.yaml:4:7: listeners[0].tls: HTTPS needs cert_file and key_file; both are missing (remove tls to serve plain HTTP)`}},
		{"pprof without an admin token", "admin: {pprof: true, token_file: \"\"}\n" + minimal,
			[]string{`admin.pprof: pprof is served behind the admin token, and none is configured (set token_hash or token_file)`}},
		{"metrics token without an admin token", "admin: {token_file: \"\"}\nmetrics: {require_token: true}\n" + minimal,
			[]string{`metrics.require_token: no admin token is configured (set admin.token_hash or admin.token_file)`}},
		{"bad trusted proxy", "forwarding: {trusted_proxies: [10.0.0.0/33]}\n" + minimal,
			[]string{`c.yaml:1:32: forwarding.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR`}},
		{"no routes", "log: {level: info}\n",
			[]string{`c.yaml: routes: at least one route is required`}},
		{"route problems, all reported", `
routes:
  - name: ""
    match: {path: /a, path_prefix: /b}
    upstream: {targets: []}
  - name: "bad name!"
    match: {path: "users/{id}", hosts: ["ex*ample.com"], methods: [get]}
    upstream:
      targets: ["ftp://files", "http://user:pw@host", "http://h/?q=1"]
      strip_prefix: nope
      timeouts: {dial: 0s}
  - name: dup
    match: {}
    upstream: {targets: ["builtin:echo"]}
  - name: dup
    match: {path_prefix: /x}
    upstream: {targets: ["builtin:echo"]}
  - name: same
    match: {path_prefix: /x}
    upstream: {targets: ["builtin:echo"]}
`, []string{
			`c.yaml:3:11: routes[0].name: required`,
			`c.yaml:4:12: routes[0].match: set either path or path_prefix, not both`,
			`c.yaml:5:25: routes[0].upstream.targets: at least one target is required`,
			`c.yaml:6:11: routes[1].name: "bad name!"`,
			`c.yaml:7:19: routes[1].match.path: route: `,
			`c.yaml:7:41: routes[1].match.hosts[0]: route: host "ex*ample.com"`,
			`c.yaml:7:68: routes[1].match.methods[0]: "get" is not an upper-case HTTP method`,
			`c.yaml:9:17: routes[1].upstream.targets[0]: "ftp://files": the scheme must be http or https`,
			`c.yaml:9:32: routes[1].upstream.targets[1]: "http://REDACTED@host": credentials in the URL are not allowed`,
			`c.yaml:9:55: routes[1].upstream.targets[2]: "http://h/?q=1": a target must not have a query or fragment`,
			`c.yaml:10:21: routes[1].upstream.strip_prefix: "nope" must start with /`,
			`c.yaml:11:24: routes[1].upstream.timeouts.dial: must be greater than 0`,
			`c.yaml:13:12: routes[2].match: set path (exact) or path_prefix`,
			`c.yaml:15:11: routes[3].name: duplicate route name "dup" (also routes[2])`,
			`c.yaml:19:12: routes[4].match: matches exactly the same requests as routes[3], so it can never be chosen`,
		}},
		{"cors problems", `
routes:
  - name: a
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
    cors:
      allowed_origins:
        - "https://*.com"
        - "*"
        - "https://app.example.com/app"
        - "null"
      allow_credentials: true
      allowed_methods: [get]
      allowed_headers: ["bad header"]
`, []string{
			`c.yaml:9:11: routes[0].cors.allowed_origins[0]: origin "https://*.com" has a wildcard that is not "*." followed by a domain of at least two labels`,
			`c.yaml:10:11: routes[0].cors.allowed_origins[1]: "*" cannot be combined with allow_credentials`,
			`c.yaml:11:11: routes[0].cors.allowed_origins[2]: origin "https://app.example.com/app" must not have a path`,
			`c.yaml:12:11: routes[0].cors.allowed_origins[3]: origin "null" is sent by sandboxed frames`,
			`c.yaml:14:25: routes[0].cors.allowed_methods[0]: "get" is not an upper-case HTTP method`,
			`c.yaml:15:25: routes[0].cors.allowed_headers[0]: "bad header" is not a header name`,
		}},
		{"cors without origins", `
routes:
  - name: a
    public: true
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
    cors: {allow_credentials: true}
`, []string{`c.yaml:7:11: routes[0].cors.allowed_origins: at least one origin is required`}},
		{"invalid yaml", "routes: [\n  - name: a\n", []string{`c.yaml:1:1: invalid YAML`}},
		{"empty tls section", "listeners: [{address: \":8443\", tls: }]\n" + minimal,
			[]string{`listeners[0].tls: empty section: tls with nothing under it does not turn TLS off: HTTPS needs cert_file and key_file; remove the tls line to serve plain HTTP`}},
		{"null tls section", "listeners:\n  - address: \":8443\"\n    tls: null\n" + minimal,
			[]string{`c.yaml:3:10: listeners[0].tls: empty section: tls with nothing under it does not turn TLS off`}},
		{"second document", minimal + "---\nroutes: []\n", []string{`more than one YAML document`}},
		{"HS512 with a short secret", `identity_providers:
  - name: hs
    issuer: https://issuer.example
    audiences: [api]
    algorithms: [HS512]
    static_keys: {hmac_secret: "0123456789abcdef0123456789abcdef"}
` + minimal, []string{`identity_providers[0].algorithms[0]: HS512 needs an hmac_secret of at least 64 bytes`}},
		{"provider problems", `identity_providers:
  - name: p
    issuer: http://issuer.example
    audiences: []
    algorithms: [none, RS256]
    keys: {max_stale: 0s}
` + minimal, []string{
			`identity_providers[0].issuer: "http://issuer.example": keys fetched over plain http`,
			`identity_providers[0].audiences: at least one audience is required`,
			`identity_providers[0].algorithms[0]: "none" is never accepted`,
			`identity_providers[0].keys.max_stale: must be greater than 0`,
		}},
		{"max_stale shorter than refresh_interval", `identity_providers:
  - name: p
    issuer: https://issuer.example
    audiences: [api]
    keys: {max_stale: 10m}
` + minimal, []string{`c.yaml:5:23: identity_providers[0].keys.max_stale: 10m0s is shorter than refresh_interval 15m0s: keys would be refused as stale between two scheduled refreshes`}},
		{"max_stale shorter than min_refresh_interval", `identity_providers:
  - name: p
    issuer: https://issuer.example
    audiences: [api]
    keys: {max_stale: 30s, refresh_interval: 10s, min_refresh_interval: 45s, max_refresh_interval: 1h}
` + minimal, []string{`identity_providers[0].keys.max_stale: 30s is shorter than min_refresh_interval 45s`}},
		{"route without authentication", `routes:
  - name: closed
    match: {path_prefix: /}
    upstream: {targets: ["builtin:echo"]}
`, []string{`routes[0]: route "closed" has no authentication: add authenticate, or set public: true`}},
		{"route with an unknown provider and method", `identity_providers:
  - {name: p, issuer: "https://i.example", audiences: [a]}
routes:
  - name: r
    match: {path_prefix: /}
    authenticate: {methods: [jwt, magic], providers: [q]}
    upstream: {targets: ["builtin:echo"]}
`, []string{`routes[0].authenticate.methods[1]: "magic" is not a known method`, `routes[0].authenticate.providers[0]: unknown identity provider "q"`}},
		{"empty file", "", []string{`c.yaml: the file is empty`}},
		{"dpop settings", `
identity_providers:
  - name: idp
    issuer: https://idp.example
    audiences: [api]
    dpop:
      mode: sometimes
      algorithms: [ES256]
      max_age: 0s
      nonce: {secrets: [short], lifetime: 1s}
    certificate_bound: maybe
` + minimal, []string{`c.yaml:7:13: identity_providers[0].dpop.mode: "sometimes" is not one of: off, allowed, required`,
			`c.yaml:11:24: identity_providers[0].certificate_bound: "maybe" is not one of: optional, required`}},
		{"dpop checks", `
identity_providers:
  - name: idp
    issuer: https://idp.example
    audiences: [api]
    dpop:
      algorithms: [ES256, HS256]
      max_age: 0s
      nonce: {secrets: [short], lifetime: 1s}
dpop: {replay_cache: {max_entries: 10}}
` + minimal, []string{`identity_providers[0].dpop.algorithms[1]: "HS256" is not allowed for DPoP proofs`,
			`identity_providers[0].dpop.max_age: must be greater than 0`,
			`identity_providers[0].dpop.nonce.secrets[0]: must be at least 32 bytes`,
			`identity_providers[0].dpop.nonce.lifetime: must be at least 10s`,
			`dpop.replay_cache.max_entries: must be at least 1024`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if err == nil {
				t.Fatal("want an error, got none")
			}
			out := err.Error()
			if strings.Contains(out, "pw@") {
				t.Errorf("error output leaks URL credentials: %s", out)
			}
			rest := out
			for _, want := range tc.want {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("missing (or out of order) %q in:\n%s", want, out)
				}
				rest = rest[i+len(want):]
			}
			if errs, ok := AsErrors(err); !ok || len(errs) < len(tc.want) {
				t.Errorf("want >= %d located errors, got %d (%v)", len(tc.want), len(errs), ok)
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	lookup := env(map[string]string{"A": "x", "EMPTY": ""})
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "x", ""},
		{"pre-${A}-post", "pre-x-post", ""},
		{"${MISSING:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${EMPTY}", "", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"cost $5", "cost $5", ""},
		{"${MISSING}", "", "MISSING is not set"},
		{"${A", "", "unterminated"},
		{"${1BAD}", "", "invalid environment variable name"},
	} {
		got, err := expandEnv(tc.in, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandEnv(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEnvCannotInjectStructure(t *testing.T) {
	src := "log: {level: \"${LVL}\"}\n" + minimal
	_, _, err := Parse("c.yaml", []byte(src), env(map[string]string{"LVL": "info}\nadmin: {disabled: true"}))
	if err == nil || !strings.Contains(err.Error(), "is not one of") {
		t.Fatalf("want the whole value treated as one string, got %v", err)
	}
}

func TestByteSizeAndDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"64KiB", 64 << 10, true}, {"10 MiB", 10 << 20, true},
		{"1GB", 1e9, true}, {"2GiB", 2 << 30, true}, {"-1", 0, false}, {"1.5MiB", 0, false}, {"KiB", 0, false},
		{"99999999999GiB", 0, false},
	} {
		var b ByteSize
		err := b.parseScalar(tc.in)
		if (err == nil) != tc.ok || (tc.ok && int64(b) != tc.want) {
			t.Errorf("ByteSize(%q) = %d, %v; want %d ok=%v", tc.in, b, err, tc.want, tc.ok)
		}
	}
	if s := ByteSize(10 << 20).String(); s != "10MiB" {
		t.Errorf("String = %q", s)
	}
	var d Duration
	if err := d.parseScalar("1m30s"); err != nil || d.Std() != 90*time.Second {
		t.Errorf("Duration = %v, %v", d, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("routes: [{name: a, match: {path: /x/{id}}, upstream: {targets: [http://h]}}]"))
	f.Add([]byte("&a [*a]"))
	f.Add(aliasBomb(5))
	f.Add(aliasBomb(60))
	f.Add([]byte("a: &a [x,x,x,x]\nb: &b [*a,*a,*a,*a]\nroutes: &c [*b,*b,*b,*b]\npolicies: {p: {claims: {c: *a}}}\n"))
	f.Add([]byte("routes: [&r {name: a, tags: [&t x, *t, *t], authorize: {methods: [&m {methods: [*t]}, *m]}}, *r, *r]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Not only "no panic": every input is parsed within a time and
		// allocation budget proportional to its size.
		err, alloc, d := measureParse(data)
		if maxAlloc, maxTime := parseBudget(len(data)); alloc > maxAlloc || d > maxTime {
			t.Fatalf("Parse of %d bytes cost %d MiB in %v; the budget is %d MiB and %v",
				len(data), alloc>>20, d, maxAlloc>>20, maxTime)
		}
		if err == nil {
			cfg, _, _ := Parse("fuzz.yaml", data, env(nil))
			if len(cfg.Routes) == 0 {
				t.Fatal("a valid config must have routes")
			}
		}
	})
}

// TestClaimPathsStringOrList: claims.scopes takes one claim path or a
// list tried in order; an empty string keeps the default.
func TestClaimPathsStringOrList(t *testing.T) {
	provider := func(scopes string) string {
		return "identity_providers:\n  - name: p\n    issuer: https://i.example\n    audiences: [a]\n    claims: {scopes: " + scopes + "}\n" + minimal
	}
	for _, tc := range []struct {
		name, scopes string
		want         []string
		err          string
	}{
		{"string", "permissions", []string{"permissions"}, ""},
		{"list", "[permissions, scope]", []string{"permissions", "scope"}, ""},
		{"empty string keeps the default", `""`, nil, ""},
		{"empty list entry", `[permissions, ""]`, nil, "identity_providers[0].claims.scopes[1]: empty claim path"},
		{"mapping refused", "{a: b}", nil, "identity_providers[0].claims.scopes: expected a list, got a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("c.yaml", []byte(provider(tc.scopes)), env(nil))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := []string(cfg.IdentityProviders[0].Claims.Scopes); !slices.Equal(got, tc.want) {
				t.Fatalf("scopes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRequestHygieneConfig(t *testing.T) {
	cfg, _, err := Parse("min.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.RequestHygiene
	if !slices.Equal(h.AllowedMethods, []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) ||
		h.RepeatedSlashes != "refuse" || h.UnderscoreHeaders != "drop" {
		t.Fatalf("defaults %+v", h)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"lower-case method", "request_hygiene: {allowed_methods: [get]}\n" + minimal, `request_hygiene.allowed_methods[0]: "get" is not an upper-case HTTP method`},
		{"duplicate method", "request_hygiene: {allowed_methods: [GET, GET]}\n" + minimal, `request_hygiene.allowed_methods[1]: "GET" is listed twice`},
		{"empty list", "request_hygiene: {allowed_methods: []}\n" + minimal, `request_hygiene.allowed_methods: must list at least one method`},
		{"enum", "request_hygiene: {repeated_slashes: collapse}\n" + minimal, `"collapse" is not one of: refuse, merge`},
		{"underscore enum", "request_hygiene: {underscore_headers: allow}\n" + minimal, `"allow" is not one of: drop, refuse`},
		{"override without POST", `
routes:
  - name: a
    public: true
    method_override: true
    match: {path_prefix: /, methods: [GET]}
    upstream: {targets: ["builtin:echo"]}
`, `routes[0].method_override: only a POST may carry a method override`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
