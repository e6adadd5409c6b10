package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file, with its location.
type Error struct {
	File   string // file name as given to Load
	Line   int    // 1-based; 0 when the problem has no place in the file (a missing section)
	Column int    // 1-based; 0 when unknown
	Path   string // the key path, e.g. routes[2].upstream.targets[0]
	Msg    string
}

// Error formats the problem as file:line:column: path: message, the form
// editors and CI annotations understand.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, max(e.Column, 1))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file. Load reports all of them at once
// so a user fixes a file in one pass rather than one error per run.
type Errors []*Error

// Error lists every problem on its own line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders problems by position so output reads top to bottom.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}
