package config_test

// Reference tests: the lists in the documentation that mirror the code
// (configuration keys, problem types, audit reason codes and event types,
// admin endpoints, CLI commands) are compared with the code, so a new key,
// problem, reason, endpoint or command cannot land undocumented, and a
// documented one cannot outlive its code. See docs/CONTRIBUTING.md.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/problem"
)

func readPage(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// schemaKey is one key of the configuration file.
type schemaKey struct {
	path string // e.g. "routes[].upstream.timeouts.dial"
}

// schemaKeys lists every key of the configuration, walking the yaml tags of
// config.Config. A list adds "[]" to its key; a map of sections (policies)
// adds nothing, so its entries' keys read "policies.scopes". A section type
// met a second time (a policy under routes[].authorize, identity headers
// under routes[]) lists its own key but not its children again: they are
// documented where the type first appears.
func schemaKeys(seen map[reflect.Type]bool) []schemaKey {
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	var out []schemaKey
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				out = append(out, schemaKey{path + "[]"})
				if !seen[ft.Elem()] {
					walk(ft.Elem(), path+"[]")
				}
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
				out = append(out, schemaKey{path})
				if !seen[ft.Elem()] {
					walk(ft.Elem(), path)
				}
			case ft.Kind() == reflect.Struct:
				out = append(out, schemaKey{path})
				if !seen[ft] {
					walk(ft, path)
				}
			default:
				out = append(out, schemaKey{path})
			}
		}
		if t == reflect.TypeFor[config.Authenticate]() {
			// The registered methods' blocks (routes[].authenticate.<method>).
			for name, ot := range config.MethodOptionTypes() {
				out = append(out, schemaKey{prefix + "." + name})
				if !seen[ot] {
					walk(ot, prefix+"."+name)
				}
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	return out
}

var (
	headingRE = regexp.MustCompile("^#{2,4}\\s+`?([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)*)`?\\s*$")
	rowKeyRE  = regexp.MustCompile("^\\|\\s*`([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)*)`\\s*\\|")
)

// documentedKeys reads the key paths a configuration page documents: a
// heading that is a key path ("### routes[].match") documents that path,
// and a table row whose first cell is a key ("| `hosts` |") documents the
// key under the nearest such heading ("routes[].match.hosts"); a row may
// name a nested key ("| `store.type` |"). "[]" is ignored in comparisons.
func documentedKeys(page string) map[string]bool {
	out := map[string]bool{}
	section := ""
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "#") {
			section = ""
			if m := headingRE.FindStringSubmatch(line); m != nil {
				section = normKey(m[1])
				out[section] = true
			}
			continue
		}
		if m := rowKeyRE.FindStringSubmatch(line); m != nil && section != "" {
			out[section+"."+normKey(m[1])] = true
		}
	}
	// A documented key documents the sections it sits in.
	for k := range out {
		for i := strings.LastIndexByte(k, '.'); i > 0; i = strings.LastIndexByte(k[:i], '.') {
			out[k[:i]] = true
		}
	}
	return out
}

func normKey(k string) string { return strings.ReplaceAll(k, "[]", "") }

// TestEveryConfigKeyDocumented: each key of the configuration has a row
// (or heading) in docs/configuration.md, and each documented key exists.
func TestEveryConfigKeyDocumented(t *testing.T) {
	doc := documentedKeys(readPage(t, "docs/configuration.md"))
	known := map[string]bool{}
	for _, k := range schemaKeys(nil) {
		known[normKey(k.path)] = true
		if !doc[normKey(k.path)] {
			t.Errorf("docs/configuration.md does not document %s: add a row (key, type, default, description with its security effect) to the table of its section", k.path)
		}
	}
	for k := range doc {
		if !known[k] {
			t.Errorf("docs/configuration.md documents %s, which is not a configuration key", k)
		}
	}
}

// TestDocumentedKeysFindsMissingKey proves the key test can fail.
func TestDocumentedKeysFindsMissingKey(t *testing.T) {
	page := "## routes\n\n| key | x |\n|---|---|\n| `name` | x |\n\n### routes[].match\n\n| `hosts` | x |\n\n## api_keys\n\n| `store.type` | x |\n"
	doc := documentedKeys(page)
	for _, k := range []string{"routes", "routes.name", "routes.match", "routes.match.hosts", "api_keys.store", "api_keys.store.type"} {
		if !doc[k] {
			t.Errorf("%s not found as documented", k)
		}
	}
	for _, k := range []string{"routes.policy", "routes.match.path", "api_keys.store.dsn"} {
		if doc[k] {
			t.Errorf("%s found as documented, but the page does not list it", k)
		}
	}
}

