package config_test

// The documentation test: every fenced YAML block in README.md and docs/*.md
// is checked against the code, so a page cannot describe last month's
// configuration. The conventions are in docs/CONTRIBUTING.md:
//
//   - A ```yaml block with a top-level routes key is a complete
//     configuration: it must pass config.Parse and compile (pipeline.Build,
//     as `gatehouse validate` does).
//   - A ```yaml block whose top-level keys are all configuration keys, but
//     with no routes, is a top-level fragment: it must pass the same checks
//     once a stub public route is added.
//   - Any other block is a fragment of a section. A marker on the line
//     before the fence says where it sits: <!-- doctest: fragment PATH -->
//     (PATH is a key path such as routes[] or identity_providers[].claims,
//     "[]" stepping into a list element; identity_providers is the list
//     itself; no PATH is the whole file, without validation). It must decode
//     there with the strict decoder (unknown keys, types, accepted values),
//     without the cross-checks of validation. Without a marker, the fragment
//     must decode at some section (or list of sections) that has every one
//     of its top-level keys; a fragment whose keys fit no section fails.
//   - <!-- doctest: invalid --> marks a deliberately broken configuration:
//     it must fail, and when the next block is ```text, that block must be
//     exactly the errors `gatehouse validate` prints for it as gatehouse.yaml.
//   - <!-- doctest: cases CONFIG --> marks a `gatehouse policy test` cases
//     file: it must load, and every case must pass against CONFIG (a path
//     from the repository root, or "previous": the last configuration block
//     of the same page).
//   - <!-- doctest: skip REASON --> leaves a block unchecked (say why).
//   - Every fence names its language; blocks that are not configurations
//     (output, shell, JSON, HTTP) use another language than yaml.
//
// ${VAR} references resolve to plausible stand-ins (see docEnv), and file
// paths that validation or compilation opens (TLS files, static key files,
// log outputs) are replaced by generated files, so the snippets can keep
// their realistic paths.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/policytest"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// docPages lists README.md and every page under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages under docs/: %v", err)
	}
	return append([]string{filepath.Join(repoRoot, "README.md")}, pages...)
}

// TestDocsYAMLSnippets checks every YAML block of the documentation.
func TestDocsYAMLSnippets(t *testing.T) {
	c := newSnippetChecker(t, repoRoot)
	checked := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, page)
		n, errs := c.checkPage(rel, text)
		checked += n
		for _, err := range errs {
			t.Error(err)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d YAML blocks checked: is the extraction broken?", checked)
	}
}

