package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeAt decodes data with the configuration's strict decoder as the
// value found at the key path at ("" for the whole file, "routes[]" for
// one route, "identity_providers" for the list of providers,
// "identity_providers[].claims" …), without validation. It reports unknown
// and duplicate keys, wrong shapes and types, values outside a key's
// accepted list and bad ${VAR} references, each with its line and column.
// It exists for the documentation test (docs_test.go), which checks the
// YAML fragments of docs/ with it.
func DecodeAt(name string, data []byte, at string, lookup func(string) (string, bool)) error {
	t, err := typeAt(at)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return fmt.Errorf("empty fragment")
	}
	d := &decoder{file: name, lookup: lookup, pos: map[string]position{}}
	v := reflect.New(t).Elem()
	if df, ok := v.Addr().Interface().(defaulter); ok {
		df.setDefaults()
	}
	d.decode(doc.Content[0], v, at)
	if len(d.errs) > 0 {
		return d.errs.sorted()
	}
	return nil
}

// typeAt follows a key path ("routes[].authorize") through the yaml tags
// of Config to the Go type found there. "[]" steps into a list's element;
// a step into a map of structs names no key ("policies.scopes").
func typeAt(at string) (reflect.Type, error) {
	t := reflect.TypeFor[Config]()
	if at == "" {
		return t, nil
	}
	for _, part := range strings.Split(at, ".") {
		name := strings.TrimRight(part, "[]")
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Struct {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("key path %q: %s is not a section", at, name)
		}
		f, ok := structFields(t)[name]
		switch {
		case ok:
			t = t.Field(f.index).Type
		case reflect.PointerTo(t).Implements(extensibleType):
			// A registered block (routes[].authenticate.<method>).
			ext, _ := reflect.New(t).Interface().(extensible)
			if t, ok = ext.extraType(name); !ok {
				return nil, fmt.Errorf("key path %q: unknown key %q", at, name)
			}
		default:
			return nil, fmt.Errorf("key path %q: unknown key %q", at, name)
		}
		for range strings.Count(part, "[]") {
			if t.Kind() != reflect.Slice {
				return nil, fmt.Errorf("key path %q: %s is not a list", at, name)
			}
			t = t.Elem()
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, nil
}
