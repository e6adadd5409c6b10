package config

import (
	"encoding/json"
	"reflect"
	"strings"
)

// schemaObject is a JSON Schema node. A map keeps the generator short;
// encoding/json sorts keys, so the output is stable.
type schemaObject map[string]any

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// envRef matches a value written as a ${ENV} reference, allowed wherever a
// scalar is, because substitution happens before the value is typed.
var envRef = schemaObject{"type": "string", "pattern": `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`}

// JSONSchema returns the JSON Schema (draft 2020-12) of the configuration
// file, generated from the Go types and their desc/enum tags so the two
// cannot drift; docs/gatehouse.schema.json is this output, checked by a test.
func JSONSchema() []byte {
	root := schemaFor(reflect.TypeFor[Config]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "urn:gatehouse:config:v1"
	root["title"] = "Gatehouse configuration"
	root["description"] = "gatehouse.yaml: listeners, routes and upstreams. See docs/configuration.md."
	root["required"] = []string{"routes"}
	root["$defs"] = schemaObject{"env": envRef}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic("config: schema does not marshal: " + err.Error())
	}
	return append(out, '\n')
}

func orEnv(s schemaObject) schemaObject {
	return schemaObject{"anyOf": []any{s, schemaObject{"$ref": "#/$defs/env"}}}
}

func schemaFor(t reflect.Type) schemaObject {
	switch t {
	case durationType:
		return orEnv(schemaObject{"type": "string", "pattern": `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`})
	case byteSizeType:
		return schemaObject{"anyOf": []any{
			schemaObject{"type": "integer", "minimum": 0},
			schemaObject{"type": "string", "pattern": `^[0-9]+\s*(B|KB|MB|GB|KiB|MiB|GiB)?$`},
			schemaObject{"$ref": "#/$defs/env"},
		}}
	}
	if t.Kind() == reflect.Slice && t.Implements(oneOrManyType) {
		return schemaObject{"anyOf": []any{schemaFor(t.Elem()), schemaObject{"type": "array", "items": schemaFor(t.Elem())}}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaFor(t.Elem())
	case reflect.String:
		return schemaObject{"type": "string"}
	case reflect.Bool:
		return orEnv(schemaObject{"type": "boolean"})
	case reflect.Int, reflect.Int32, reflect.Int64:
		return orEnv(schemaObject{"type": "integer"})
	case reflect.Float64:
		return orEnv(schemaObject{"type": "number"})
	case reflect.Slice:
		return schemaObject{"type": "array", "items": schemaFor(t.Elem())}
	case reflect.Map:
		return schemaObject{"type": "object", "additionalProperties": schemaFor(t.Elem())}
	case reflect.Struct:
		props := schemaObject{}
		for _, f := range orderedFields(t) {
			fs := schemaFor(t.Field(f.index).Type)
			if f.desc != "" {
				fs["description"] = f.desc
			}
			if f.enum != nil {
				fs["enum"] = f.enum
			}
			props[f.name] = fs
		}
		extraSchema(t, props)
		obj := schemaObject{"type": "object", "additionalProperties": false, "properties": props}
		if req := requiredFields(t); len(req) > 0 {
			obj["required"] = req
		}
		return obj
	}
	panic("config: no schema for kind " + t.Kind().String())
}

// requiredFields are those whose description starts a sentence with
// "Required", the same word the docs use.
func requiredFields(t reflect.Type) []string {
	var out []string
	for _, f := range orderedFields(t) {
		if strings.HasSuffix(f.desc, "Required.") {
			out = append(out, f.name)
		}
	}
	return out
}