// TestSnippetCheckerCatchesDrift proves the checker fails on the mistakes
// it exists for, and passes what is right.
func TestSnippetCheckerCatchesDrift(t *testing.T) {
	const route = "routes:\n  - name: r\n    public: true\n    match: {path: /}\n    upstream: {targets: [\"builtin:echo\"]}\n"
	for _, tc := range []struct {
		name    string
		md      string
		wantErr string // "" means the page must pass
	}{
		{"complete config", "```yaml\n" + route + "```\n", ""},
		{"unknown key in a complete config", "```yaml\nlistner: []\n" + route + "```\n", `unknown key "listner"`},
		{"unknown nested key", "```yaml\nroutes:\n  - name: r\n    public: true\n    match: {path: /, methd: [GET]}\n    upstream: {targets: [\"builtin:echo\"]}\n```\n", `unknown key "methd"`},
		{"config that fails validation", "```yaml\nroutes:\n  - name: r\n    match: {path: /}\n    upstream: {targets: [\"builtin:echo\"]}\n```\n", "has no authentication"},
		{"bad CEL is found by compiling", "```yaml\nidentity_providers: [{name: i, issuer: https://i.example, audiences: [a]}]\nroutes:\n  - name: r\n    authenticate: {methods: [jwt]}\n    authorize: {expression: 'identity.nope =='}\n    match: {path: /}\n    upstream: {targets: [\"builtin:echo\"]}\n```\n", "expression"},
		{"top-level fragment", "```yaml\nlog: {level: debug}\n```\n", ""},
		{"top-level fragment with a bad value", "```yaml\nlog: {level: loud}\n```\n", `"loud" is not one of`},
		{"unknown key in a top-level fragment", "```yaml\naccess_log: {redact: [x]}\n```\n", `unknown key "redact"`},
		{"marked fragment", "<!-- doctest: fragment routes[] -->\n```yaml\nauthenticate: {methods: [jwt], realm: r}\n```\n", ""},
		{"unknown key in a marked fragment", "<!-- doctest: fragment routes[] -->\n```yaml\nauthenticate: {methods: [jwt], realms: r}\n```\n", `unknown key "realms"`},
		{"fragment marked at the wrong place", "<!-- doctest: fragment identity_providers[] -->\n```yaml\nauthenticate: {methods: [jwt]}\n```\n", `unknown key "authenticate"`},
		{"list fragment", "<!-- doctest: fragment identity_providers -->\n```yaml\n- name: a\n  issuer: https://a.example\n  audiences: [x]\n  claims: {subjct: sub}\n```\n", `unknown key "subjct"`},
		{"unmarked fragment placed by its keys", "```yaml\nauthenticate: {methods: [jwt]}\n```\n", ""},
		{"unmarked list fragment placed by its keys", "```yaml\n- name: a\n  issuer: https://a.example\n  audiences: [x]\n```\n", ""},
		{"unmarked fragment with a key of no section", "```yaml\nauthenticate: {methods: [jwt]}\nrealmz: x\n```\n", "no configuration section has all of the keys"},
		{"unmarked fragment with a nested unknown key", "```yaml\nauthenticate: {methods: [jwt], realmz: x}\n```\n", `unknown key "realmz"`},
		{"unmarked list fragment with an unknown key", "```yaml\n- name: a\n  issuer: https://a.example\n  audiencez: [x]\n```\n", "no configuration section"},
		{"scalar block", "```yaml\njust text\n```\n", "marker"},
		{"unknown marker path", "<!-- doctest: fragment routes[].nothing -->\n```yaml\na: b\n```\n", `unknown key "nothing"`},
		{"fence without a language", "```\nroutes: []\n```\n", "names no language"},
		{"invalid block that is valid", "<!-- doctest: invalid -->\n```yaml\n" + route + "```\n", "marked invalid"},
		{"invalid block with the wrong output", "<!-- doctest: invalid -->\n```yaml\nlistner: []\n" + route + "```\n\n```text\ngatehouse.yaml:1:1: something else\n1 error(s)\n```\n", "differs from what validate prints"},
		{"invalid block with its output", "<!-- doctest: invalid -->\n```yaml\nlistner: []\n" + route + "```\n\n```text\ngatehouse.yaml:1:1: listner: unknown key \"listner\" (did you mean \"listeners\"?)\n1 error(s)\n```\n", ""},
		{"cases against the previous config", "```yaml\n" + route + "```\n<!-- doctest: cases previous -->\n```yaml\ncases:\n  - {name: ok, request: {path: /}, expect: {status: 200}}\n```\n", ""},
		{"failing case", "```yaml\n" + route + "```\n<!-- doctest: cases previous -->\n```yaml\ncases:\n  - {name: wrong, request: {path: /}, expect: {status: 401}}\n```\n", "wrong"},
		{"unknown key in cases", "```yaml\n" + route + "```\n<!-- doctest: cases previous -->\n```yaml\ncases:\n  - {name: x, request: {path: /}, expect: {stauts: 200}}\n```\n", "stauts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSnippetChecker(t, repoRoot)
			_, errs := c.checkPage("test.md", []byte(tc.md))
			err := errors.Join(errs...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want no error, got:\n%v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want an error containing %q, got none", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want an error containing %q, got:\n%v", tc.wantErr, err)
			}
		})
	}
}

// block is one fenced code block of a page.
type block struct {
	line   int    // line of the opening fence, 1-based
	lang   string // the fence's info string, first word
	marker string // the doctest marker on the line before, without "doctest:"
	body   string
}

var markerRE = regexp.MustCompile(`^<!--\s*doctest:\s*(.*?)\s*-->$`)

// blocks extracts the fenced blocks of a Markdown page. Fences may be
// indented (inside list items); the indentation is removed from the body.
func blocks(text []byte) ([]block, error) {
	var out []block
	var cur *block
	indent := ""
	prev := "" // last non-blank line outside a block
	for i, line := range strings.Split(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if trimmed == "```" {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.body += strings.TrimPrefix(line, indent) + "\n"
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			lang, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), " ")
			cur = &block{line: i + 1, lang: lang}
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
			if m := markerRE.FindStringSubmatch(prev); m != nil {
				cur.marker = m[1]
			}
			continue
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	if cur != nil {
		return out, fmt.Errorf("line %d: fence not closed", cur.line)
	}
	return out, nil
}

