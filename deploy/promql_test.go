package deploy

import (
	"errors"
	"fmt"
	"strings"
)

// metricRef is a metric a PromQL expression selects, with the label names
// its selector matches on.
type metricRef struct {
	name   string // "" when selected by a regular expression on __name__
	labels []string
}

// aggregations are PromQL's aggregation operators, which may be followed
// by a by/without clause before their parenthesis.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// groupingKeywords take a parenthesised list of label names.
var groupingKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// keywords are the other words of the grammar (case-insensitive).
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
}

// promqlRefs extracts the metrics an expression selects and the label
// names of its by/without/on/ignoring/group_left/group_right clauses.
// It is a tokenizer, not a parser: it checks that brackets balance and
// strings end, not that the expression is valid PromQL.
func promqlRefs(expr string) (refs []metricRef, grouping []string, err error) {
	s := expr
	i := 0
	var stack []byte // open brackets: ( [
	skipSpace := func() {
		for i < len(s) {
			switch {
			case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r':
				i++
			case s[i] == '#':
				for i < len(s) && s[i] != '\n' {
					i++
				}
			default:
				return
			}
		}
	}
	readString := func() error {
		q := s[i]
		i++
		for i < len(s) {
			switch {
			case s[i] == '\\' && q != '`':
				i += 2
			case s[i] == q:
				i++
				return nil
			default:
				i++
			}
		}
		return fmt.Errorf("unterminated string in %q", expr)
	}
	readIdent := func() string {
		start := i
		for i < len(s) && isIdentByte(s[i], i > start) {
			i++
		}
		return s[start:i]
	}
	// readLabelList reads "( a, b, … )" after a grouping keyword.
	readLabelList := func() error {
		i++ // (
		for {
			skipSpace()
			switch {
			case i >= len(s):
				return fmt.Errorf("unterminated label list in %q", expr)
			case s[i] == ')':
				i++
				return nil
			case s[i] == ',':
				i++
			case s[i] == '"' || s[i] == '\'':
				start := i
				if err := readString(); err != nil {
					return err
				}
				grouping = append(grouping, strings.Trim(s[start:i], `"'`))
			case isIdentByte(s[i], false):
				grouping = append(grouping, readIdent())
			default:
				return fmt.Errorf("unexpected %q in a label list of %q", s[i], expr)
			}
		}
	}
	// readSelector reads "{ matchers }" into ref, which may get its name
	// from a quoted name or a __name__ matcher.
	readSelector := func(ref *metricRef) error {
		i++ // {
		for {
			skipSpace()
			switch {
			case i >= len(s):
				return fmt.Errorf("unterminated selector in %q", expr)
			case s[i] == '}':
				i++
				return nil
			case s[i] == ',':
				i++
				continue
			}
			var label string
			switch {
			case s[i] == '"' || s[i] == '\'' || s[i] == '`':
				start := i
				if err := readString(); err != nil {
					return err
				}
				label = s[start+1 : i-1]
			case isIdentByte(s[i], false):
				label = readIdent()
			default:
				return fmt.Errorf("unexpected %q in a selector of %q", s[i], expr)
			}
			skipSpace()
			op := ""
			for _, o := range []string{"!=", "=~", "!~", "="} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" { // a quoted metric name: {"name", …}
				if ref.name != "" {
					return fmt.Errorf("two metric names in a selector of %q", expr)
				}
				ref.name = label
				continue
			}
			i += len(op)
			skipSpace()
			if i >= len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '`') {
				return fmt.Errorf("matcher of %s without a string in %q", label, expr)
			}
			start := i
			if err := readString(); err != nil {
				return err
			}
			ref.labels = append(ref.labels, label)
			if label == "__name__" && op == "=" {
				ref.name = s[start+1 : i-1]
			}
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := readString(); err != nil {
				return nil, nil, err
			}
		case c == '(':
			stack = append(stack, '(')
			i++
		case c == '[':
			// A range or subquery: durations, a step, Grafana's
			// $__rate_interval; nothing to check.
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == ')':
			if len(stack) == 0 {
				return nil, nil, fmt.Errorf("unbalanced ) in %q", expr)
			}
			stack = stack[:len(stack)-1]
			i++
		case c == ']' || c == '}':
			return nil, nil, fmt.Errorf("unbalanced %c in %q", c, expr)
		case c == '{':
			ref := metricRef{}
			if err := readSelector(&ref); err != nil {
				return nil, nil, err
			}
			refs = append(refs, ref)
		case c == '$':
			// A Grafana variable: $name, ${name}, ${name:format}.
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, nil, fmt.Errorf("unterminated variable in %q", expr)
				}
				i += end + 1
			} else {
				readIdent()
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number or a duration: 5, 0.5, 1e-3, 0x1F, 5m, 1h30m.
			for i < len(s) && (isIdentByte(s[i], true) || s[i] == '.' ||
				(s[i] == '-' || s[i] == '+') && (s[i-1] == 'e' || s[i-1] == 'E') && !strings.HasPrefix(strings.ToLower(s[:i]), "0x")) {
				i++
			}
		case isIdentByte(c, false):
			word := readIdent()
			lower := strings.ToLower(word)
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
				j++
			}
			nextParen := j < len(s) && s[j] == '('
			switch {
			case groupingKeywords[lower]:
				if nextParen {
					i = j
					if err := readLabelList(); err != nil {
						return nil, nil, err
					}
				}
			case keywords[lower], aggregations[word], nextParen:
				// A keyword, an aggregation, or a function call.
			default:
				ref := metricRef{name: word}
				if j < len(s) && s[j] == '{' {
					i = j
					if err := readSelector(&ref); err != nil {
						return nil, nil, err
					}
					if ref.name != word {
						return nil, nil, fmt.Errorf("two metric names for %s in %q", word, expr)
					}
				}
				refs = append(refs, ref)
			}
		default:
			// Operators and commas.
			if strings.IndexByte("+-*/%^=!<>,@:", c) < 0 {
				return nil, nil, fmt.Errorf("unexpected %q in %q", c, expr)
			}
			i++
		}
	}
	if len(stack) != 0 {
		return nil, nil, errors.New("unbalanced ( in " + fmt.Sprintf("%q", expr))
	}
	return refs, grouping, nil
}

// isIdentByte reports whether b can be in a metric or label name (':' is
// allowed in metric names, for recording rules).
func isIdentByte(b byte, notFirst bool) bool {
	return b == '_' || b == ':' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || notFirst && b >= '0' && b <= '9'
}
