package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// position is where a value sits in the file.
type position struct{ line, column int }

// scalarParser is implemented by types written as one YAML scalar with
// their own syntax (durations, sizes).
type scalarParser interface {
	parseScalar(string) error
}

// oneOrMany is implemented by list types that may also be written as a
// single scalar, meaning a list of one (an empty scalar: an empty list).
type oneOrMany interface {
	oneOrMany()
}

var oneOrManyType = reflect.TypeFor[oneOrMany]()

// emptySectioner is implemented by sections whose null value needs a
// better explanation than "give its keys or remove it".
type emptySectioner interface {
	emptySection() string
}

// defaulter is implemented by list elements that have defaults of their
// own; it runs on each new element before its keys are decoded.
type defaulter interface {
	setDefaults()
}

// decoder walks a yaml.Node tree into Go values by reflection. It exists
// instead of yaml.Node.Decode because the strict mode of the YAML library
// stops at type errors and reports lines without columns; users get every
// problem, each with file:line:column, and ${ENV} expansion happens on
// scalar values only, so a secret cannot inject YAML structure.
//
// The walk has a budget. The YAML library parses an alias into a pointer
// to its anchor (cheap), but walking the tree expands it: nested aliases
// (the "billion laughs" shape) make a file of a few KiB expand into
// billions of values. Values reached through aliases are counted and the
// walk stops past MaxAliasExpansion; it also stops after MaxErrors
// problems, so a large broken file cannot produce an unbounded report.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	errs   Errors
	pos    map[string]position

	aliasDepth int  // > 0 while walking the expansion of an alias
	expanded   int  // values walked through aliases so far
	stopped    bool // the budget is spent; nothing more is decoded
}

// MaxAliasExpansion is how many values all YAML aliases of a configuration
// may expand to together. Sharing a policy or a list between a few hundred
// routes stays far below it; an alias bomb reaches it at once.
const MaxAliasExpansion = 100_000

// MaxErrors is how many problems a configuration reports at most; decoding
// stops at the first one past it.
const MaxErrors = 100

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if d.stopped {
		return
	}
	if len(d.errs) == MaxErrors {
		d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path,
			Msg: fmt.Sprintf("more than %d problems; stopped here", MaxErrors)})
		d.stopped = true
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: msg})
}

// maxMessage keeps a message quoting a huge value to a readable size.
const maxMessage = 400

// spend charges cost values to the alias budget when they are reached
// through an alias, and reports whether the walk may go on. Lists and
// mappings charge their length before anything is allocated for them.
func (d *decoder) spend(n *yaml.Node, path string, cost int) bool {
	if d.stopped {
		return false
	}
	if d.aliasDepth == 0 {
		// Without aliases every node is walked once: the file size bounds it.
		return true
	}
	d.expanded += cost
	if d.expanded > MaxAliasExpansion {
		d.errorf(n, path, "YAML aliases (*name) expand to more than %d values: the file is refused (nested aliases multiply; repeat the values instead)", MaxAliasExpansion)
		d.stopped = true
		return false
	}
	return true
}

var scalarParserType = reflect.TypeFor[scalarParser]()

// decode fills v (addressable) from n. path names v for error messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.stopped {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
		n = n.Alias
	}
	// A long scalar costs more: each expansion may copy it (${ENV}).
	if !d.spend(n, path, 1+len(n.Value)>>8) {
		return
	}
	d.pos[path] = position{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
			// "tls:" with nothing under it would silently mean "no TLS".
			if es, ok := reflect.Zero(v.Type()).Interface().(emptySectioner); ok {
				d.errorf(n, path, "empty section: %s", es.emptySection())
			} else {
				d.errorf(n, path, "empty section: give its keys or remove it")
			}
		}
		// Otherwise an explicit null (or an empty value) keeps the default.
		return
	}
	if v.Addr().Type().Implements(scalarParserType) {
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(scalarParser).parseScalar(s); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if df, ok := v.Interface().(defaulter); ok {
				df.setDefaults()
			}
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
			// "on", "yes" and "true" are booleans to YAML; a string field
			// silently accepting them hides mistakes.
			d.errorf(n, path, "expected a string, got the boolean %s (quote it if you mean the text)", n.Value)
			return
		}
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(n, path, "expected true or false, got %q", s)
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "expected an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		// A programming error in the config types, not a user error.
		panic(fmt.Sprintf("config: unsupported field kind %s at %s", v.Kind(), path))
	}
}

