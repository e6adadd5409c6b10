package adminapi

import (
	"github.com/gatehouse/gatehouse/internal/problem"

	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

const docURL = "mem:///openapi.json"

// docValidator checks responses against the schemas the OpenAPI document
// gives for them.
type docValidator struct {
	doc map[string]any

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

func newDocValidator(t *testing.T) *docValidator {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
	if err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(docURL, v); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	return &docValidator{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (d *docValidator) lookup(ptr string) (any, bool) {
	var cur any = d.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (d *docValidator) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("compile schema %s: %v", ptr, err)
	}
	d.schemas[ptr] = s
	return s
}

// check validates r against the document's response for the operation.
func (d *docValidator) check(t *testing.T, method, pattern string, r *response) {
	t.Helper()
	ptr := "/paths/" + ptrEscape(pattern) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(r.status)
	resp, ok := d.lookup(ptr)
	if !ok {
		t.Errorf("%s %s: status %d is not documented", method, pattern, r.status)
		return
	}
	if ref, ok := resp.(map[string]any)["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
	}
	if r.status == http.StatusNoContent {
		if len(r.body) != 0 {
			t.Errorf("%s %s: 204 with a body", method, pattern)
		}
		return
	}
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	ptr += "/content/" + ptrEscape(mt) + "/schema"
	if _, ok := d.lookup(ptr); !ok {
		t.Errorf("%s %s %d: media type %q not documented", method, pattern, r.status, mt)
		return
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Errorf("%s %s: body is not JSON: %v", method, pattern, err)
		return
	}
	if err := d.schema(t, ptr).Validate(body); err != nil {
		t.Errorf("%s %s %d: body does not match the document (%s): %v\nbody: %s", method, pattern, r.status, ptr, err, r.body)
	}
}

// operations lists "METHOD path" for every operation in the document.
func (d *docValidator) operations() []string {
	var ops []string
	paths, _ := d.doc["paths"].(map[string]any)
	for path, item := range paths {
		for key := range item.(map[string]any) {
			switch key {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	d := newDocValidator(t)
	if d.doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", d.doc["openapi"])
	}
	var table []string
	for _, rt := range routes {
		table = append(table, rt.method+" "+rt.path)
	}
	slices.Sort(table)
	if got := d.operations(); !slices.Equal(got, table) {
		t.Errorf("document operations\n%q\ndiffer from the route table\n%q", got, table)
	}
	if _, ok := d.lookup("/components/securitySchemes/adminToken"); !ok {
		t.Error("no bearer security scheme")
	}
	// Every component schema compiles.
	for name := range d.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		d.schema(t, "/components/schemas/"+name)
	}
	// Every problem slug the API uses is described.
	for _, p := range []problem.Type{probInvalid, probUnauthorized, probNotFound, probConflict, probTooLarge, probMediaType, probInternal, probUnavailable, probDisabled} {
		if !bytes.Contains(openAPIDoc, []byte(p.Slug)) {
			t.Errorf("problem slug %q not in the document", p.Slug)
		}
	}
}

// testOpenAPICoversRoutes sends an authenticated request for every
// operation in the document and checks the mux serves it with the
// documented pattern.
func testOpenAPICoversRoutes(t *testing.T, f *fixture) {
	ctx := t.Context()
	h := New(Config{Service: f.svc, Revocations: f.rev, TokenHash: sha(testToken)}).(*api)
	for i, op := range f.docv.operations() {
		method, pattern, _ := strings.Cut(op, " ")
		c, err := f.svc.CreateConsumer(ctx, keymgmt.NewConsumer{Name: "cov-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		k, secret, err := f.svc.CreateKey(ctx, c.ID, keymgmt.NewKey{})
		if err != nil {
			t.Fatal(err)
		}
		rv, err := f.rev.Revoke(ctx, revocation.Request{Kind: revocation.KindJTI, Values: []string{"cov-" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		path := strings.NewReplacer("{consumer}", c.ID, "{key}", k.ID, "{revocation}", rv[0].ID).Replace(pattern)
		var body any
		switch op {
		case "POST /v1/revocations":
			body = map[string]any{"kind": "subject", "issuer": "https://idp.example", "values": []string{"alice"}, "reason": "left"}
		case "POST /v1/consumers":
			body = map[string]string{"name": "cov-new-" + strconv.Itoa(i)}
		case "POST /v1/key-lookup":
			body = map[string]string{"key": secret}
		}
		r := httptest.NewRequest(method, path, nil)
		if _, got := h.mux.Handler(r); got != op {
			t.Errorf("%s: mux pattern %q", op, got)
		}
		resp := f.req(method, path, testToken, body)
		if resp.status == http.StatusNotFound || resp.status == http.StatusMethodNotAllowed || resp.status >= 400 {
			t.Errorf("%s %s = %d: %s", method, path, resp.status, resp.body)
		}
		f.docv.check(t, method, pattern, resp)
	}
	// The document itself, without a token.
	resp := f.req(http.MethodGet, "/openapi.json", "", nil)
	if resp.status != http.StatusOK || !bytes.Equal(resp.body, openAPIDoc) || resp.header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /openapi.json = %d %q", resp.status, resp.header.Get("Content-Type"))
	}
}

// TestDocValidatorRejects makes sure the schema checks are not vacuous.
func TestDocValidatorRejects(t *testing.T) {
	d := newDocValidator(t)
	for _, tc := range []struct{ name, body string }{
		{"missing id", `{"name":"acme","created_at":"2030-01-01T00:00:00Z"}`},
		{"extra member", `{"id":"c_aaaaaaaaaaaaaaaa","name":"acme","created_at":"2030-01-01T00:00:00Z","hash":"x"}`},
		{"bad date", `{"id":"c_aaaaaaaaaaaaaaaa","name":"acme","created_at":"yesterday"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if d.schema(t, "/components/schemas/Consumer").Validate(v) == nil {
				t.Error("schema accepted an invalid consumer")
			}
		})
	}
}