// snippetChecker checks the blocks of pages; it keeps the generated files
// that stand in for paths named in snippets.
type snippetChecker struct {
	root              string
	certFile, keyFile string // a certificate and its key
	pubKeyFile        string // a PEM public key, for static_keys.files
	caFile, crlFile   string // a client-certificate CA and its CRL
	logFile           string // for access_log and audit outputs
}

func newSnippetChecker(t *testing.T, root string) *snippetChecker {
	t.Helper()
	dir := t.TempDir()
	c := &snippetChecker{
		root:       root,
		certFile:   filepath.Join(dir, "cert.pem"),
		keyFile:    filepath.Join(dir, "key.pem"),
		pubKeyFile: filepath.Join(dir, "pub.pem"),
		logFile:    filepath.Join(dir, "out.log"),
		caFile:     filepath.Join(dir, "ca.pem"),
		crlFile:    filepath.Join(dir, "ca.crl"),
	}
	ca := certtest.NewCA(t, "doctest-ca")
	certtest.Write(t, dir, "ca.pem", ca.PEM())
	certtest.Write(t, dir, "ca.crl", ca.CRL(t, time.Now().Add(time.Hour)))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "doctest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"doctest"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{c.certFile, "CERTIFICATE", der}, {c.keyFile, "EC PRIVATE KEY", keyDER}, {c.pubKeyFile, "PUBLIC KEY", pubDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// docEnv resolves every ${VAR} of a snippet to a plausible value, chosen
// by the variable's name.
func docEnv(name string) (string, bool) {
	n := strings.ToUpper(name)
	switch {
	case strings.Contains(n, "SESSION_KEY"):
		return "ZGV2LW9ubHkta2V5LW5ldmVyLXVzZS1pbi1wcm9kISE", true // 32 bytes, base64
	case strings.Contains(n, "SECRET"), strings.Contains(n, "PEPPER"):
		return strings.Repeat("s", 64), true
	case strings.Contains(n, "DSN"):
		return "postgres://gatehouse@127.0.0.1:5432/gatehouse", true
	case strings.Contains(n, "ADDR"):
		return "127.0.0.1:0", true
	case strings.Contains(n, "URL"), strings.Contains(n, "ISSUER"):
		return "https://env.example.com", true
	case strings.Contains(n, "HASH"):
		return "sha256:" + strings.Repeat("0", 64), true
	}
	return "doctest-value", true
}

// checkPage checks every block of one page and returns how many YAML
// blocks it checked and what is wrong.
func (c *snippetChecker) checkPage(name string, text []byte) (int, []error) {
	bs, err := blocks(text)
	if err != nil {
		return 0, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var errs []error
	fail := func(b block, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, b.line, fmt.Sprintf(format, args...)))
	}
	var lastConfig *parsedConfig
	checked := 0
	for i, b := range bs {
		if b.lang == "" {
			fail(b, "the fence names no language: use ```yaml for configuration and ```text, ```sh, ```json … for the rest")
			continue
		}
		if b.lang != "yaml" && b.lang != "yml" {
			continue
		}
		checked++
		kind, arg, _ := strings.Cut(b.marker, " ")
		switch kind {
		case "skip":
			if strings.TrimSpace(arg) == "" {
				fail(b, "doctest: skip needs a reason")
			}
		case "invalid":
			got, err := c.invalidOutput(b.body)
			if err != nil {
				fail(b, "%v", err)
				break
			}
			if i+1 < len(bs) && bs[i+1].lang == "text" && bs[i+1].body != got {
				fail(b, "the output shown at line %d differs from what validate prints:\n%s", bs[i+1].line, got)
			}
		case "cases":
			cfg := lastConfig
			if arg != "previous" {
				var err error
				if cfg, err = c.loadConfigFile(arg); err != nil {
					fail(b, "%v", err)
					break
				}
			}
			if cfg == nil {
				fail(b, "cases previous: no configuration block before this one")
				break
			}
			if err := runCases(cfg, b.body); err != nil {
				fail(b, "%v", err)
			}
		case "fragment":
			if err := config.DecodeAt(name, []byte(b.body), strings.TrimSpace(arg), docEnv); err != nil {
				fail(b, "fragment at %q: %v", arg, err)
			}
		case "":
			pc, err := c.checkUnmarked(b.body)
			if err != nil {
				fail(b, "%v", err)
			}
			if pc != nil {
				lastConfig = pc
			}
		default:
			fail(b, "unknown doctest marker %q", b.marker)
		}
	}
	return checked, errs
}