// goFiles parses the non-test Go files under the given directories.
func goFiles(t *testing.T, dirs ...string) map[string]*ast.File {
	t.Helper()
	out := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			out[path] = f
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return typeName(x.X) + "." + x.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// problemType is a problem type the code defines.
type problemType struct{ slug, title string }

// problemTypes finds every problem type the code defines: each
// problem.Type composite literal, anywhere under internal/ and cmd/.
func problemTypes(t *testing.T) []problemType {
	var out []problemType
	for path, f := range goFiles(t, "internal", "cmd") {
		inProblem := filepath.Base(filepath.Dir(path)) == "problem"
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if tn := typeName(cl.Type); tn != "problem.Type" && !(inProblem && tn == "Type") {
				return true
			}
			var pt problemType
			for i, el := range cl.Elts {
				key, val := "", el
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					key, val = typeName(kv.Key), kv.Value
				} else {
					key = []string{"Slug", "Title"}[min(i, 1)]
					if i > 1 {
						key = ""
					}
				}
				if s, ok := stringLit(val); ok {
					switch key {
					case "Slug":
						pt.slug = s
					case "Title":
						pt.title = s
					}
				}
			}
			if pt.slug != "" {
				out = append(out, pt)
			}
			return true
		})
	}
	return out
}

// problemSlugs lists the slugs of problemTypes, sorted.
func problemSlugs(t *testing.T) []string {
	var out []string
	for _, pt := range problemTypes(t) {
		out = append(out, pt.slug)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestDocsProblemExamples: every problem+json body shown in the docs has
// only the members the code writes, and a type and title the code sends.
func TestDocsProblemExamples(t *testing.T) {
	types := problemTypes(t)
	seen := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, page)
		for i, line := range strings.Split(string(text), "\n") {
			if !strings.HasPrefix(line, `{"type":"urn:gatehouse:problem:`) {
				continue
			}
			seen++
			var d problem.Details
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				t.Errorf("%s:%d: problem example: %v", rel, i+1, err)
				continue
			}
			slug := strings.TrimPrefix(d.Type, "urn:gatehouse:problem:")
			if !slices.Contains(types, problemType{slug, d.Title}) {
				t.Errorf("%s:%d: problem example with type %s and title %q: the code sends no such pair", rel, i+1, d.Type, d.Title)
			}
		}
	}
	if seen < 3 {
		t.Fatalf("only %d problem examples found", seen)
	}
}

// TestEveryProblemTypeDocumented: each problem type the code can send is
// in the catalogue of docs/errors.md, as a table row.
func TestEveryProblemTypeDocumented(t *testing.T) {
	page := readPage(t, "docs/errors.md")
	slugs := problemSlugs(t)
	if len(slugs) < 10 {
		t.Fatalf("found only %d problem types in the code: %v", len(slugs), slugs)
	}
	for _, s := range slugs {
		if !strings.Contains(page, "| `urn:gatehouse:problem:"+s+"` |") {
			t.Errorf("docs/errors.md has no catalogue row for urn:gatehouse:problem:%s", s)
		}
	}
	types := problemTypes(t)
	rowRE := regexp.MustCompile("(?m)^\\| `urn:gatehouse:problem:([a-z0-9-]+)` \\| \\d+ \\| ([^|]+?) \\|")
	for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
		if !slices.Contains(types, problemType{m[1], m[2]}) {
			t.Errorf("docs/errors.md: the row of %s has the title %q, which the code does not send with it", m[1], m[2])
		}
	}
	for _, m := range regexp.MustCompile("urn:gatehouse:problem:([a-z0-9-]+)").FindAllStringSubmatch(page, -1) {
		if !slices.Contains(slugs, m[1]) {
			t.Errorf("docs/errors.md names urn:gatehouse:problem:%s, which the code never sends", m[1])
		}
	}
}

// TestProblemSlugHasOneTitle: docs/errors.md promises that a type keeps
// one title; the proxy and the admin API must not send one slug with two.
func TestProblemSlugHasOneTitle(t *testing.T) {
	titles := map[string]string{}
	for _, pt := range problemTypes(t) {
		if prev, ok := titles[pt.slug]; ok && prev != pt.title {
			t.Errorf("problem type %s is sent with two titles: %q and %q", pt.slug, prev, pt.title)
		}
		titles[pt.slug] = pt.title
	}
}