// scalar returns the expanded text of a scalar node, or reports that a
// mapping or list was given where a single value belongs.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a single value, got %s", kindName(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	if !d.spend(n, path, len(n.Content)) {
		return
	}
	fields := structFields(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content) && !d.stopped; i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		child := joinPath(path, key)
		f, ok := fields[key]
		if !ok {
			if seen[key] {
				d.errorf(k, child, "duplicate key %q", key)
				continue
			}
			if d.decodeExtra(val, v, key, child) {
				seen[key] = true
				continue
			}
			if _, ext := v.Addr().Interface().(extensible); ext && KnownMethod(key) {
				d.errorf(k, child, "the %s method takes no options block here", key)
				continue
			}
			d.errorf(k, child, "unknown key %q%s", key, suggest(key, v.Type()))
			continue
		}
		if seen[key] {
			d.errorf(k, child, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		fv := v.Field(f.index)
		d.decode(val, fv, child)
		if f.enum != nil && fv.Kind() == reflect.String && fv.String() != "" && !contains(f.enum, fv.String()) {
			d.errorf(val, child, "%q is not one of: %s", fv.String(), strings.Join(f.enum, ", "))
		}
	}
}

// decodeExtra decodes a registered block of an extensible section (a
// method's options under routes[].authenticate) into a new value of its
// type, and reports whether key is such a block.
func (d *decoder) decodeExtra(n *yaml.Node, v reflect.Value, key, path string) bool {
	ext, ok := v.Addr().Interface().(extensible)
	if !ok {
		return false
	}
	t, ok := ext.extraType(key)
	if !ok {
		return false
	}
	pv := reflect.New(t)
	if df, ok := pv.Interface().(OptionsDefaulter); ok {
		df.SetDefaults()
	}
	d.decode(n, pv.Elem(), path)
	ext.setExtra(key, pv.Interface())
	return true
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && v.Type().Implements(oneOrManyType) {
		s, ok := d.scalar(n, path)
		if ok && s != "" {
			v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.ValueOf(s).Convert(v.Type().Elem())))
		}
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	if !d.spend(n, path, len(n.Content)) {
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if d.stopped {
			return
		}
		ev := s.Index(i)
		if df, ok := ev.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.decode(item, ev, fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("config: only string-keyed maps are supported")
	}
	if !d.spend(n, path, len(n.Content)) {
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content) && !d.stopped; i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		child := joinPath(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.errorf(k, child, "duplicate key %q", k.Value)
			continue
		}
		ev := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, ev, child)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
	v.Set(m)
}

// fieldInfo is what the decoder and the schema generator need of a field.
type fieldInfo struct {
	index int
	name  string
	desc  string
	enum  []string
}

// structFields lists the yaml-tagged fields of a config struct by key.
func structFields(t reflect.Type) map[string]fieldInfo {
	out := make(map[string]fieldInfo, t.NumField())
	for _, f := range orderedFields(t) {
		out[f.name] = f
	}
	return out
}

// orderedFields lists the yaml-tagged fields in declaration order.
func orderedFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		fi := fieldInfo{index: i, name: name, desc: sf.Tag.Get("desc")}
		if e := sf.Tag.Get("enum"); e != "" {
			fi.enum = strings.Split(e, ",")
		}
		out = append(out, fi)
	}
	return out
}

// suggest names the closest known key, since most unknown keys are typos.
func suggest(key string, t reflect.Type) string {
	names := make([]string, 0, t.NumField())
	best, bestDist := "", 3
	for _, f := range orderedFields(t) {
		names = append(names, f.name)
		if dist := levenshtein(key, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 64 {
			v = v[:64] + "…"
		}
		return fmt.Sprintf("the value %q", v)
	default:
		return "something else"
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