// parsedConfig is a configuration that passed, for the cases that follow.
type parsedConfig struct {
	cfg  *config.Config
	file *config.File
}

// stubRoute completes a top-level fragment into a configuration.
const stubRoute = `
routes:
  - name: doctest-stub
    public: true
    match: {path: /doctest-stub}
    upstream: {targets: ["builtin:echo"]}
`

// checkUnmarked checks a block without marker: a complete configuration,
// or a top-level fragment, which must be valid once a route is added.
func (c *snippetChecker) checkUnmarked(body string) (*parsedConfig, error) {
	var top yaml.Node
	if err := yaml.Unmarshal([]byte(body), &top); err != nil {
		return nil, fmt.Errorf("invalid YAML: %v", err)
	}
	if top.Kind == 0 || len(top.Content) == 0 {
		return nil, nil // only comments (a modeline): nothing to check
	}
	m := top.Content[0]
	if m.Kind == yaml.MappingNode {
		for i := 0; i < len(m.Content); i += 2 {
			if m.Content[i].Value == "routes" {
				return c.checkConfig(body) // complete: Parse reports unknown keys
			}
		}
		top := true
		for i := 0; i < len(m.Content); i += 2 {
			top = top && topLevelKeys[m.Content[i].Value]
		}
		if top {
			return c.checkConfig(body + stubRoute)
		}
	}
	return nil, placeFragment(body, m)
}

// placeFragment checks an unmarked fragment that is not top-level: it must
// decode at some section of the configuration that has every one of its
// keys (a list fragment: at a list of sections). A marker names the place
// exactly; without one, a fragment whose keys fit no section is an error.
func placeFragment(body string, n *yaml.Node) error {
	var keys []string
	list := n.Kind == yaml.SequenceNode
	switch {
	case n.Kind == yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
	case list && len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode:
		for i := 0; i < len(n.Content[0].Content); i += 2 {
			keys = append(keys, n.Content[0].Content[i].Value)
		}
	default:
		return errors.New("not a mapping or a list of mappings: add a <!-- doctest: fragment PATH --> marker naming where it sits")
	}
	var firstErr error
	tried := 0
	for _, pl := range schemaPlaces() {
		if pl.list != list || !pl.hasAll(keys) {
			continue
		}
		tried++
		err := config.DecodeAt("fragment", []byte(body), pl.path, docEnv)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("decoded at %s: %w", pl.path, err)
		}
	}
	if tried == 0 {
		return fmt.Errorf("no configuration section has all of the keys %v: fix the keys, or add a <!-- doctest: fragment PATH --> marker naming where the fragment sits", keys)
	}
	return firstErr
}

// place is a section of the configuration a fragment may sit at.
type place struct {
	path string // for DecodeAt
	list bool   // a list of sections
	keys map[string]bool
}

func (p place) hasAll(keys []string) bool {
	for _, k := range keys {
		if !p.keys[k] {
			return false
		}
	}
	return len(keys) > 0
}

// schemaPlaces lists every section of the configuration (structs, and
// lists of structs), with their keys.
func schemaPlaces() []place {
	var out []place
	keysOf := func(t reflect.Type) map[string]bool {
		m := map[string]bool{}
		for i := 0; i < t.NumField(); i++ {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
				m[name] = true
			}
		}
		return m
	}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				out = append(out, place{path: p, keys: keysOf(ft)})
				walk(ft, p)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				out = append(out, place{path: p, list: true, keys: keysOf(ft.Elem())})
				out = append(out, place{path: p + "[]", keys: keysOf(ft.Elem())})
				walk(ft.Elem(), p+"[]")
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	return out
}

// topLevelKeys are the keys of config.Config.
var topLevelKeys = func() map[string]bool {
	out := map[string]bool{}
	for _, k := range schemaKeys(nil) {
		if !strings.Contains(k.path, ".") {
			out[strings.TrimSuffix(k.path, "[]")] = true
		}
	}
	return out
}()