// auditCodes finds the reason codes (constants of a type named Reason, and
// the literal reasons the pipeline writes) and the event types (constants
// named Type… in the audit and keymgmt packages).
func auditCodes(t *testing.T) (reasons, events []string) {
	for path, f := range goFiles(t, "internal") {
		pkg := filepath.Base(filepath.Dir(path))
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.ValueSpec:
				for i, name := range x.Names {
					if i >= len(x.Values) {
						break
					}
					s, ok := stringLit(x.Values[i])
					if !ok {
						continue
					}
					tn := typeName(x.Type)
					switch {
					case tn == "Reason" || strings.HasSuffix(tn, ".Reason"):
						reasons = append(reasons, s)
					case (pkg == "audit" || pkg == "keymgmt") && strings.HasPrefix(name.Name, "Type"):
						events = append(events, s)
					}
				}
			case *ast.AssignStmt:
				// ev.Outcome, ev.Reason = audit.OutcomeError, "internal_error"
				for i, lhs := range x.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reason" && i < len(x.Rhs) {
						if s, ok := stringLit(x.Rhs[i]); ok {
							reasons = append(reasons, s)
						}
					}
				}
			}
			return true
		})
	}
	sort.Strings(reasons)
	sort.Strings(events)
	return slices.Compact(reasons), slices.Compact(events)
}

// TestEveryAuditCodeDocumented: each reason code and event type is a row
// of a table in docs/audit.md.
func TestEveryAuditCodeDocumented(t *testing.T) {
	page := readPage(t, "docs/audit.md")
	reasons, events := auditCodes(t)
	if len(reasons) < 30 || len(events) < 8 {
		t.Fatalf("found only %d reasons and %d event types in the code", len(reasons), len(events))
	}
	for _, r := range reasons {
		if !strings.Contains(page, "| `"+r+"` |") {
			t.Errorf("docs/audit.md has no table row for the reason code %s", r)
		}
	}
	for _, e := range events {
		if !strings.Contains(page, "| `"+e+"` |") {
			t.Errorf("docs/audit.md has no table row for the event type %s", e)
		}
	}
}

