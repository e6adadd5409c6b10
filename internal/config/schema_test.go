package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/clientcert/certtest"
)

var update = flag.Bool("update", false, "rewrite docs/gatehouse.schema.json from the Go types")

const schemaFile = "../../docs/gatehouse.schema.json"

// TestSchemaInSync fails when the Go config types change and the committed
// schema does not: run `go test ./internal/config -run TestSchemaInSync -update`.
func TestSchemaInSync(t *testing.T) {
	got := JSONSchema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the Go config types; run: go test ./internal/config -run TestSchemaInSync -update", schemaFile)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("gatehouse.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("gatehouse.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

// yamlToJSONValue turns YAML into the generic JSON value the validator takes.
func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsExamples validates every shipped example against the
// schema, and checks that the schema and the decoder agree on them.
func TestSchemaAcceptsExamples(t *testing.T) {
	s := compileSchema(t)
	mtlsDir := devCAFiles(t)
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "policy_cases") {
			continue // a policy test file, not a gateway config
		}
		if err := s.Validate(yamlToJSONValue(t, data)); err != nil {
			t.Errorf("%s: schema rejects it: %v", f, err)
		}
		if _, _, err := Parse(f, data, env(map[string]string{"GATEHOUSE_MTLS_DIR": mtlsDir})); err != nil {
			t.Errorf("%s: decoder rejects it: %v", f, err)
		}
	}
}

// TestSchemaRejects checks that the schema catches what the decoder catches
// structurally, so editors flag the same mistakes.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	for _, tc := range []struct{ name, src string }{
		{"unknown key", "routs: []\n" + minimal},
		{"unknown nested key", "admin: {adress: x}\n" + minimal},
		{"bad enum", "log: {level: loud}\n" + minimal},
		{"bad duration", "lifecycle: {drain_timeout: 10 seconds}\n" + minimal},
		{"list expected", "forwarding: {trusted_proxies: 10.0.0.1}\n" + minimal},
		{"route without name", "routes: [{match: {path: /}, upstream: {targets: [builtin:echo]}}]"},
		{"no routes", "log: {level: info}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Validate(yamlToJSONValue(t, []byte(tc.src))); err == nil {
				t.Fatal("schema accepted it")
			}
		})
	}
	if err := s.Validate(yamlToJSONValue(t, []byte("listeners: [{address: \"${ADDR}\", max_header_bytes: \"${MHB}\"}]\n"+minimal))); err != nil {
		t.Fatalf("schema must accept ${ENV} references: %v", err)
	}
}

// devCAFiles writes what examples/partner-mtls.yaml reads from
// GATEHOUSE_MTLS_DIR (the files gatehouse dev-ca makes) and returns the
// directory.
func devCAFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := certtest.NewCA(t, "dev")
	srv := ca.Issue(t, certtest.Options{CN: "localhost", DNS: []string{"localhost"}, Server: true})
	certtest.Write(t, dir, "ca.pem", ca.PEM())
	certtest.Write(t, dir, "ca.crl", ca.CRL(t, time.Now().Add(time.Hour)))
	certtest.Write(t, dir, "server.pem", srv.PEM())
	certtest.Write(t, dir, "server.key", srv.KeyPEM(t))
	return dir
}