// checkConfig parses and compiles a configuration as `gatehouse validate`
// does, after replacing the files it names by generated ones.
func (c *snippetChecker) checkConfig(body string) (*parsedConfig, error) {
	data, err := c.withGeneratedFiles([]byte(body))
	if err != nil {
		return nil, err
	}
	cfg, file, err := config.Parse("gatehouse.yaml", data, docEnv)
	if err != nil {
		return nil, fmt.Errorf("config.Parse:\n%v\n(as checked:\n%s)", err, data)
	}
	plan, err := pipeline.Build(cfg, file, buildOptions())
	if err != nil {
		return nil, fmt.Errorf("pipeline.Build: %v\n(as checked:\n%s)", err, data)
	}
	plan.Close()
	return &parsedConfig{cfg: cfg, file: file}, nil
}

// buildOptions compile a plan offline: no output, no store, and an HTTP
// client that fails every key fetch at once instead of reaching the
// providers named in the snippets.
func buildOptions() pipeline.Options {
	noNetwork := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("doctest: no network")
	})}
	return pipeline.Options{Stdout: io.Discard, Stderr: io.Discard, HTTPClient: noNetwork, Validating: true}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// invalidOutput returns what `gatehouse validate` prints for a block that
// must be invalid, or an error if it is valid.
func (c *snippetChecker) invalidOutput(body string) (string, error) {
	cfg, file, err := config.Parse("gatehouse.yaml", []byte(body), docEnv)
	if err == nil {
		plan, berr := pipeline.Build(cfg, file, buildOptions())
		if berr == nil {
			plan.Close()
			return "", errors.New("marked invalid, but it is a valid configuration")
		}
		err = berr
	}
	es, ok := config.AsErrors(err)
	if !ok {
		return err.Error() + "\n", nil
	}
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Error() + "\n")
	}
	fmt.Fprintf(&b, "%d error(s)\n", len(es))
	return b.String(), nil
}

// loadConfigFile checks a configuration file of the repository.
func (c *snippetChecker) loadConfigFile(rel string) (*parsedConfig, error) {
	data, err := os.ReadFile(filepath.Join(c.root, rel))
	if err != nil {
		return nil, err
	}
	return c.checkConfig(string(data))
}

// runCases loads a cases file and runs it against a configuration.
func runCases(pc *parsedConfig, body string) error {
	f, err := os.CreateTemp("", "doctest-cases-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(body); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cases, err := policytest.LoadCases(f.Name())
	if err != nil {
		return err
	}
	rep, err := policytest.Run(pc.cfg, pc.file, cases)
	if err != nil {
		return err
	}
	if rep.Failed() > 0 {
		var b bytes.Buffer
		_ = rep.Print(&b)
		return fmt.Errorf("%d case(s) fail:\n%s", rep.Failed(), b.String())
	}
	return nil
}

// withGeneratedFiles replaces the paths a configuration makes Gatehouse
// open (TLS files of listeners, upstreams and identity providers, static
// key files, log outputs) by generated files.
func (c *snippetChecker) withGeneratedFiles(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %v", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return data, nil
	}
	changed := false
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind == yaml.AliasNode {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], path+"."+n.Content[i].Value)
			}
		case yaml.SequenceNode:
			for _, item := range n.Content {
				walk(item, path+"[]")
			}
		case yaml.ScalarNode:
			replace := ""
			switch path {
			case ".listeners[].tls.cert_file", ".redis.tls.cert_file", ".redis.tls.ca_file":
				replace = c.certFile
			case ".listeners[].tls.key_file", ".redis.tls.key_file":
				replace = c.keyFile
			case ".listeners[].tls.client_certificates.ca_files[]", ".listeners[].forwarded_client_certificates.ca_files[]",
				".routes[].upstream.tls.ca_files[]", ".identity_providers[].tls.ca_files[]":
				replace = c.caFile
			case ".routes[].upstream.tls.cert_file", ".identity_providers[].tls.cert_file":
				replace = c.certFile
			case ".routes[].upstream.tls.key_file", ".identity_providers[].tls.key_file":
				replace = c.keyFile
			case ".listeners[].tls.client_certificates.crl_files[]", ".listeners[].forwarded_client_certificates.crl_files[]":
				replace = c.crlFile
			case ".identity_providers[].static_keys.files[]":
				replace = c.pubKeyFile
			case ".access_log.output", ".audit.output":
				if n.Value != "stdout" && n.Value != "stderr" {
					replace = c.logFile
				}
			}
			if replace != "" {
				n.Value, n.Style, changed = replace, 0, true
			}
		}
	}
	walk(doc.Content[0], "")
	if !changed {
		return data, nil
	}
	return yaml.Marshal(doc.Content[0])
}