// adminEndpoints lists "METHOD /path" of the admin listener: the fixed
// endpoints of internal/gateway and the operations of the OpenAPI document
// (which internal/adminapi's own test holds equal to its route table).
func adminEndpoints(t *testing.T) []string {
	var out []string
	patRE := regexp.MustCompile(`\.Handle(?:Func)?\("([A-Z]+) (/[^"]*)"`)
	for _, name := range []string{"admin.go", "adminapi.go"} {
		src := readPage(t, "internal/gateway/"+name)
		for _, m := range patRE.FindAllStringSubmatch(src, -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(readPage(t, "internal/adminapi/openapi.json")), &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestEveryAdminEndpointDocumented: docs/operations.md names each admin
// endpoint as `METHOD /path`, and names no endpoint that does not exist.
func TestEveryAdminEndpointDocumented(t *testing.T) {
	page := readPage(t, "docs/operations.md")
	eps := adminEndpoints(t)
	if len(eps) < 12 {
		t.Fatalf("found only %d admin endpoints: %v", len(eps), eps)
	}
	for _, ep := range eps {
		if !strings.Contains(page, "`"+ep+"`") {
			t.Errorf("docs/operations.md does not list the admin endpoint `%s`", ep)
		}
	}
	for _, m := range regexp.MustCompile("`((?:GET|HEAD|POST|PUT|PATCH|DELETE) /[^`]*)`").FindAllStringSubmatch(page, -1) {
		if !slices.Contains(eps, m[1]) && !strings.HasPrefix(m[1], "HEAD ") {
			t.Errorf("docs/operations.md lists `%s`, which the admin listener does not serve", m[1])
		}
	}
}

// TestEveryCommandDocumented: each command and sub-command of the CLI is
// in the README's command table.
func TestEveryCommandDocumented(t *testing.T) {
	readme := readPage(t, "README.md")
	caseRE := regexp.MustCompile(`case "([a-z][a-z-]*)"(?:, "[a-z-]+")*:`)
	var cmds []string
	for _, m := range caseRE.FindAllStringSubmatch(readPage(t, "cmd/gatehouse/main.go"), -1) {
		if m[1] != "help" {
			cmds = append(cmds, m[1])
		}
	}
	if len(cmds) < 9 {
		t.Fatalf("found only %d commands in main.go: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		if !strings.Contains(readme, "| `gatehouse "+c) {
			t.Errorf("README.md's command table has no row for gatehouse %s", c)
		}
	}
	subRE := regexp.MustCompile(`Flags\("([a-z]+ [a-z-]+)"`)
	files, err := filepath.Glob(filepath.Join(repoRoot, "cmd/gatehouse/*.go"))
	if err != nil {
		t.Fatal(err)
	}
	subs := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range subRE.FindAllStringSubmatch(string(b), -1) {
			subs++
			if !commandRowHas(readme, m[1]) {
				t.Errorf("README.md's command table has no row for gatehouse %s", m[1])
			}
		}
	}
	if subs < 10 {
		t.Fatalf("found only %d sub-commands", subs)
	}
}

// commandRowHas reports whether a row of the README's command table names
// "cmd sub", also in the short form "| `gatehouse keys create\|list …` |"
// (the "\|" escapes a "|" inside a Markdown table cell).
func commandRowHas(readme, cmdSub string) bool {
	cmd, sub, _ := strings.Cut(cmdSub, " ")
	for _, line := range strings.Split(readme, "\n") {
		rest, ok := strings.CutPrefix(line, "| `gatehouse "+cmd+" ")
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(strings.ReplaceAll(rest, "\\|", "|"), " ")
		if slices.Contains(strings.Split(strings.TrimSuffix(first, "`"), "|"), sub) {
			return true
		}
	}
	return false
}

// anchorOf is GitHub's anchor for a heading: lower case, punctuation other
// than '-' and '_' dropped, spaces turned into '-'.
func anchorOf(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && unicode.IsLetter(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a Markdown page's headings (outside code).
func anchors(page string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if !inCode && strings.HasPrefix(line, "#") {
			out[anchorOf(strings.ReplaceAll(strings.TrimLeft(line, "#"), "`", ""))] = true
		}
	}
	return out
}

// TestDocsLinksResolve: every relative link of README.md and docs/ names a
// file that exists and, with a #fragment, a heading of that file.
func TestDocsLinksResolve(t *testing.T) {
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, page)
		for _, m := range linkRE.FindAllStringSubmatch(string(text), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(link, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), file)
			}
			info, err := os.Stat(target)
			if err != nil {
				t.Errorf("%s: link %s: %v", rel, link, err)
				continue
			}
			if frag == "" || info.IsDir() || !strings.HasSuffix(target, ".md") {
				continue
			}
			b, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(b))[frag] {
				t.Errorf("%s: link %s: no heading with the anchor #%s", rel, link, frag)
			}
		}
	}
}

// TestDocsAuditExamples: every JSON example of an audit event in the docs
// (a ```json line with "schema_version") has only the fields of
// audit.Event, a known event type and a reason code the code defines.
func TestDocsAuditExamples(t *testing.T) {
	reasons, events := auditCodes(t)
	// Lifecycle events repeat their action as the reason.
	for _, e := range events {
		if action, ok := strings.CutPrefix(e, "apikey."); ok {
			reasons = append(reasons, action)
		}
	}
	seen := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, page)
		bs, err := blocks(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.lang != "json" {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(b.body), "\n") {
				if !strings.Contains(line, `"schema_version"`) {
					continue
				}
				seen++
				var ev audit.Event
				dec := json.NewDecoder(strings.NewReader(line))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&ev); err != nil {
					t.Errorf("%s:%d: audit event example: %v", rel, b.line, err)
					continue
				}
				if ev.SchemaVersion != audit.SchemaVersion || !slices.Contains(events, ev.Type) || !slices.Contains(reasons, ev.Reason) {
					t.Errorf("%s:%d: audit event example with schema_version %q, event %q, reason %q: not what the code writes", rel, b.line, ev.SchemaVersion, ev.Type, ev.Reason)
				}
				if !slices.Contains([]string{audit.OutcomeAllow, audit.OutcomeDeny, audit.OutcomeError}, ev.Outcome) {
					t.Errorf("%s:%d: audit event example with outcome %q", rel, b.line, ev.Outcome)
				}
			}
		}
	}
	if seen < 5 {
		t.Fatalf("only %d audit event examples found", seen)
	}
}
